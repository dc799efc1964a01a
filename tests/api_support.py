"""An API test installation: two schools, one user and token per role, a client that speaks as them."""

from __future__ import annotations

from dataclasses import dataclass, field

from conftest import add_school
from fastapi.testclient import TestClient

from breachflow.api.main import create_app
from breachflow.workflow import accounts
from breachflow.workflow.context import Context

SCHOOL_A, SCHOOL_B = "12AB", "34CD"


@dataclass
class Api:
    """A test client plus a token per user."""

    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def call(self, user: str | None, method: str, path: str, **kwargs):
        headers = kwargs.pop("headers", {}) | (self.headers(user) if user else {})
        return self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    def report(self, user: str = "handler", schools=None, **fields) -> str:
        body = {"source": "monitoring", "schools": schools or {SCHOOL_A: 28},
                "fields": {"summary": "Grades visible to other parents", **fields}}
        response = self.call(user, "POST", "/incidents", json=body)
        assert response.status_code == 201, response.text
        return response.json()["reference"]


def build(ctx: Context, settings) -> Api:
    """The installation; commands queue mail as in production (no worker sends it)."""
    add_school(ctx, SCHOOL_A, "De Regenboog")
    add_school(ctx, SCHOOL_B, "Het Anker")
    # the worker has tests of its own; here it would only send mail behind the tests' backs
    quiet = settings.model_copy(update={"in_process_worker": False})
    api = Api(TestClient(create_app(quiet), raise_server_exceptions=False))
    for username, role, school in [
        ("handler", "handler", None), ("manager", "manager", None), ("admin", "admin", None),
        ("school_a", "school", SCHOOL_A), ("school_b", "school", SCHOOL_B),
    ]:
        accounts.add_user(ctx, username=username, role=role, school=school)
        api.tokens[username] = accounts.create_token(ctx, username=username).secret
    return api


def assert_error(response, status: int, code: str, *fields: str) -> dict:
    """``response`` is a ``status`` error of ``code`` in the one shape, naming each of ``fields``."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"code", "message", "fields"}
    named = [f["field"] for f in error["fields"]]
    for name in fields:
        assert name in named, (name, named)
    return error
