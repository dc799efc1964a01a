"""The breach register says what happened: every reopening with its time and reason, the dismissal
reason and why a late AP notification came late — and a school reads only its own."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, build
from conftest import AP_FORM, CONFIRM, CONTAIN, EVALUATE, REMEDIATE, VERIFY, hours_ago, reported
from freezegun import freeze_time
from reading import whole_timeline

from breachflow.workflow import queries, register, service
from breachflow.workflow.errors import InvalidInput
from breachflow.workflow.models import ap_t, data_key_t, event_t

DISMISSED_BECAUSE = "Test account of the school; no real pupils"
REOPENED_BECAUSE = "The school found real pupil data in the export"
REOPENED_AGAIN_BECAUSE = "A parent reports the class list is still visible"
LATE_BECAUSE = "The cause was only understood after the weekend"


def local(moment: datetime) -> str:
    return f"{moment.astimezone(ZoneInfo('Europe/Amsterdam')):%Y-%m-%d %H:%M %Z}"


def walk_to_closed(ctx, ref: str, **ap_fields) -> None:
    """Confirm → … → closed with a processor cause; the final AP notification with ``ap_fields``."""
    fire = lambda trigger, **fields: service.fire(ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)
    fire("confirm", **CONFIRM)
    fire("contained", **CONTAIN)
    fire("remediated", **REMEDIATE)
    fire("verified", **VERIFY)
    for brin in (SCHOOL_A, SCHOOL_B):
        service.log_contact(ctx, reference=ref, actor="hanna", brin=brin, channel="phone", summary="Informed")
    fire("evaluated", **EVALUATE)
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="final", ap_reference="AP-2026-1234",
                                   **ap_fields)
    fire("ap_notified", **AP_FORM)


@pytest.fixture
def story(ctx, settings):
    """Reported 80 h ago → dismissed → reopened → … → closed (AP notified late) → reopened again."""
    api = build(ctx, settings)
    ref = reported(ctx, brins=(SCHOOL_A, SCHOOL_B), discovered_hours_ago=80)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna", fields={"dismissal_reason": DISMISSED_BECAUSE})
    service.reopen(ctx, reference=ref, actor="manon", reason=REOPENED_BECAUSE)
    walk_to_closed(ctx, ref, delay_reason=LATE_BECAUSE)
    service.reopen(ctx, reference=ref, actor="manon", reason=REOPENED_AGAIN_BECAUSE)
    transitions = [e for e in whole_timeline(ctx, ref) if e.kind == "transition"]
    times = {(e.from_state, e.to_state): e.at for e in transitions}
    return api, ref, times


def register_of(api, user: str) -> tuple[list[dict], list[dict]]:
    entries = api.call(user, "GET", "/register").json()["items"]
    rows = list(csv.DictReader(io.StringIO(api.call(user, "GET", "/register/export?format=csv").text)))
    return entries, rows


def test_the_register_shows_every_reopening_and_the_dismissal_with_times_and_reasons(story):
    api, ref, times = story
    (entry,), (row,) = register_of(api, "manager")
    assert entry["reference"] == ref and entry["state"] == "triage"
    assert entry["reopen_count"] == 2
    assert [(datetime.fromisoformat(r["at"]), r["from_state"], r["reason"]) for r in entry["reopenings"]] == [
        (times["dismissed", "triage"], "dismissed", REOPENED_BECAUSE),
        (times["closed", "triage"], "closed", REOPENED_AGAIN_BECAUSE),
    ]
    assert (datetime.fromisoformat(entry["dismissed_at"]), entry["dismissal_reason"]) == (
        times["triage", "dismissed"], DISMISSED_BECAUSE)

    assert row["reopen_count"] == "2"
    assert row["reopenings"] == (f"{local(times['dismissed', 'triage'])} ({REOPENED_BECAUSE}); "
                                 f"{local(times['closed', 'triage'])} ({REOPENED_AGAIN_BECAUSE})")
    assert row["dismissal_reason"] == DISMISSED_BECAUSE


def test_a_late_ap_notification_shows_why_it_was_late(story, ctx):
    api, ref, _ = story
    (entry,), (row,) = register_of(api, "handler")
    (ap,) = queries.get(ctx, ref).ap_notifications
    assert entry["ap_delays"] == [{
        "kind": "final", "ap_reference": "AP-2026-1234", "notified_at": entry["ap_delays"][0]["notified_at"],
        "schools": [SCHOOL_A, SCHOOL_B], "delay_reason": LATE_BECAUSE,
    }]
    assert datetime.fromisoformat(entry["ap_delays"][0]["notified_at"]) == ap.notified_at
    assert row["ap_delays"] == f"{local(ap.notified_at)} final AP-2026-1234 ({LATE_BECAUSE})"


def test_an_ap_notification_within_its_deadline_cannot_carry_a_delay_reason(ctx, settings):
    build(ctx, settings)
    ref = reported(ctx, brins=(SCHOOL_A,))
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    with pytest.raises(InvalidInput) as refused:
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary",
                                       ap_reference="AP-ON-TIME", delay_reason=LATE_BECAUSE)
    assert [f.field for f in refused.value.fields] == ["delay_reason"]
    assert queries.get(ctx, ref).ap_notifications == []
    incident_id = queries.get(ctx, ref).id
    assert register.histories(ctx, [incident_id])[incident_id].ap_delays == []


def test_a_notification_for_one_school_answers_for_that_schools_clock_only(ctx, settings):
    """A school-caused breach: A was told to notify the AP days ago, B only now. Notifying the AP
    for B is on time (a delay reason is refused); for A it is late (one is needed)."""
    build(ctx, settings)
    with freeze_time(hours_ago(110)):
        ref = reported(ctx, brins=(SCHOOL_A, SCHOOL_B))
        service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
        service.fire(ctx, reference=ref, trigger="confirm", actor="hanna",
                     fields=CONFIRM | {"cause_category": "user_error_admin", "cause_description": "A shared password"})
        service.log_contact(ctx, reference=ref, actor="hanna", brin=SCHOOL_A, channel="phone",
                            summary="Director of A told to notify the AP", told_must_notify_ap=True)
    service.log_contact(ctx, reference=ref, actor="hanna", brin=SCHOOL_B, channel="phone",
                        summary="Director of B told to notify the AP", told_must_notify_ap=True)

    with pytest.raises(InvalidInput) as refused:
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-B",
                                       schools=[SCHOOL_B], delay_reason=LATE_BECAUSE)
    assert [f.field for f in refused.value.fields] == ["delay_reason"]
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-B",
                                   schools=[SCHOOL_B])
    with pytest.raises(InvalidInput) as late:
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-A",
                                       schools=[SCHOOL_A])
    assert [f.field for f in late.value.fields] == ["delay_reason"]


def test_an_incident_never_dismissed_reopened_or_late_has_empty_history(ctx, settings):
    api = build(ctx, settings)
    ref = reported(ctx, brins=(SCHOOL_A, SCHOOL_B))
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.update(ctx, reference=ref, actor="hanna", fields={"dismissal_reason": "Looked like a test at first"})
    walk_to_closed(ctx, ref)
    (entry,), (row,) = register_of(api, "manager")
    assert (entry["reopen_count"], entry["reopenings"], entry["dismissed_at"], entry["dismissal_reason"],
            entry["ap_delays"]) == (0, [], None, None, [])
    assert (row["reopenings"], row["dismissal_reason"], row["ap_delays"]) == ("", "", "")


def test_a_reason_set_before_its_transition_is_the_reason_of_that_transition(ctx, settings):
    """Reasons are replayed through the timeline: a dismissal reason set by an earlier update counts."""
    api = build(ctx, settings)
    ref = reported(ctx, brins=(SCHOOL_A, SCHOOL_B))
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.update(ctx, reference=ref, actor="hanna", fields={"dismissal_reason": DISMISSED_BECAUSE})
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna")
    service.reopen(ctx, reference=ref, actor="manon", reason=REOPENED_BECAUSE)
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna")
    service.reopen(ctx, reference=ref, actor="manon", reason=REOPENED_AGAIN_BECAUSE)
    (entry,), _ = register_of(api, "manager")
    assert [r["reason"] for r in entry["reopenings"]] == [REOPENED_BECAUSE, REOPENED_AGAIN_BECAUSE]
    assert entry["dismissal_reason"] == DISMISSED_BECAUSE


def test_a_destroyed_key_keeps_reopenings_and_delays_counted_and_dated_without_reasons(story, ctx):
    _, ref, times = story
    incident_id = queries.get(ctx, ref).id
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(data_key_t).values(wrapped=None))
    history = register.histories(ctx, [incident_id])[incident_id]
    assert [(r.at, r.reason) for r in history.reopenings] == [
        (times["dismissed", "triage"], None), (times["closed", "triage"], None)]
    assert (history.dismissed_at, history.dismissal_reason) == (times["triage", "dismissed"], None)
    assert [(d.ap_reference, d.reason) for d in history.ap_delays] == [("AP-2026-1234", None)]


def damage(ctx, table, row_id: int, column: str) -> None:
    """Flip the last byte of a sealed value, straight in the database (a corrupt or altered row)."""
    with ctx.engine.begin() as conn:
        sealed = bytes(conn.execute(sa.select(table.c[column]).where(table.c.id == row_id)).scalar_one())
        conn.execute(sa.update(table).where(table.c.id == row_id)
                     .values({column: sealed[:-1] + bytes([sealed[-1] ^ 1])}))


@pytest.mark.tampers
def test_a_damaged_reason_loses_only_itself(story, ctx, caplog):
    api, ref, times = story
    incident_id = queries.get(ctx, ref).id
    with ctx.engine.connect() as conn:
        second_reopen = conn.execute(sa.select(event_t.c.id).where(
            event_t.c.incident_id == incident_id, event_t.c.from_state == "closed")).scalar_one()
        ap_id = conn.execute(sa.select(ap_t.c.id).where(ap_t.c.incident_id == incident_id)).scalar_one()
    damage(ctx, event_t, second_reopen, "payload")
    damage(ctx, ap_t, ap_id, "delay_reason")
    response = api.call("manager", "GET", "/register")
    assert response.status_code == 200
    (entry,) = response.json()["items"]
    # not the earlier reason carried over: what this reopening said is unknown
    assert [r["reason"] for r in entry["reopenings"]] == [REOPENED_BECAUSE, None]
    assert entry["dismissal_reason"] == DISMISSED_BECAUSE
    assert [d["delay_reason"] for d in entry["ap_delays"]] == [None]
    assert f"incident #{incident_id}" in caplog.text


def test_histories_read_a_page_in_a_fixed_number_of_queries(story, ctx):
    _, ref, _ = story
    others = [reported(ctx, brins=(SCHOOL_A,)) for _ in range(3)]
    ids = [queries.get(ctx, r).id for r in [ref, *others]]
    statements = []

    def record(conn, cursor, statement, *rest):
        statements.append(statement)

    sa.event.listen(ctx.engine, "before_cursor_execute", record)
    try:
        one = register.histories(ctx, ids[:1])
        count_for_one = len(statements)
        statements.clear()
        register.histories(ctx, ids)
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", record)
    assert len(statements) == count_for_one
    assert len(one[ids[0]].reopenings) == 2


# --- a school reads its own ------------------------------------------------------------------------


@pytest.fixture
def two_schools(ctx, settings):
    """``a_only`` (school A) was dismissed and reopened; ``shared`` (A and B) has a late AP
    notification for each school, each with its own delay reason."""
    api = build(ctx, settings)
    a_only = reported(ctx, brins=(SCHOOL_A,))
    service.fire(ctx, reference=a_only, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=a_only, trigger="dismiss", actor="hanna",
                 fields={"dismissal_reason": DISMISSED_BECAUSE})
    service.reopen(ctx, reference=a_only, actor="manon", reason=REOPENED_BECAUSE)
    shared = reported(ctx, brins=(SCHOOL_A, SCHOOL_B), discovered_hours_ago=80)
    service.fire(ctx, reference=shared, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=shared, trigger="confirm", actor="hanna", fields=CONFIRM)
    for brin, reason in ((SCHOOL_A, "A's reason: waiting for A's logs"), (SCHOOL_B, "B's reason: B was closed")):
        service.record_ap_notification(ctx, reference=shared, actor="hanna", kind="preliminary",
                                       ap_reference=f"AP-{brin}", schools=[brin], delay_reason=reason)
    return api, a_only, shared


def test_a_school_reads_the_reopenings_and_dismissal_of_its_own_incident(two_schools):
    api, a_only, _ = two_schools
    entries, rows = register_of(api, "school_a")
    entry = next(e for e in entries if e["reference"] == a_only)
    assert [r["reason"] for r in entry["reopenings"]] == [REOPENED_BECAUSE]
    assert entry["dismissal_reason"] == DISMISSED_BECAUSE
    assert REOPENED_BECAUSE in next(r for r in rows if r["reference"] == a_only)["reopenings"]


def test_a_school_reads_only_the_delay_reasons_of_ap_notifications_covering_it(two_schools):
    api, a_only, shared = two_schools
    entries, rows = register_of(api, "school_b")
    (entry,) = entries
    assert entry["reference"] == shared
    assert [(d["ap_reference"], d["schools"], d["delay_reason"]) for d in entry["ap_delays"]] == [
        (f"AP-{SCHOOL_B}", [SCHOOL_B], "B's reason: B was closed")]
    csv_text = api.call("school_b", "GET", "/register/export?format=csv").text
    for foreign in ("A's reason", f"AP-{SCHOOL_A}", DISMISSED_BECAUSE, REOPENED_BECAUSE, a_only):
        assert foreign not in str(entries) and foreign not in csv_text, foreign
    assert "B's reason: B was closed" in rows[0]["ap_delays"]
    handler_view = next(e for e in api.call("handler", "GET", "/register").json()["items"] if e["reference"] == shared)
    assert {d["ap_reference"] for d in handler_view["ap_delays"]} == {f"AP-{SCHOOL_A}", f"AP-{SCHOOL_B}"}


def test_a_register_entry_carries_the_incidents_facts_and_its_first_ap_notification(ctx, api):
    """What the register keeps of each incident (art. 33(5)): its facts as recorded, the first AP
    notification in force of either kind that meets the clock, and the AP's references for staff only."""
    ref = reported(ctx, brins=(SCHOOL_A,), discovered_hours_ago=3)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    service.update(ctx, reference=ref, actor="hanna", fields={
        "cause_category": "system_technical", "group_size_min": 20, "group_size_max": 30, "records_count": 41})
    first = service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary",
                                           ap_reference="AP-2026-77").ap_notifications[0].notified_at
    incident = queries.get(ctx, ref)
    entry = api.call("handler", "GET", "/register").json()["items"][0]
    assert {k: entry[k] for k in ("summary", "cause_category", "group_size_min", "group_size_max", "records_count",
                                  "ap_references")} == {
        "summary": CONFIRM["summary"], "cause_category": "system_technical", "group_size_min": 20,
        "group_size_max": 30, "records_count": 41, "ap_references": ["AP-2026-77"]}
    assert datetime.fromisoformat(entry["discovered_at"]) == incident.disclosure.discovered_at
    assert datetime.fromisoformat(entry["first_ap_notification_at"]) == first
    seen_by_school = api.call("school_a", "GET", "/register").json()["items"][0]
    assert seen_by_school["ap_references"] == [] and seen_by_school["summary"] == CONFIRM["summary"]
