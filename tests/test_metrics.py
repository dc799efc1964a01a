"""Prometheus metrics at /metrics: who may scrape, what the figures say, and that reading them
decrypts nothing and labels nothing with a reference."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from api_support import assert_error, build
from conftest import CONFIRM, add_school, confirmed, reported
from cryptography.fernet import Fernet
from notify_support import drain, smtp_context, with_notices
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from reading import all_incidents

from breachflow.api.metrics import Metrics
from breachflow.notifications import dispatcher
from breachflow.workflow import counts, service
from breachflow.workflow.crypto import KeyRing
from breachflow.workflow.db import read_transaction
from breachflow.workflow.deadlines import deadlines

METRICS_TOKEN = "metrics-" + "x" * 40


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, by name and labels (parsed by prometheus_client's own parser)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def api(ctx, settings):
    return build(ctx, settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}))


def scrape(api, token: str | None = METRICS_TOKEN):
    return api.client.get("/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})


@pytest.mark.parametrize(("user", "status"), [("manager", 200), ("admin", 200), ("handler", 403), ("school_a", 403)])
def test_a_manager_or_admin_may_scrape_and_nobody_else(api, user, status):
    assert api.client.get("/metrics", headers=api.headers(user)).status_code == status


def test_a_scrape_without_a_valid_token_is_refused(api):
    assert_error(scrape(api, token=None), 401, "unauthenticated")
    assert_error(scrape(api, token="metrics-" + "y" * 40), 401, "unauthenticated")
    assert scrape(api).status_code == 200


def test_the_metrics_token_opens_nothing_else(api):
    response = api.client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert_error(response, 401, "unauthenticated")


def test_without_a_metrics_token_configured_no_bearer_gets_in(ctx, settings):
    api = build(ctx, settings)
    assert_error(scrape(api, token="metrics-" + "x" * 40), 401, "unauthenticated")


def test_guessing_the_metrics_token_counts_towards_the_lockout(ctx, settings):
    api = build(ctx, settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN), "auth_failures_per_minute": 3}))
    for _ in range(3):
        assert scrape(api, token="metrics-" + "z" * 40).status_code == 401
    assert_error(scrape(api), 429, "too_many_failures")  # the right token too, until the minute has passed


def test_incidents_per_state_and_the_outbox_are_counted_exactly(api, ctx):
    mail = with_notices(ctx)
    first, second = confirmed(mail), confirmed(mail)  # each queues one notice to school 12AB
    reported(ctx)
    dismissed = reported(ctx)
    service.fire(ctx, reference=dismissed, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=dismissed, trigger="dismiss", actor="hanna",
                 fields={"dismissal_reason": "A test of the monitoring, not a breach"})
    with ctx.engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET status = 'dead' WHERE id = (SELECT min(id) FROM outbox)"))
    found = samples(scrape(api).text)
    assert {state: value(found, "breachflow_incidents", state=state) for state in
            ("reported", "triage", "containment", "dismissed", "closed")} == {
        "reported": 1, "triage": 0, "containment": 2, "dismissed": 1, "closed": 0}
    assert value(found, "breachflow_outbox_messages", status="pending") == 1
    assert value(found, "breachflow_outbox_messages", status="dead") == 1
    assert value(found, "breachflow_outbox_messages", status="sending") == 0
    assert value(found, "breachflow_database_up") == 1
    assert first not in scrape(api).text and second not in scrape(api).text


def deadline_world(ctx) -> None:
    """Incidents whose clocks stand everywhere: due soon, overdue, met, not watched, a school's own
    (schools 12AB and 34CD exist)."""
    reported(ctx, discovered_hours_ago=2)  # school notices due in 22 h: ok; AP in 70 h: ok
    reported(ctx, discovered_hours_ago=15, brins=("12AB", "34CD"))  # school notices due soon (9 h)
    reported(ctx, discovered_hours_ago=66)  # school notice overdue, AP due soon (6 h)
    school_caused = reported(ctx, discovered_hours_ago=30)
    service.fire(ctx, reference=school_caused, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=school_caused, trigger="confirm", actor="hanna",
                 fields=CONFIRM | {"cause_category": "user_error_employee"})  # the AP is the school's
    service.log_contact(ctx, reference=school_caused, actor="hanna", brin="12AB", channel="phone",
                        summary="Director told to notify the AP", told_must_notify_ap=True)
    notified = reported(ctx, discovered_hours_ago=80)
    service.fire(ctx, reference=notified, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=notified, trigger="confirm", actor="hanna", fields=CONFIRM)
    service.record_ap_notification(ctx, reference=notified, actor="hanna", kind="preliminary", ap_reference="AP-1",
                                   delay_reason="Found out late")


def test_deadline_figures_from_plain_columns_agree_with_the_decrypted_clocks(api, ctx):
    deadline_world(ctx)
    now = datetime.now(UTC)
    decrypted = Counter((d.kind.value, d.status(now, ctx.periods.due_soon).value)
                        for i in all_incidents(ctx) for d in deadlines(i, ctx.periods) if d.is_open)
    with read_transaction(ctx.engine) as conn:
        plain = counts.open_deadlines(conn, ctx.periods, now)
    assert {pair: n for pair, n in plain.items() if n} == dict(decrypted)
    assert decrypted[("school_notice", "due_soon")] == 2 and decrypted[("ap_notice", "due_soon")] == 1
    assert decrypted[("school_notice", "overdue")] == 2 and decrypted[("school_ap_notice", "ok")] == 1
    found = samples(scrape(api).text)
    assert value(found, "breachflow_deadlines_open", kind="school_notice", status="due_soon") == 2
    assert value(found, "breachflow_deadlines_open", kind="school_ap_notice", status="overdue") == 0


def test_a_scrape_decrypts_nothing(ctx):
    add_school(ctx)
    add_school(ctx, "34CD", "Het Anker")
    deadline_world(ctx)
    foreign = replace(ctx, keys=KeyRing([Fernet.generate_key()]))  # opens none of this register's data
    found = samples(Metrics(foreign).render().decode())
    assert value(found, "breachflow_database_up") == 1
    assert value(found, "breachflow_incidents", state="reported") == 3
    assert value(found, "breachflow_deadlines_open", kind="school_notice", status="due_soon") == 2


def test_an_unreachable_database_is_a_figure_not_a_failed_scrape(ctx, tmp_path):
    gone = replace(ctx, engine=sa.create_engine(f"sqlite:///{tmp_path}/missing-directory/x.db"))
    found = samples(Metrics(gone).render().decode())
    assert value(found, "breachflow_database_up") == 0
    assert not any(name == "breachflow_incidents" for name, _ in found)


def test_sends_and_failures_are_counted_by_the_dispatcher(ctx, smtp):
    add_school(ctx)
    mail = smtp_context(ctx, smtp.port)
    before = samples(Metrics(ctx).render().decode())
    confirmed(mail)
    drain(mail)
    smtp.handler.data_replies = ["554 5.7.1 Message rejected", "451 4.3.0 Try again later"]
    confirmed(mail)
    confirmed(mail)
    drain(mail)
    after = samples(Metrics(ctx).render().decode())

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("breachflow_messages_sent_total") == 1
    assert delta("breachflow_message_failures_total", outcome="dead") == 1
    assert delta("breachflow_message_failures_total", outcome="retry") == 1
    assert dispatcher.SENT in Metrics(ctx).registry._collector_to_names  # one counter, in every registry


def test_requests_are_counted_by_route_template_never_by_reference(api):
    reference = api.report()
    api.call("manager", "GET", f"/incidents/{reference}")
    api.call("manager", "GET", "/incidents/DL-2099-99999")
    api.client.get(f"/no-such-page/{reference}")
    text = scrape(api).text
    assert reference not in text and "DL-2099" not in text and "no-such-page" not in text
    found = samples(text)
    route = "/api/v1/incidents/{reference}"
    assert value(found, "breachflow_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(found, "breachflow_http_requests_total", method="GET", route=route, status="404") == 1
    assert value(found, "breachflow_http_requests_total", method="POST", route="/api/v1/incidents", status="201") == 1
    assert value(found, "breachflow_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(found, "breachflow_http_request_duration_seconds_count", method="GET", route=route) == 2
