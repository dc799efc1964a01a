"""Lists that do not grow with the register: pages by cursor, a fixed number of statements per
page, settled deadlines out of the open views, and the register streamed whole."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, assert_error, build
from conftest import AP_FORM, CONFIRM, CONTAIN, EVALUATE, REMEDIATE, VERIFY, hours_ago
from reading import statements

from breachflow.workflow import audit, clocks, queries, service
from breachflow.workflow.context import Context
from breachflow.workflow.errors import PeriodsMismatch
from breachflow.workflow.models import deadline_t, incident_t

SCHOOL_CAUSED = {"cause_category": "user_error_admin", "cause_description": "A teacher shared the class list",
                 "fix_description": "The list was taken offline and the teacher instructed", "fix_tested": True,
                 "data_lost_or_altered": False}


def report(ctx: Context, n: int, *, hours: float = 30, confirm: bool = False) -> list[str]:
    """``n`` reports, discovered ``hours`` ago, alternating between the two schools."""
    refs = []
    for i in range(n):
        ref = service.report(ctx, actor="hanna", source="monitoring", schools={(SCHOOL_A, SCHOOL_B)[i % 2]: 20},
                             fields={"discovered_at": hours_ago(hours), "summary": f"Report {i}"}).reference
        if confirm:
            service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
            service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
        refs.append(ref)
    return refs


def walk(api, user: str, path: str, limit: int) -> list[dict]:
    """Every item of a list, following ``next_cursor`` page by page."""
    items, cursor = [], None
    while True:
        separator = "&" if "?" in path else "?"
        query = f"{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.call(user, "GET", path + query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if (cursor := page["next_cursor"]) is None:
            return items


LISTS = [
    ("/incidents", "handler"),
    ("/incidents?deadline=overdue", "handler"),
    ("/incidents", "school_a"),
    ("/incidents?deadline=overdue", "school_a"),
    ("/deadlines", "handler"),
    ("/deadlines", "school_a"),
    ("/register", "handler"),
    ("/register", "school_a"),
]


@pytest.mark.parametrize(("path", "user"), LISTS)
def test_a_page_costs_the_same_statements_with_three_incidents_as_with_sixty(ctx, settings, path, user):
    """Set-based reads: no statement per incident, only the page's rows decrypted."""
    api = build(ctx, settings)
    report(ctx, 3)
    api.call(user, "GET", path)  # warm: the token is looked up the same way each time
    with statements(ctx) as few:
        assert api.call(user, "GET", path + ("&" if "?" in path else "?") + "limit=10").status_code == 200
    report(ctx, 57)
    with statements(ctx) as many:
        page = api.call(user, "GET", path + ("&" if "?" in path else "?") + "limit=10").json()
    assert len(page["items"]) == 10 and page["next_cursor"]
    assert len(many) == len(few), "a statement per incident crept into " + path


@pytest.mark.parametrize(("path", "user"), LISTS + [("/incidents/{ref}/timeline", "handler"),
                                                    ("/incidents/{ref}/timeline", "school_a"),
                                                    ("/schools", "admin")])
def test_following_next_cursor_reads_every_item_once(ctx, settings, path, user):
    api = build(ctx, settings)
    refs = report(ctx, 7, confirm=True)
    path = path.format(ref=refs[0])
    whole = api.call(user, "GET", path + ("&" if "?" in path else "?") + "limit=200").json()
    assert whole["next_cursor"] is None and whole["items"]
    assert walk(api, user, path, limit=2) == whole["items"]


def test_reports_made_between_pages_are_neither_repeated_nor_skipped(ctx, settings):
    api = build(ctx, settings)
    older = report(ctx, 5)
    first = api.call("handler", "GET", "/incidents?limit=2").json()
    newer = report(ctx, 3)  # newest first: these come before the cursor and never into the later pages
    rest = walk(api, "handler", f"/incidents?cursor={first['next_cursor']}", limit=2)
    assert [i["reference"] for i in first["items"] + rest] == older[::-1]
    assert [i["reference"] for i in walk(api, "handler", "/incidents", 3)] == (older + newer)[::-1]


