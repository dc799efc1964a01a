"""Facts that drive the clocks (discovery time, a known cause, informed schools) are corrected with
a reason once an incident is confirmed, never cleared; one damaged record breaks nobody's view."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B
from conftest import AP_FORM, CONFIRM, CONTAIN, EVALUATE, REMEDIATE, VERIFY, hours_ago

from breachflow.notifications import reminders
from breachflow.workflow import audit, queries, service
from breachflow.workflow.models import incident_t


@pytest.fixture
def confirmed(api) -> str:
    ref = api.report(discovered_at=hours_ago(2).isoformat())
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    assert api.call("handler", "POST", f"/incidents/{ref}/triggers/confirm", json={"fields": CONFIRM}).status_code == 200
    return ref


def patch(api, ref, **body):
    version = api.call("handler", "GET", f"/incidents/{ref}").json()["version"]
    return api.call("handler", "PATCH", f"/incidents/{ref}", json={"version": version, **body})


def fields(response) -> list[str]:
    return [f["field"] for f in response.json()["error"]["fields"]]


@pytest.mark.parametrize("change", [
    {"fields": {"discovered_at": None}},
    {"fields": {"cause_category": None}},
    {"fields": {"cause_category": "system_technical"}, "reason": "found it", "then": {"cause_category": "unknown"}},
], ids=["discovered_at", "cause_category", "known-cause-back-to-unknown"])
def test_a_clock_driving_fact_of_a_confirmed_incident_cannot_be_cleared(api, confirmed, change):
    then = change.pop("then", None)
    if then:
        assert patch(api, confirmed, **change).status_code == 200
        change = {"fields": then, "reason": "oops"}
    before = api.call("handler", "GET", f"/incidents/{confirmed}").json()
    response = patch(api, confirmed, **change)
    assert response.status_code == 422, response.text
    assert fields(response) == list(change["fields"])
    after = api.call("handler", "GET", f"/incidents/{confirmed}").json()
    assert after == before  # nothing written
    assert {d["kind"] for d in after["deadlines"]} >= {"school_notice"}


def test_an_empty_string_is_not_a_way_to_clear_the_discovery_time(api, confirmed):
    response = patch(api, confirmed, fields={"discovered_at": ""})
    assert response.status_code == 422
    assert api.call("handler", "GET", f"/incidents/{confirmed}").json()["disclosure"]["discovered_at"] is not None


def test_a_correction_needs_a_reason_and_shows_who_moved_the_clock(api, confirmed):
    earlier = hours_ago(5).isoformat()
    refused = patch(api, confirmed, fields={"discovered_at": earlier})
    assert refused.status_code == 422 and fields(refused) == ["reason"]
    moved = patch(api, confirmed, fields={"discovered_at": earlier}, reason="the log shows an earlier start")
    assert moved.status_code == 200, moved.text
    deadline = next(d for d in moved.json()["deadlines"] if d["kind"] == "ap_notice")
    assert deadline["clock_moved_by"] == "handler" and deadline["clock_moved_at"] is not None
    listed = next(d for d in api.call("manager", "GET", "/deadlines").json()["items"] if d["reference"] == confirmed)
    assert listed["clock_moved_by"] == "handler"
    event = api.call("handler", "GET", f"/incidents/{confirmed}/timeline").json()["items"][-1]
    assert event["kind"] == "updated" and event["details"]["reason"] == "the log shows an earlier start"
    old, new = event["details"]["changes"]["discovered_at"]
    assert old != new and datetime.fromisoformat(new) == datetime.fromisoformat(earlier)


def test_before_confirmation_the_facts_are_still_free(api):
    ref = api.report(discovered_at=hours_ago(2).isoformat())
    assert patch(api, ref, fields={"discovered_at": None}).status_code == 200


def test_the_only_school_and_an_informed_school_stay(api, confirmed):
    only = patch(api, confirmed, remove_schools=[SCHOOL_A])
    assert only.status_code == 422 and "at least one" in only.text
    assert patch(api, confirmed, schools={SCHOOL_B: 3}).status_code == 200
    api.call("handler", "POST", f"/incidents/{confirmed}/contacts",
             json={"school": SCHOOL_A, "channel": "phone", "summary": "Director informed"})
    informed = patch(api, confirmed, remove_schools=[SCHOOL_A])
    assert informed.status_code == 422 and "was informed" in informed.text
    unexplained = patch(api, confirmed, remove_schools=[SCHOOL_B])
    assert unexplained.status_code == 422 and fields(unexplained) == ["reason"]  # its clock would just vanish
    assert patch(api, confirmed, remove_schools=[SCHOOL_B], reason="added by mistake").status_code == 200
    assert patch(api, confirmed, schools={SCHOOL_A: 30}).status_code == 200  # an informed school is corrected


def plant_year_9999(ctx, ref: str) -> None:
    """A forged or damaged row, written past the application, straight into the database."""
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(incident_t).where(incident_t.c.reference == ref)
                     .values(discovered_at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC)))


@pytest.mark.tampers
def test_one_unreadable_record_breaks_no_list_deadline_view_or_scan(api, ctx, confirmed, caplog):
    healthy = api.report(discovered_at=hours_ago(30).isoformat())
    api.call("handler", "POST", f"/incidents/{healthy}/triggers/begin_triage")
    api.call("handler", "POST", f"/incidents/{healthy}/triggers/confirm", json={"fields": CONFIRM})
    plant_year_9999(ctx, confirmed)

    listed = api.call("manager", "GET", "/incidents")
    assert listed.status_code == 200
    assert [i["reference"] for i in listed.json()["items"]] == [healthy]
    assert listed.json()["unreadable"] == [confirmed]  # named, not hidden
    overdue = api.call("handler", "GET", "/incidents", params={"deadline": "overdue"})
    assert overdue.status_code == 200 and [i["reference"] for i in overdue.json()["items"]] == [healthy]
    # the deadlines view reads the clocks breachflow stored, so a forged time hides none of them; the
    # audit names the forged row
    assert {d["reference"] for d in api.call("manager", "GET", "/deadlines").json()["items"]} == {healthy, confirmed}
    assert any(f.reference == confirmed for f in audit.verify(ctx).findings)
    assert api.call("school_a", "GET", "/deadlines").status_code == 200
    assert api.call("manager", "GET", "/register").status_code == 200
    assert reminders.scan(ctx, datetime.now(UTC)) >= 1  # the healthy incident's overdue school notice
    assert confirmed in caplog.text  # logged by reference
    assert {d.reference for d in queries.open_deadline_page(ctx).items} == {healthy, confirmed}


def test_a_time_whose_deadlines_fall_outside_the_calendar_is_refused_before_anything_is_written(api, confirmed):
    before = api.call("handler", "GET", f"/incidents/{confirmed}").json()
    response = patch(api, confirmed, fields={"discovered_at": "9999-12-31T23:00:00Z"}, reason="typo test")
    assert response.status_code == 422, response.text
    assert fields(response) == ["fields.discovered_at"]
    assert api.call("handler", "GET", f"/incidents/{confirmed}").json() == before
    assert api.call("manager", "GET", "/deadlines").status_code == 200


def test_a_reopened_incident_keeps_its_clock_facts(api, ctx, confirmed):
    """Reopening takes a closed incident back to triage; it was confirmed all the same."""
    fire = lambda trigger, **fields: service.fire(ctx, reference=confirmed, trigger=trigger, actor="h", fields=fields)
    fire("contained", **CONTAIN)
    fire("remediated", **REMEDIATE)
    fire("verified", **VERIFY)
    service.log_contact(ctx, reference=confirmed, actor="h", brin=SCHOOL_A, channel="phone", summary="told")
    fire("evaluated", **EVALUATE)
    service.record_ap_notification(ctx, reference=confirmed, actor="h", kind="final", ap_reference="AP-1")
    fire("ap_notified", **AP_FORM)
    service.reopen(ctx, reference=confirmed, actor="h", reason="A parent found more pages")
    assert api.call("handler", "GET", f"/incidents/{confirmed}").json()["state"] == "triage"
    for change in ({"fields": {"discovered_at": None}}, {"fields": {"cause_category": None}},
                   {"remove_schools": [SCHOOL_A], "reason": "no"}):
        response = patch(api, confirmed, **change)
        assert response.status_code == 422, (change, response.text)
    assert {d["kind"] for d in api.call("handler", "GET", f"/incidents/{confirmed}").json()["deadlines"]} >= {
        "school_notice", "ap_notice"}


@pytest.mark.parametrize("path,body", [
    ("ap-notifications", {"kind": "preliminary", "ap_reference": "AP-1", "notified_at": "2000-01-02T00:00:00Z"}),
    ("contacts", {"school": SCHOOL_A, "channel": "phone", "summary": "called", "at": "2000-01-02T00:00:00Z"}),
], ids=["ap-notification", "contact"])
def test_a_time_before_the_incident_was_known_meets_no_deadline(api, confirmed, path, body):
    response = api.call("handler", "POST", f"/incidents/{confirmed}/{path}", json=body)
    assert response.status_code == 422, response.text
    assert "before the incident was discovered" in response.text
    assert all(d["met_at"] is None for d in api.call("handler", "GET", f"/incidents/{confirmed}").json()["deadlines"])
