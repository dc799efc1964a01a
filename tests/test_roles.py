"""Every route against every role: what each may do, in one table."""

from __future__ import annotations

import pytest
from api_support import SCHOOL_A, build
from conftest import CONFIRM, Snapshot, audit_after, hours_ago

ROLES = ("handler", "manager", "school_a", "school_b", "admin")
CONTACT = {"school": SCHOOL_A, "channel": "phone", "summary": "Director informed"}
LESSON = {"description": "Extend the release checklist", "owner": "handler", "due": "2099-12-31"}
# route → status per role, in the order of ROLES
MATRIX = [
    ("GET", "/incidents", None, (200, 200, 200, 200, 403)),
    ("POST", "/incidents", {"fields": {"summary": "USB stick lost"}}, (201, 403, 201, 201, 403)),
    ("GET", "/incidents/{ref}", None, (200, 200, 200, 404, 403)),
    ("PATCH", "/incidents/{ref}", {"version": 4, "fields": {"measures": "Passwords reset"}},
     (200, 403, 403, 403, 403)),
    ("GET", "/incidents/{ref}/triggers", None, (200, 200, 403, 403, 403)),
    ("POST", "/incidents/{ref}/triggers/contained", {"fields": {"measures": "Module off"}},
     (200, 403, 403, 403, 403)),
    ("GET", "/incidents/{ref}/timeline", None, (200, 200, 200, 404, 403)),
    ("POST", "/incidents/{ref}/notes", {"text": "Called the supplier"}, (201, 403, 403, 403, 403)),
    ("POST", "/incidents/{ref}/contacts", CONTACT, (201, 403, 403, 403, 403)),
    ("POST", "/incidents/{ref}/ap-notifications", {"kind": "preliminary", "ap_reference": "2026-1"},
     (201, 403, 403, 403, 403)),
    ("POST", "/incidents/{ref}/notices", {"message": "More soon"}, (201, 403, 403, 403, 403)),
    ("POST", "/incidents/{ref}/acknowledgements", {"comment": "Received"}, (403, 403, 201, 404, 403)),
    ("POST", "/incidents/{ref}/people-informed", {"school": SCHOOL_A, "informed": False, "note": "No addresses"},
     (201, 403, 201, 404, 403)),
    # follow-up actions are a handler's: added from evaluation on (409 before), settled if they exist (404)
    ("POST", "/incidents/{ref}/actions", {"actions": [LESSON]}, (409, 403, 403, 403, 403)),
    ("POST", "/incidents/{ref}/actions/1/settlement", {"status": "done"}, (404, 403, 403, 403, 403)),
    # the cause is not yet known, so the processor notifies the AP: not the school's dossier
    ("GET", "/incidents/{ref}/ap-dossier", None, (200, 200, 403, 404, 403)),
    ("GET", "/register", None, (200, 200, 200, 200, 403)),
    ("GET", "/deadlines", None, (200, 200, 200, 200, 403)),
    ("GET", "/workflow", None, (200, 200, 200, 200, 200)),
    ("GET", "/schools", None, (200, 200, 403, 403, 200)),
    ("POST", "/schools", {"brin": "56EF", "name": "De Vlinder", "contacts": ["info@vlinder.nl"]},
     (403, 403, 403, 403, 201)),
    ("PATCH", f"/schools/{SCHOOL_A}", {"kvk_number": "41234567"}, (403, 403, 403, 403, 200)),
    ("GET", "/healthz", None, (200, 200, 200, 200, 200)),
    # a school asks about its own people only; a handler acts on its request
    ("POST", "/subjects/export", {"name": "Nobody Known", "school": SCHOOL_A}, (200, 403, 200, 403, 403)),
    ("POST", "/subjects/erase", {"name": "Nobody Known", "school": SCHOOL_A}, (200, 403, 200, 403, 403)),
]
CASES = [(method, path, body, role, statuses[i])
         for method, path, body, statuses in MATRIX for i, role in enumerate(ROLES)]


@pytest.fixture(scope="module")
def built(shared_installation):
    """A confirmed incident affecting school A only, whose first notice went out (by phone); built
    once for the module, its rows kept to be put back before each case."""
    settings, ctx = shared_installation
    api = build(ctx, settings)
    ref = api.report(schools={SCHOOL_A: 12}, discovered_at=hours_ago(2).isoformat())
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    api.call("handler", "POST", f"/incidents/{ref}/triggers/confirm", json={"fields": CONFIRM})
    api.call("handler", "POST", f"/incidents/{ref}/contacts", json=CONTACT)
    assert api.call("handler", "GET", f"/incidents/{ref}").json()["version"] == 4
    return api, ref, Snapshot(ctx)


@pytest.fixture
def world(built, shared_installation, request):
    """The world as built, whatever the case before did to it; audited after the case."""
    api, ref, snapshot = built
    snapshot.restore()
    yield api, ref
    audit_after(shared_installation[1], request)


@pytest.mark.parametrize(("method", "path", "body", "role", "status"), CASES,
                         ids=[f"{m} {p} as {r}" for m, p, _, r, _ in CASES])
def test_route_and_role(world, method, path, body, role, status):
    api, ref = world
    response = api.call(role, method, path.format(ref=ref), json=body)
    assert response.status_code == status, response.text