def test_a_school_following_a_cursor_from_someone_else_still_sees_only_its_own(ctx, settings):
    api = build(ctx, settings)
    report(ctx, 8)
    handlers_cursor = api.call("handler", "GET", "/incidents?limit=1").json()["next_cursor"]
    for path in ("/incidents", "/register", "/deadlines"):
        cursor = handlers_cursor if path != "/deadlines" else api.call(
            "handler", "GET", "/deadlines?limit=1").json()["next_cursor"]
        items = walk(api, "school_a", f"{path}?cursor={cursor}", limit=3)
        assert items, path
        assert all(item.get("schools", [SCHOOL_A]) == [SCHOOL_A] for item in items), path
        assert all(item.get("school") in (None, SCHOOL_A) for item in items), path


def forged(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["not-a-cursor", forged("1"), forged(1, 2), forged(True), forged(1.5),
                                    forged("2026-01-01T00:00:00", 1)],
                         ids=["garbage", "string", "two", "bool", "float", "naive-time"])
@pytest.mark.parametrize("path", ["/incidents", "/register", "/deadlines", "/schools"])
def test_a_cursor_that_is_not_ours_is_refused_naming_the_cursor(ctx, settings, path, cursor):
    api = build(ctx, settings)
    if path == "/schools" and cursor == forged("1"):  # schools are paged by BRIN code: a number is foreign there
        cursor = forged(1)
    assert_error(api.call("admin" if path == "/schools" else "handler", "GET", f"{path}?cursor={cursor}"),
                 422, "invalid_input", "cursor")


@pytest.mark.parametrize(("path", "cursor"), [
    ("/incidents", forged(2**63)), ("/incidents", forged(-1)), ("/register", forged(2**64)),
    ("/incidents/{ref}/timeline", forged(2**63)),
    ("/deadlines", forged("0001-01-01T00:00:00+05:00", 1)), ("/deadlines", forged("9999-12-31T23:59:59-05:00", 1)),
    ("/deadlines", forged("2026-01-01T00:00:00+00:00", 2**63)),
    ("/schools", forged("\ud800")), ("/schools", forged("12\x00AB")), ("/schools", forged("A" * 50)),
    # one past PostgreSQL's 4-byte integer: SQLite would take it, PostgreSQL would fail the statement
    ("/incidents", forged(2**31)), ("/incidents/{ref}/timeline", forged(2**31)),
    ("/deadlines", forged("2026-01-01T00:00:00+00:00", 2**31)),
], ids=["huge-id", "negative-id", "huger-id", "timeline-huge-seq", "year-1", "year-9999", "deadline-huge-id",
        "surrogate", "nul", "long", "past-int4-id", "past-int4-seq", "deadline-past-int4-id"])
def test_a_cursor_beyond_what_a_column_holds_is_refused_not_a_500(ctx, settings, path, cursor):
    api = build(ctx, settings)
    ref = report(ctx, 1)[0]
    user = "admin" if path == "/schools" else "handler"
    assert_error(api.call(user, "GET", f"{path.format(ref=ref)}?cursor={cursor}"), 422, "invalid_input", "cursor")


@pytest.mark.parametrize("limit", [0, 201, -1])
def test_a_page_size_outside_1_to_200_is_refused(ctx, settings, limit):
    api = build(ctx, settings)
    assert_error(api.call("handler", "GET", f"/incidents?limit={limit}"), 422, "invalid_input", "limit")


def test_the_default_page_holds_fifty(ctx, settings):
    api = build(ctx, settings)
    report(ctx, 51)
    page = api.call("handler", "GET", "/incidents").json()
    assert len(page["items"]) == page["limit"] == 50 and page["next_cursor"]


def close_school_caused(ctx: Context, ref: str, *, told: bool) -> None:
    """Confirm → … → closed with a school's cause: the school was told to notify the AP, or not."""
    fire = lambda trigger, **fields: service.fire(ctx, reference=ref, trigger=trigger, actor="hanna",  # noqa: E731
                                                  fields=fields)
    fire("begin_triage")
    fire("confirm", **CONFIRM)
    fire("contained", **CONTAIN)
    fire("remediated", **SCHOOL_CAUSED)
    fire("verified", **VERIFY)
    service.log_contact(ctx, reference=ref, actor="hanna", brin=SCHOOL_A, channel="phone",
                        summary="Told the school what happened", told_must_notify_ap=told)
    fire("evaluated", **EVALUATE)


