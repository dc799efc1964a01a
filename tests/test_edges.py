"""The API's edges: what every response carries, how big a request may be, how often a client may
fail to authenticate, what a replayed report shows, and what the CSV export lets a spreadsheet do."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest
from api_support import SCHOOL_A, SCHOOL_B, assert_error, build
from fastapi.testclient import TestClient
from reading import all_incidents

from breachflow.api.main import create_app
from breachflow.api.register_export import csv_cell

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def small_limits(settings, **limits):
    return settings.model_copy(update={"in_process_worker": False, **limits})


# --- headers ---------------------------------------------------------------------------------


def assert_secured(response, *, cacheable: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.request.url)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "server" not in response.headers
    if not cacheable:
        assert response.headers["cache-control"] == "no-store"


def test_every_response_carries_the_security_headers(api):
    ref = api.report()
    answers = [
        api.call("handler", "GET", f"/incidents/{ref}"),  # data
        api.call("handler", "GET", "/register?format=csv"),
        api.call(None, "GET", "/incidents"),  # 401
        api.call("school_b", "GET", f"/incidents/{ref}"),  # 404
        api.client.get("/api/v1/nothing-here"),
        api.client.get("/api/v1/healthz"),
        api.client.get("/openapi.json"),
        api.client.get("/docs"),
    ]
    for response in answers:
        assert_secured(response)
    assert answers[0].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_an_unexpected_error_is_secured_too(ctx, settings):
    app = create_app(small_limits(settings))

    @app.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/boom")
    async def page_boom() -> None:
        raise RuntimeError("a bug on a page")

    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/api/v1/boom")
    assert_error(response, 500, "internal_error")
    assert_secured(response)
    page = client.get("/boom")  # a page's error is a page for a person, as secured
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "a bug" not in page.text and "Traceback" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_the_docs_page_may_load_its_own_files_and_only_those(api):
    page = api.client.get("/docs")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in policy and "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"):
        assert asset in page.text
        response = api.client.get(asset)
        assert response.status_code == 200
        assert_secured(response, cacheable=True)
        assert "cache-control" not in response.headers  # static files may be cached


# --- request bodies ------------------------------------------------------------------------


def test_a_100_mb_summary_is_refused_not_stored(api):
    body = {"schools": {SCHOOL_A: 1}, "fields": {"summary": "x" * (2 * 1024 * 1024)}}
    response = api.call("handler", "POST", "/incidents", json=body)
    assert_error(response, 413, "too_large")
    assert_secured(response)
    assert api.call("handler", "GET", "/incidents").json()["items"] == []


def test_a_streamed_body_is_counted_without_a_content_length(ctx, settings, api):
    api.client.app.max_body_bytes = 2048  # the stack is built on the first request, with this limit
    body = json.dumps({"schools": {SCHOOL_A: 1}, "fields": {"summary": "x" * 4000}}).encode()

    def chunks():  # no Content-Length: httpx sends it chunked
        for start in range(0, len(body), 500):
            yield body[start:start + 500]

    response = api.client.post("/api/v1/incidents", content=chunks(),
                               headers=api.headers("handler") | {"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too_large")
    assert all_incidents(ctx) == []
    fits = api.call("handler", "POST", "/incidents", json={"schools": {SCHOOL_A: 1}, "fields": {"summary": "x"}})
    assert fits.status_code == 201


def asgi_post(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, list[bytes]]:
    """POST straight to the ASGI app; return the status and the body chunks the app read."""
    read: list[bytes] = []
    sent: list[dict] = []

    async def receive():
        if not chunks:
            return {"type": "http.disconnect"}
        chunk = chunks.pop(0)
        read.append(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/incidents", "raw_path": b"/api/v1/incidents", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], read


def test_a_declared_length_over_the_limit_is_refused_before_reading(ctx, settings):
    app = create_app(small_limits(settings, max_body_bytes=2048))
    status, read = asgi_post(app, [(b"content-length", b"5000000"), (b"content-type", b"application/json")],
                             [b"{" + b" " * 5000])
    assert (status, read) == (413, [])


def test_a_false_content_length_does_not_get_past_the_count(ctx, settings):
    app = create_app(small_limits(settings, max_body_bytes=2048))
    status, read = asgi_post(app, [(b"content-length", b"10"), (b"content-type", b"application/json")],
                             [b"{" + b" " * 1500, b" " * 1500 + b"}"])
    assert status == 413 and len(read) == 2


# --- failed authentication ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_authentication_is_limited_per_client_until_the_window_passes(ctx, settings):
    api = build(ctx, settings.model_copy(update={"auth_failures_per_minute": 3}))
    clock = Clock()
    api.client.app.state.auth_failures.clock = clock
    wrong = {"Authorization": "Bearer bf_guess"}
    for _ in range(3):
        assert_error(api.client.get("/api/v1/incidents", headers=wrong), 401, "unauthenticated")
    clock.now += 10
    blocked = api.call("handler", "GET", "/incidents")  # now even a valid token from this client waits
    assert_error(blocked, 429, "too_many_failures")
    assert blocked.headers["retry-after"] == "50"

    elsewhere = TestClient(api.client.app, client=("192.0.2.7", 40000))
    assert elsewhere.get("/api/v1/incidents", headers=api.headers("handler")).status_code == 200
    assert_error(elsewhere.get("/api/v1/incidents", headers=wrong), 401, "unauthenticated")  # its own count

    clock.now += 50
    assert api.call("handler", "GET", "/incidents").status_code == 200


def test_successful_requests_do_not_count(ctx, settings):
    api = build(ctx, settings.model_copy(update={"auth_failures_per_minute": 2}))
    for _ in range(5):
        assert api.call("handler", "GET", "/incidents").status_code == 200
    assert_error(api.call(None, "GET", "/incidents"), 401, "unauthenticated")
    assert api.call("handler", "GET", "/incidents").status_code == 200


# --- idempotent replay ------------------------------------------------------------------------

REPORT = {"fields": {"summary": "Class list on the parents' portal"}}


def test_a_replay_after_the_incident_moved_to_another_school_is_404_like_get(api):
    key = {"Idempotency-Key": "school-a-1"}
    first = api.call("school_a", "POST", "/incidents", json=REPORT, headers=key)
    ref = first.json()["reference"]
    moved = api.call("handler", "PATCH", f"/incidents/{ref}",
                     json={"version": 1, "schools": {SCHOOL_B: 40}, "remove_schools": [SCHOOL_A],
                           "fields": {"measures": "Portal of Het Anker closed"}})
    assert moved.status_code == 200
    replay = api.call("school_a", "POST", "/incidents", json=REPORT, headers=key)
    get = api.call("school_a", "GET", f"/incidents/{ref}")
    assert_error(replay, 404, "not_found")
    assert replay.json() == get.json()
    assert "Anker" not in replay.text and SCHOOL_B not in replay.text


def test_a_replay_shows_the_callers_own_view_now(api):
    key = {"Idempotency-Key": "school-a-2"}
    ref = api.call("school_a", "POST", "/incidents", json=REPORT | {"fields": {
        "summary": "Class list on the parents' portal", "reporter_name": "Pieter de Vries"}}, headers=key).json()
    api.call("handler", "PATCH", f"/incidents/{ref['reference']}", json={"version": 1, "schools": {SCHOOL_B: 40}})
    replay = api.call("school_a", "POST", "/incidents", json=REPORT | {"fields": {
        "summary": "Class list on the parents' portal", "reporter_name": "Pieter de Vries"}}, headers=key)
    assert replay.status_code == 201
    assert replay.json() == api.call("school_a", "GET", f"/incidents/{ref['reference']}").json()
    assert [s["brin"] for s in replay.json()["schools"]] == [SCHOOL_A]
    assert replay.json()["disclosure"]["reporter_name"] is None


def test_idempotency_keys_belong_to_one_user(api):
    key = {"Idempotency-Key": "same-key"}
    mine = api.call("school_a", "POST", "/incidents", json=REPORT, headers=key).json()
    theirs = api.call("school_b", "POST", "/incidents", json=REPORT, headers=key)
    handlers = api.call("handler", "POST", "/incidents", json=REPORT | {"schools": {SCHOOL_A: 1}}, headers=key)
    assert theirs.status_code == handlers.status_code == 201
    references = {mine["reference"], theirs.json()["reference"], handlers.json()["reference"]}
    assert len(references) == 3
    assert [s["brin"] for s in theirs.json()["schools"]] == [SCHOOL_B]
    assert api.call("school_b", "GET", f"/incidents/{mine['reference']}").status_code == 404


# --- the register as CSV ----------------------------------------------------------------------


@pytest.mark.parametrize("summary", ['=HYPERLINK("http://x","y")', "+31 20 123", "-2+3", "@SUM(A1)"])
def test_the_csv_register_exports_formulas_as_text(api, summary):
    api.report(summary=summary)
    (row,) = csv.DictReader(io.StringIO(api.call("manager", "GET", "/register/export?format=csv").text))
    assert row["summary"] == "'" + summary
    assert api.call("manager", "GET", "/register").json()["items"][0]["summary"] == summary  # JSON as given


@pytest.mark.parametrize("cell", ["\tcmd", "\rcmd", "=1+1", "+1", "-1", "@A1"])
def test_every_formula_start_is_neutralised(cell):
    assert csv_cell(cell) == "'" + cell
    assert csv_cell([cell, "x"]) == f"'{cell}; x"
    assert csv_cell("De Regenboog") == "De Regenboog" and csv_cell(28) == 28
