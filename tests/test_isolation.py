"""School isolation: a school never sees, nor learns of, another school's incident."""

from __future__ import annotations

import pytest
from api_support import SCHOOL_A, SCHOOL_B, build
from conftest import hours_ago


@pytest.fixture
def world(ctx, settings):
    """Incident ``a_only`` affects school A; ``shared`` affects A and B, with A-only traces on it."""
    api = build(ctx, settings)
    a_only = api.report(schools={SCHOOL_A: 10}, discovered_at=hours_ago(3).isoformat(),
                        reporter_name="Pieter de Vries", reporter_contact="06-12345678")
    shared = api.report(schools={SCHOOL_A: 10, SCHOOL_B: 20}, discovered_at=hours_ago(3).isoformat())
    for ref in (a_only, shared):
        api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
        api.call("handler", "POST", f"/incidents/{ref}/contacts",
                 json={"school": SCHOOL_A, "channel": "phone", "summary": "Spoke with the director of A"})
    api.call("handler", "POST", f"/incidents/{shared}/notes", json={"text": "Internal: B's admin was careless"})
    return api, a_only, shared


def test_the_list_holds_only_the_schools_own_incidents(world):
    api, a_only, shared = world
    b_list = api.call("school_b", "GET", "/incidents").json()
    assert [i["reference"] for i in b_list["items"]] == [shared]
    assert b_list["items"][0]["schools"] == [SCHOOL_B]
    assert api.call("school_b", "GET", f"/incidents?school={SCHOOL_A}").json()["items"] == []
    assert {i["reference"] for i in api.call("school_a", "GET", "/incidents").json()["items"]} == {a_only, shared}


@pytest.mark.parametrize("path", ["/incidents/{ref}", "/incidents/{ref}/timeline", "/incidents/{ref}/ap-dossier"])
def test_another_schools_incident_does_not_exist(world, path):
    api, a_only, _ = world
    foreign = api.call("school_b", "GET", path.format(ref=a_only))
    missing = api.call("school_b", "GET", path.format(ref="DL-2026-99999"))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["message"].replace(a_only, "X") == missing.json()["error"]["message"].replace(
        "DL-2026-99999", "X")


def test_acknowledging_another_schools_incident_is_404(world):
    api, a_only, _ = world
    assert api.call("school_b", "POST", f"/incidents/{a_only}/acknowledgements").status_code == 404
    assert api.call("school_a", "POST", f"/incidents/{a_only}/acknowledgements").status_code == 201


def test_a_shared_incident_shows_a_school_only_itself(world):
    api, _, shared = world
    incident = api.call("school_b", "GET", f"/incidents/{shared}").json()
    assert [s["brin"] for s in incident["schools"]] == [SCHOOL_B]
    assert {d["school"] for d in incident["deadlines"]} <= {SCHOOL_B, None}
    timeline = api.call("school_b", "GET", f"/incidents/{shared}/timeline").json()["items"]
    assert [e["kind"] for e in timeline] == ["reported", "transition"]
    assert "Spoke with the director of A" not in str(timeline) and "careless" not in str(timeline)


def test_a_school_does_not_see_the_reporters_details(world):
    api, a_only, _ = world
    seen_by_school = api.call("school_a", "GET", f"/incidents/{a_only}").json()["disclosure"]
    assert seen_by_school["reporter_name"] is None and seen_by_school["reporter_contact"] is None
    assert api.call("handler", "GET", f"/incidents/{a_only}").json()["disclosure"]["reporter_name"] == "Pieter de Vries"


def test_the_register_and_deadlines_hold_only_the_schools_own(world):
    api, a_only, shared = world
    register = api.call("school_b", "GET", "/register").json()["items"]
    assert [(e["reference"], e["schools"]) for e in register] == [(shared, [SCHOOL_B])]
    csv_text = api.call("school_b", "GET", "/register/export?format=csv").text
    exported = api.call("school_b", "GET", "/register/export").json()
    assert [e["reference"] for e in exported["items"]] == [shared] and a_only not in str(exported)
    assert a_only not in csv_text and SCHOOL_A not in csv_text
    deadlines = api.call("school_b", "GET", "/deadlines").json()["items"]
    assert {d["reference"] for d in deadlines} == {shared}
    assert {d["school"] for d in deadlines} <= {SCHOOL_B, None}


def test_schools_cannot_use_handler_routes_even_on_their_own_incidents(world):
    api, a_only, _ = world
    assert api.call("school_a", "GET", f"/incidents/{a_only}/triggers").status_code == 403
    assert api.call("school_a", "POST", f"/incidents/{a_only}/notes", json={"text": "x"}).status_code == 403