def test_a_closed_incidents_clocks_are_settled_and_leave_the_open_views(ctx, settings):
    api = build(ctx, settings)
    ref = service.report(ctx, actor="hanna", source="monitoring", schools={SCHOOL_A: 20},
                         fields={"discovered_at": hours_ago(100), "summary": "Class list shared"}).reference
    assert {d["reference"] for d in walk(api, "handler", "/deadlines", 50)} == {ref}
    close_school_caused(ctx, ref, told=True)
    assert api.call("handler", "GET", f"/incidents/{ref}").json()["state"] == "closed"

    assert walk(api, "handler", "/deadlines", 50) == []
    assert walk(api, "school_a", "/deadlines", 50) == []
    assert walk(api, "handler", "/incidents?deadline=overdue", 50) == []
    settled = walk(api, "handler", "/incidents?deadline=settled", 50)
    assert [i["reference"] for i in settled] == [ref] and settled[0]["deadline_status"] == "settled"

    shown = {d["kind"]: d for d in api.call("handler", "GET", f"/incidents/{ref}").json()["deadlines"]}
    assert shown["school_notice"]["outcome"] == "met_late" and shown["school_notice"]["status"] == "met"
    assert shown["school_ap_notice"]["outcome"] == "school_told"
    assert shown["school_ap_notice"]["status"] == "settled"
    (entry,) = api.call("handler", "GET", "/register").json()["items"]
    assert {d["kind"]: d["outcome"] for d in entry["deadlines"]} == {"school_notice": "met_late",
                                                                       "school_ap_notice": "school_told"}

    service.reopen(ctx, reference=ref, actor="manon", reason="The school found more lists")
    assert {d["kind"] for d in walk(api, "handler", "/deadlines", 50)} == {"school_ap_notice"}
    assert all(d["outcome"] is None for d in api.call("handler", "GET", f"/incidents/{ref}").json()["deadlines"])


def test_a_clock_of_a_closed_incident_never_met_is_settled_unmet():
    """The guards keep this from happening through breachflow; a closed record from elsewhere (a
    restore of an older register) still gets a clock that says so, not one overdue forever."""
    from datetime import UTC, datetime

    from breachflow.workflow.deadlines import Outcome, Periods, Status, deadlines
    from breachflow.workflow.disclosure import Disclosure
    from breachflow.workflow.incident import AffectedSchool, Incident

    closed = Incident(1, "DL-2026-00001", "closed", 9, "monitoring", hours_ago(200),
                      Disclosure(discovered_at=hours_ago(200)), [AffectedSchool(1, SCHOOL_A, "De Regenboog")])
    clocks_ = deadlines(closed, Periods())
    assert {d.kind.value: d.outcome for d in clocks_} == {"school_notice": Outcome.unmet, "ap_notice": Outcome.unmet}
    assert {d.status(datetime.now(UTC), Periods().due_soon) for d in clocks_} == {Status.settled}
    assert not any(d.is_open for d in clocks_)


def test_each_deadline_row_is_what_the_incident_gives_after_every_kind_of_command(ctx, settings):
    """The rows the lists read are kept by every command; the audit compares them with the facts."""
    from conftest import RESTORE

    build(ctx, settings)
    ref = report(ctx, 1, hours=90)[0]
    steps = [
        lambda: service.update(ctx, reference=ref, actor="hanna", schools={SCHOOL_B: 3}),
        lambda: service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna"),
        lambda: service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM),
        lambda: service.update(ctx, reference=ref, actor="hanna", fields={"discovered_at": hours_ago(80)},
                               reason="the log shows a later start"),
        lambda: service.update(ctx, reference=ref, actor="hanna", remove_schools=[SCHOOL_B],
                               reason="not affected after all"),
        lambda: service.log_contact(ctx, reference=ref, actor="hanna", brin=SCHOOL_A, channel="phone",
                                    summary="Informed"),
        lambda: service.fire(ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN),
        lambda: service.fire(ctx, reference=ref, trigger="remediated", actor="hanna",
                             fields=REMEDIATE | {"data_lost_or_altered": True}),
        lambda: service.fire(ctx, reference=ref, trigger="restored", actor="hanna", fields=RESTORE),
        lambda: service.fire(ctx, reference=ref, trigger="verified", actor="hanna", fields=VERIFY),
        lambda: service.fire(ctx, reference=ref, trigger="evaluated", actor="hanna", fields=EVALUATE),
        lambda: service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="final",
                                               ap_reference="AP-1", delay_reason="Found late"),
        lambda: service.fire(ctx, reference=ref, trigger="ap_notified", actor="hanna", fields=AP_FORM),
        lambda: service.reopen(ctx, reference=ref, actor="manon", reason="More data found"),
    ]
    for step in steps:
        step()
        assert audit.verify(ctx).intact, step


