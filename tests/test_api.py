"""The HTTP API: every route, every role, one error shape."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, assert_error
from conftest import CONFIRM, CONTAIN, EVALUATE, evaluating, hours_ago

from breachflow.workflow import accounts, lifecycle
from breachflow.workflow.models import token_t

# --- authentication -------------------------------------------------------------------------


def test_no_token_is_401_in_the_error_shape(api):
    response = api.call(None, "GET", "/incidents")
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_token_is_401(api):
    response = api.client.get("/api/v1/incidents", headers={"Authorization": "Bearer bf_not-a-real-token"})
    assert_error(response, 401, "unauthenticated")


def test_a_revoked_token_stops_working(api, ctx):
    with ctx.engine.connect() as conn:
        token_id = conn.execute(sa.select(sa.func.max(token_t.c.id))).scalar()
    accounts.revoke_token(ctx, token_id=token_id)  # school_b's, the last one issued
    assert_error(api.call("school_b", "GET", "/incidents"), 401, "unauthenticated")


def test_an_expired_token_stops_working(api, ctx):
    api.tokens["brief"] = accounts.create_token(ctx, username="handler", expires_in=timedelta(minutes=5)).secret
    assert api.call("brief", "GET", "/incidents").status_code == 200
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(token_t).where(token_t.c.expires_at.is_not(None))
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_error(api.call("brief", "GET", "/incidents"), 401, "unauthenticated")


def test_health_and_docs_need_no_token_and_load_nothing_from_elsewhere(api):
    assert api.client.get("/api/v1/healthz").json()["status"] == "ok"
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assert api.client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
    assert api.client.get("/openapi.json").json()["info"]["title"] == "breachflow"


# --- handlers walk an incident --------------------------------------------------------------


def test_a_handler_walks_an_incident_through_the_api(api):
    ref = api.report(discovered_at=hours_ago(2).isoformat())
    assert api.call("handler", "GET", f"/incidents/{ref}").json()["state"] == "reported"
    assert api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage").json()["state"] == "triage"

    missing = api.call("handler", "POST", f"/incidents/{ref}/triggers/confirm", json={})
    assert_error(missing, 409, "guard_failed", "nature_how", "nature_actions", "affected_systems", "cause_category")

    triggers = {t["trigger"]: t for t in api.call("handler", "GET", f"/incidents/{ref}/triggers").json()}
    assert set(triggers) == {"dismiss", "confirm"} and not triggers["confirm"]["ready"]

    confirmed = api.call("handler", "POST", f"/incidents/{ref}/triggers/confirm", json={"fields": CONFIRM})
    assert confirmed.status_code == 200
    assert (confirmed.json()["state"], confirmed.json()["impact"]["confidentiality"]) == ("containment", True)

    version = confirmed.json()["version"]
    stale = api.call("handler", "PATCH", f"/incidents/{ref}", json={"version": version - 1, "fields": CONTAIN})
    assert_error(stale, 409, "stale_version")
    patched = api.call("handler", "PATCH", f"/incidents/{ref}", json={"version": version, "fields": CONTAIN})
    assert patched.json()["disclosure"]["measures"] == CONTAIN["measures"]

    assert api.call("handler", "POST", f"/incidents/{ref}/notes", json={"text": "Called IT"}).status_code == 201
    contact = api.call("handler", "POST", f"/incidents/{ref}/contacts",
                       json={"school": SCHOOL_A, "channel": "phone", "summary": "Director informed"})
    assert contact.json()["schools"][0]["informed_via"] == "phone"
    ap = api.call("handler", "POST", f"/incidents/{ref}/ap-notifications",
                  json={"kind": "preliminary", "ap_reference": "2026-000123"})
    assert ap.status_code == 201 and ap.json()["ap_notifications"][0]["schools"] == [SCHOOL_A]

    ack = api.call("school_a", "POST", f"/incidents/{ref}/acknowledgements", json={"comment": "Received"})
    assert ack.status_code == 201 and ack.json()["schools"][0]["acknowledged_at"]

    kinds = [e["kind"] for e in api.call("handler", "GET", f"/incidents/{ref}/timeline").json()["items"]]
    assert kinds == ["reported", "transition", "transition", "notices_queued", "updated", "note", "contact",
                     "ap_notification", "acknowledged"]


def test_invalid_input_is_422_naming_each_field(api):
    ref = api.report()
    response = api.call("handler", "PATCH", f"/incidents/{ref}",
                        json={"version": 1, "fields": {"group_size_min": "many", "colour": "red"}})
    assert_error(response, 422, "invalid_input", "fields.group_size_min", "fields.colour")
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/triggers/explode"), 422, "invalid_input", "trigger")
    assert_error(api.call("handler", "GET", "/incidents?limit=0"), 422, "invalid_input", "limit")
    assert_error(api.call("handler", "POST", "/incidents", json={"schools": {"99ZZ": 1}}), 422, "invalid_input",
                 "schools")
    assert api.call("handler", "GET", f"/incidents/{ref}").json()["version"] == 1


def test_an_invalid_trigger_for_the_state_is_409_naming_the_valid_ones(api):
    ref = api.report()
    error = assert_error(api.call("handler", "POST", f"/incidents/{ref}/triggers/verified"), 409, "trigger_not_allowed")
    assert "begin_triage" in error["message"]


def test_unknown_routes_and_methods_keep_the_shape(api):
    assert_error(api.client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(api.client.delete("/api/v1/healthz"), 405, "method_not_allowed")
    assert_error(api.call("handler", "GET", "/incidents/DL-2026-99999"), 404, "not_found")


def test_idempotency_key_makes_a_retried_report_one_incident(api):
    body = {"source": "third_party", "schools": {SCHOOL_A: 3}, "fields": {"summary": "USB stick found"}}
    headers = {"Idempotency-Key": "report-7f3a"}
    first = api.call("handler", "POST", "/incidents", json=body, headers=headers)
    again = api.call("handler", "POST", "/incidents", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["reference"] == again.json()["reference"]
    assert len(api.call("handler", "GET", "/incidents").json()["items"]) == 1
    other = api.call("handler", "POST", "/incidents", json=body | {"source": "school"}, headers=headers)
    assert_error(other, 409, "conflict")


# --- lists, register, deadlines, workflow, schools -----------------------------------------------


def test_list_filters_and_pages(api):
    refs = [api.report(discovered_at=hours_ago(h).isoformat()) for h in (1, 30, 2)]
    api.call("handler", "POST", f"/incidents/{refs[0]}/triggers/begin_triage")
    page = api.call("handler", "GET", "/incidents?limit=2").json()
    assert [i["reference"] for i in page["items"]] == refs[::-1][:2] and page["next_cursor"]
    rest = api.call("handler", "GET", f"/incidents?limit=2&cursor={page['next_cursor']}").json()
    assert ([i["reference"] for i in rest["items"]], rest["next_cursor"]) == ([refs[0]], None)
    assert [i["reference"] for i in api.call("handler", "GET", "/incidents?state=triage").json()["items"]] == [refs[0]]
    overdue = api.call("handler", "GET", "/incidents?deadline=overdue").json()
    assert [i["reference"] for i in overdue["items"]] == [refs[1]]
    unknown = api.call("handler", "GET", "/incidents?responsibility=unknown").json()
    assert len(unknown["items"]) == 3
    assert api.call("handler", "GET", "/incidents?responsibility=school").json()["items"] == []


def test_register_as_json_and_csv_includes_dismissed_reports(api):
    ref = api.report()
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    api.call("handler", "POST", f"/incidents/{ref}/triggers/dismiss", json={"fields": {"dismissal_reason": "test data"}})
    entries = api.call("manager", "GET", "/register").json()["items"]
    assert [(e["reference"], e["state"]) for e in entries] == [(ref, "dismissed")]
    exported = api.call("manager", "GET", "/register/export").json()
    assert exported == {"items": entries, "unreadable": []}
    for response in (api.call("manager", "GET", "/register/export?format=csv"),
                     api.call("manager", "GET", "/register/export", headers={"Accept": "text/csv"})):
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [(r["reference"], r["state"], r["schools"]) for r in rows] == [(ref, "dismissed", SCHOOL_A)]


def test_deadlines_soonest_first(api):
    late = api.report(discovered_at=hours_ago(70).isoformat())
    early = api.report(discovered_at=hours_ago(1).isoformat())
    deadlines = api.call("manager", "GET", "/deadlines").json()["items"]
    assert [(d["reference"], d["kind"]) for d in deadlines][:2] == [(late, "school_notice"), (late, "ap_notice")]
    assert deadlines[0]["status"] == "overdue" and deadlines[1]["status"] == "due_soon"
    assert deadlines[0]["due_at_local"].endswith(("CET", "CEST"))
    assert {d["reference"] for d in deadlines} == {late, early}


def test_workflow_is_the_lifecycle_definition(api):
    workflow = api.call("school_a", "GET", "/workflow").json()
    assert workflow["states"] == list(lifecycle.State)
    assert [s["trigger"] for s in workflow["steps"]] == [s.trigger for s in lifecycle.STEPS]
    confirm = next(s for s in workflow["steps"] if s["trigger"] == "confirm")
    assert {r["field"] for r in confirm["requires"]} >= {"summary", "affected_systems", "schools"}


def test_schools_are_managed_by_admins(api):
    body = {"brin": "56EF", "name": "De Vlinder", "contacts": ["info@vlinder.example.nl"]}
    assert_error(api.call("handler", "POST", "/schools", json=body), 403, "forbidden")
    created = api.call("admin", "POST", "/schools", json=body)
    assert created.status_code == 201 and created.json()["language"] == "nl"
    assert_error(api.call("admin", "POST", "/schools", json=body), 422, "invalid_input", "brin")
    assert [s["brin"] for s in api.call("handler", "GET", "/schools").json()["items"]] == [SCHOOL_A, SCHOOL_B, "56EF"]
    assert_error(api.call("school_a", "GET", "/schools"), 403, "forbidden")


# --- roles ------------------------------------------------------------------------------------

WRITES = [
    ("PATCH", "/incidents/{ref}", {"version": 1, "fields": {"measures": "x"}}),
    ("POST", "/incidents/{ref}/triggers/begin_triage", None),
    ("POST", "/incidents/{ref}/notes", {"text": "x"}),
    ("POST", "/incidents/{ref}/contacts", {"school": SCHOOL_A, "channel": "phone", "summary": "x"}),
    ("POST", "/incidents/{ref}/ap-notifications", {"kind": "preliminary", "ap_reference": "1"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[w[1].split("/")[-1] or "patch" for w in WRITES])
@pytest.mark.parametrize("user", ["manager", "admin", "school_a"])
def test_only_handlers_change_incidents(api, user, method, path, body):
    ref = api.report()
    assert_error(api.call(user, method, path.format(ref=ref), json=body), 403, "forbidden")
    assert api.call("handler", "GET", f"/incidents/{ref}").json()["version"] == 1


def test_managers_read_everything(api):
    ref = api.report()
    for path in (f"/incidents/{ref}", f"/incidents/{ref}/timeline", f"/incidents/{ref}/triggers", "/incidents",
                 "/register", "/deadlines", "/schools"):
        assert api.call("manager", "GET", path).status_code == 200, path


def test_admins_see_no_incident_data(api):
    ref = api.report()
    for path in (f"/incidents/{ref}", "/incidents", "/register", "/deadlines", f"/incidents/{ref}/timeline"):
        assert_error(api.call("admin", "GET", path), 403, "forbidden")


def test_only_schools_acknowledge(api):
    ref = api.report()
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/acknowledgements"), 403, "forbidden")
    assert_error(api.call("school_a", "POST", f"/incidents/{ref}/acknowledgements"), 409, "conflict")


def test_a_school_reports_for_itself_only(api):
    ref = api.report("school_a", schools={})
    incident = api.call("school_a", "GET", f"/incidents/{ref}").json()
    assert (incident["source"], [s["brin"] for s in incident["schools"]]) == ("school", [SCHOOL_A])
    body = {"schools": {SCHOOL_B: 1}, "fields": {"summary": "x"}}
    assert_error(api.call("school_a", "POST", "/incidents", json=body), 403, "forbidden")


# --- follow-up actions ----------------------------------------------------------------------


def lesson(**given):
    due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    return {"description": "Extend the release checklist", "owner": "handler", "due": due} | given


@pytest.fixture
def evaluating_ref(api, ctx):
    return evaluating(ctx, brins=(SCHOOL_A,))


def test_evaluated_takes_actions_that_a_handler_adds_to_and_settles(api, evaluating_ref):
    ref = evaluating_ref
    fired = api.call("handler", "POST", f"/incidents/{ref}/triggers/evaluated",
                     json={"fields": EVALUATE, "actions": [lesson(blocking=True)]})
    assert fired.status_code == 200, fired.text
    assert fired.json()["state"] == "ap_notification"
    added = api.call("handler", "POST", f"/incidents/{ref}/actions",
                     json={"version": fired.json()["version"], "actions": [lesson(owner="manager", due="2099-12-31")]})
    assert added.status_code == 201, added.text
    listed = added.json()["actions"]
    assert [(a["number"], a["owner"], a["blocking"], a["status"]) for a in listed] == [
        (1, "handler", True, "open"), (2, "manager", False, "open")]
    assert listed[1]["due_at_local"] == "2099-12-31 23:59 CET"  # a date: the end of that day in Amsterdam
    follow_ups = [(d["kind"], d["action"], d["owner"]) for d in api.call("handler", "GET", "/deadlines").json()["items"]
                  if d["kind"] == "follow_up"]
    assert follow_ups == [("follow_up", 1, "handler"), ("follow_up", 2, "manager")]

    settled = api.call("handler", "POST", f"/incidents/{ref}/actions/1/settlement",
                       json={"status": "done", "note": "Item 14 added"})
    assert settled.status_code == 200, settled.text
    assert settled.json()["actions"][0]["status"] == "done" and settled.json()["actions"][0]["settled_by"] == "handler"
    assert [d["action"] for d in api.call("handler", "GET", "/deadlines").json()["items"]
            if d["kind"] == "follow_up"] == [2]
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/actions/1/settlement", json={"status": "dropped"}),
                 409, "conflict")
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/actions/9/settlement", json={"status": "done"}),
                 404, "not_found")
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/actions", json={"version": 1, "actions": [lesson()]}),
                 409, "stale_version")
    words = [e for e in api.call("handler", "GET", f"/incidents/{ref}/timeline").json()["items"]
             if e["kind"] in ("actions_recorded", "action_settled")]
    assert [e["kind"] for e in words] == ["actions_recorded", "actions_recorded", "action_settled"]


def test_bad_actions_are_422_naming_the_field(api, evaluating_ref):
    ref = evaluating_ref
    add = lambda *actions: api.call("handler", "POST", f"/incidents/{ref}/actions", json={"actions": list(actions)})
    assert_error(add(lesson(description="  ")), 422, "invalid_input", "actions.0.description")
    assert_error(add(lesson(), lesson(owner="nobody")), 422, "invalid_input", "actions.1.owner")
    assert_error(add(lesson(owner="school_a")), 422, "invalid_input", "actions.0.owner")  # no staff
    assert_error(add(lesson(owner="admin")), 422, "invalid_input", "actions.0.owner")  # sees no incident, gets no reminder
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert_error(add(lesson(due=yesterday)), 422, "invalid_input", "actions.0.due")
    assert_error(add(lesson(due="2099-12-31T10:00")), 422, "invalid_input", "actions.0.due")  # no zone
    assert_error(add(lesson(due="soon")), 422, "invalid_input", "actions.0.due")
    assert_error(add(), 422, "invalid_input", "actions")
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/triggers/verified", json={"actions": [lesson()]}),
                 422, "invalid_input", "actions")  # actions come with evaluated
    add(lesson())
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/actions/1/settlement", json={"status": "open"}),
                 422, "invalid_input", "status")
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/actions/1/settlement", json={"status": "later"}),
                 422, "invalid_input", "status")
    assert [a["status"] for a in api.call("handler", "GET", f"/incidents/{ref}").json()["actions"]] == ["open"]


def test_a_school_neither_adds_nor_settles_actions_nor_sees_them_as_its_deadlines(api, evaluating_ref):
    ref = evaluating_ref
    assert api.call("handler", "POST", f"/incidents/{ref}/actions", json={"actions": [lesson()]}).status_code == 201
    assert_error(api.call("school_a", "POST", f"/incidents/{ref}/actions", json={"actions": [lesson()]}),
                 403, "forbidden")
    assert_error(api.call("school_a", "POST", f"/incidents/{ref}/actions/1/settlement", json={"status": "done"}),
                 403, "forbidden")
    assert_error(api.call("manager", "POST", f"/incidents/{ref}/actions/1/settlement", json={"status": "done"}),
                 403, "forbidden")
    seen = api.call("school_a", "GET", f"/incidents/{ref}").json()
    assert [a["number"] for a in seen["actions"]] == [1]  # as the closing notice will tell it
    assert "follow_up" not in {d["kind"] for d in seen["deadlines"]}
    assert "follow_up" not in {d["kind"] for d in api.call("school_a", "GET", "/deadlines").json()["items"]}
    assert_error(api.call("school_b", "GET", f"/incidents/{ref}"), 404, "not_found")