@pytest.mark.tampers
@pytest.mark.parametrize("forgery", ["delete", "move", "plant"])
def test_a_deadline_row_changed_past_breachflow_is_found_by_the_audit(ctx, settings, forgery):
    build(ctx, settings)
    ref = report(ctx, 1)[0]
    with ctx.engine.begin() as conn:
        incident_id = conn.execute(sa.select(incident_t.c.id).where(incident_t.c.reference == ref)).scalar()
        if forgery == "delete":  # an overdue clock hidden from every list
            conn.execute(sa.delete(deadline_t).where(deadline_t.c.incident_id == incident_id))
        elif forgery == "move":
            conn.execute(sa.update(deadline_t).values(due_at=hours_ago(-100)))
        else:
            conn.execute(sa.insert(deadline_t).values(incident_id=incident_id, kind="ap_notice", due_at=hours_ago(1),
                                                      is_open=True))
    findings = audit.verify(ctx).findings
    assert findings and {f.reference for f in findings} == {ref}
    assert all("deadline" in f.problem for f in findings)


def test_other_periods_are_adopted_by_serve_and_worker_and_refused_to_anyone_else(ctx, settings):
    api = build(ctx, settings)
    ref = report(ctx, 1, hours=30)[0]
    assert [d["status"] for d in walk(api, "handler", "/deadlines", 50)] == ["overdue", "ok"]
    longer = settings.model_copy(update={"school_notice_hours": 48})
    with pytest.raises(PeriodsMismatch, match="school_notice: stored 24.0, here 48.0"):
        Context.open(longer)  # a command line with other periods would show and write other deadlines
    assert Context.open(settings.model_copy(update={"due_soon_hours": 3}))  # only colours a status: no recompute

    other = Context.open(longer, adopt_periods=True)  # as serve and worker open it
    assert audit.verify(other).intact
    assert not clocks.ensure_current(other.engine, other.periods, hours_ago(0), adopt=True)  # once, not again
    with ctx.engine.connect() as conn:
        due = conn.execute(sa.select(deadline_t.c.due_at).where(deadline_t.c.kind == "school_notice")).scalar()
    assert due == queries.get(ctx, ref).disclosure.discovered_at + timedelta(hours=48)  # recomputed, not wall-clock
    # a process still running with the old periods writes no deadline of its own
    with pytest.raises(PeriodsMismatch):
        service.update(ctx, reference=ref, actor="hanna", schools={SCHOOL_B: 2})
    assert [s.brin for s in queries.get(ctx, ref).schools] == [SCHOOL_A]
    assert api.call("handler", "PATCH", f"/incidents/{ref}", json={"version": 1, "schools": {SCHOOL_B: 2}}
                    ).status_code == 503

    assert Context.open(settings, adopt_periods=True)  # back to 24 hours, for the audit after the test
    assert [d["reference"] for d in walk(api, "handler", "/deadlines", 50)] == [ref, ref]


def export(api, user: str, form: str) -> str:
    response = api.call(user, "GET", f"/register/export?format={form}")
    assert response.status_code == 200, response.text
    return response.text


def test_the_export_streams_the_whole_register_as_the_pages_show_it(ctx, settings, monkeypatch):
    from breachflow.api import register_export

    monkeypatch.setattr(register_export, "EXPORT_PAGE", 3)  # several pages, as a large register has
    api = build(ctx, settings)
    report(ctx, 8)
    pages = walk(api, "handler", "/register", 50)
    exported = json.loads(export(api, "handler", "json"))
    assert exported == {"items": pages, "unreadable": []}
    rows = list(csv.DictReader(io.StringIO(export(api, "handler", "csv"))))
    assert [r["reference"] for r in rows] == [p["reference"] for p in pages]
    own = json.loads(export(api, "school_a", "json"))["items"]
    assert own and all(entry["schools"] == [SCHOOL_A] for entry in own)
    assert {e["reference"] for e in own} == {r["reference"] for r in walk(api, "school_a", "/register", 2)}


@pytest.mark.tampers
def test_an_unreadable_record_keeps_its_row_in_the_export(ctx, settings):
    api = build(ctx, settings)
    good, bad = report(ctx, 2)
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(incident_t).where(incident_t.c.reference == bad).values(personal=b"\x01damaged"))
    assert json.loads(export(api, "handler", "json"))["unreadable"] == [bad]
    rows = {r["reference"]: r for r in csv.DictReader(io.StringIO(export(api, "handler", "csv")))}
    assert set(rows) == {good, bad} and "cannot be read" in rows[bad]["summary"]
    assert api.call("handler", "GET", "/register").json()["unreadable"] == [bad]


@pytest.mark.tampers
def test_a_page_of_records_no_master_key_opens_names_them_and_the_export_goes_on(ctx, settings, monkeypatch):
    from cryptography.fernet import Fernet

    from breachflow.api import register_export
    from breachflow.workflow.models import data_key_t

    monkeypatch.setattr(register_export, "EXPORT_PAGE", 1)  # the foreign record fills a page on its own
    api = build(ctx, settings)
    older, foreign, newer = report(ctx, 3)
    with ctx.engine.begin() as conn:
        key_id = conn.execute(sa.select(incident_t.c.data_key_id).where(incident_t.c.reference == foreign)).scalar()
        conn.execute(sa.update(data_key_t).where(data_key_t.c.id == key_id)
                     .values(wrapped=Fernet(Fernet.generate_key()).encrypt(b"k" * 32)))
    exported = json.loads(export(api, "handler", "json"))
    assert [e["reference"] for e in exported["items"]] == [newer, older] and exported["unreadable"] == [foreign]
    rows = list(csv.DictReader(io.StringIO(export(api, "handler", "csv"))))
    assert [r["reference"] for r in rows] == [newer, foreign, older]
    middle = api.call("handler", "GET", "/register?limit=1&cursor=" + forged(queries.get(ctx, newer).id))
    assert middle.status_code == 200 and middle.json()["unreadable"] == [foreign]


@pytest.mark.tampers
@pytest.mark.parametrize("plant", ["bogus-kind", "double", "garbage-time"])
def test_a_planted_deadline_row_breaks_no_view_and_the_audit_names_it(ctx, settings, plant):
    """A row of a kind breachflow never writes, or one doubled, is left out of the views and the
    scan; a time column holding text that is no time (SQLite) is named by the audit, not a crash."""
    api = build(ctx, settings)
    ref, other = report(ctx, 2, hours=30)
    with ctx.engine.begin() as conn:
        incident_id = conn.execute(sa.select(incident_t.c.id).where(incident_t.c.reference == ref)).scalar()
        if plant == "bogus-kind":
            conn.execute(sa.insert(deadline_t).values(incident_id=incident_id, kind="bogus", due_at=hours_ago(5),
                                                      is_open=True, next_look_at=hours_ago(6)))
        elif plant == "double":
            row = conn.execute(sa.select(deadline_t).where(deadline_t.c.incident_id == incident_id)).first()
            conn.execute(sa.insert(deadline_t).values({k: v for k, v in row._mapping.items() if k != "id"}))
        elif conn.dialect.name == "sqlite":
            conn.execute(sa.text("UPDATE deadline SET met_at = 'not a time' WHERE incident_id = :i"), {"i": incident_id})
        else:
            pytest.skip("PostgreSQL's timestamp column holds only times")
    if plant != "garbage-time":  # a time column holding text: only the audit reads it row by row (see the note)
        assert {d["reference"] for d in walk(api, "manager", "/deadlines", 50)} >= {other}
        from breachflow.notifications import reminders

        reminders.scan(ctx, hours_ago(0))  # runs through
    assert api.call("manager", "GET", f"/incidents/{other}").status_code == 200
    findings = audit.verify(ctx).findings
    assert findings and {f.reference for f in findings} == {ref}
