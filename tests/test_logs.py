"""Logs: one configuration, JSON on request, a request id on every line of a request, and never
personal data, not even at DEBUG through a whole incident over real SMTP."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import build
from cli_process import COMMAND, environment
from conftest import AP_FORM, CONFIRM, CONTAIN, EVALUATE, REMEDIATE, RESTORE, VERIFY
from fastapi.exceptions import ResponseValidationError
from notify_support import settings_env
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError
from smtp_server import free_port

from breachflow.notifications.models import outbox_t
from breachflow.workflow import accounts, logs
from breachflow.workflow.config import Settings
from breachflow.workflow.redaction import for_log

# --- one process's lines, in this test process -------------------------------------------------


@pytest.fixture
def json_lines(capsys):
    """Logging configured for JSON at DEBUG; a function returning the lines logged since the last call."""
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    logs.configure(Settings(log_format="json", log_level="debug"))
    capsys.readouterr()
    yield lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    root.handlers[:], _ = kept
    root.setLevel(kept[1])


def test_a_valid_request_id_is_kept_returned_and_carried_into_the_service_layer(ctx, settings, json_lines):
    api = build(ctx, settings)
    json_lines()
    response = api.call("handler", "POST", "/incidents", headers={"X-Request-ID": "client-chosen.id:42"},
                        json={"source": "monitoring", "schools": {"12AB": 3}, "fields": {"summary": "Lists visible"}})
    assert response.headers["X-Request-ID"] == "client-chosen.id:42"
    lines = json_lines()
    (access,) = [line for line in lines if line["logger"] == "breachflow.access"]
    assert access["request_id"] == "client-chosen.id:42"
    assert (access["method"], access["route"], access["status"], access["role"]) == (
        "POST", "/api/v1/incidents", 201, "handler")
    assert isinstance(access["user_id"], int) and access["duration_ms"] >= 0
    (unit,) = [line for line in lines if line["logger"] == "breachflow.unit"]
    assert unit["request_id"] == "client-chosen.id:42" and "reported" in unit["message"]


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 129, "quote\"d", "ünïcode".encode()])
def test_a_missing_or_invalid_request_id_is_replaced_by_a_new_one(ctx, settings, json_lines, given):
    api = build(ctx, settings)
    json_lines()
    response = api.client.get("/api/v1/healthz", headers={} if given is None else {"X-Request-ID": given})
    made = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    (access,) = [line for line in json_lines() if line["logger"] == "breachflow.access"]
    assert access["request_id"] == made and "user_id" not in access


def test_the_access_line_has_the_template_and_no_query(ctx, settings, json_lines):
    api = build(ctx, settings)
    reference = api.report()
    json_lines()
    api.call("manager", "GET", f"/incidents/{reference}")
    api.call("manager", "GET", "/incidents?state=reported&school=12AB")
    routes = [line["route"] for line in json_lines() if line["logger"] == "breachflow.access"]
    assert routes == ["/api/v1/incidents/{reference}", "/api/v1/incidents"]


def test_two_requests_never_share_an_id(ctx, settings):
    api = build(ctx, settings)
    assert api.client.get("/api/v1/healthz").headers["X-Request-ID"] != api.client.get(
        "/api/v1/healthz").headers["X-Request-ID"]


def test_an_unexpected_error_is_logged_once_with_its_request_id_and_redacted(ctx, settings, json_lines):
    api = build(ctx, settings)

    @api.client.app.get("/api/v1/boom")
    async def boom():
        raise RuntimeError("mail to someone.private@example.nl failed")

    api.client.app.state.route_templates[id(boom)] = "/api/v1/boom"
    json_lines()
    response = api.client.get("/api/v1/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    lines = json_lines()
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["request_id"] == "boom-1" and "RuntimeError" in error["exception"]
    assert "someone.private" not in json.dumps(lines) and "<address>" in error["exception"]


def test_a_response_that_fails_its_model_is_logged_without_the_values_it_held(ctx, settings, json_lines):
    api = build(ctx, settings)

    @api.client.app.get("/api/v1/broken", response_model=dict[str, int])
    async def broken():
        return {"summary": "Jan de Vries-Qx7 zag de lijst"}

    json_lines()
    assert api.client.get("/api/v1/broken").status_code == 500
    lines = json_lines()
    assert [line["level"] for line in lines if line["level"] == "ERROR"] == ["ERROR"]
    assert "Qx7" not in json.dumps(lines)


def test_text_lines_carry_the_request_id_too(ctx, settings, capsys):
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        logs.configure(Settings(log_format="text"))
        build(ctx, settings).client.get("/api/v1/healthz", headers={"X-Request-ID": "plain-1"})
        (line,) = [line for line in capsys.readouterr().err.splitlines() if "breachflow.access" in line]
        assert re.fullmatch(r"\S+ INFO breachflow\.access \[plain-1\] GET /api/v1/healthz 200 [\d.]+ ms", line)
    finally:
        root.handlers[:], _ = kept
        root.setLevel(kept[1])


def test_a_path_no_route_serves_is_never_logged(ctx, settings, json_lines):
    api = build(ctx, settings)
    reference = api.report()
    json_lines()
    api.client.get("/api/v1/PLANTED-Hiltje-de-Boer/x")
    api.call("manager", "GET", f"/incidents/{reference}/PLANTED-Jildou")
    api.client.request("BREW", "/api/v1/healthz")
    lines = [line for line in json_lines() if not line["logger"].startswith("httpx")]  # the test's own client
    assert not [line for line in lines if "PLANTED" in json.dumps(line)]
    access = [(line["method"], line["route"]) for line in lines if line["logger"] == "breachflow.access"]
    assert access == [("GET", "unmatched"), ("GET", "unmatched"), ("OTHER", "/api/v1/healthz")]


def test_a_text_line_cannot_be_split_into_a_forged_one(capsys):
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        logs.configure(Settings(log_format="text"))
        logging.getLogger("breachflow.test").warning("got %s", "x\n2026-11-29T00:00:00.000+00:00 CRITICAL forged")
        (line,) = capsys.readouterr().err.splitlines()
        assert line.endswith("got x\\n2026-11-29T00:00:00.000+00:00 CRITICAL forged")
    finally:
        root.handlers[:], _ = kept
        root.setLevel(kept[1])


def test_redaction_takes_out_addresses_and_the_values_a_database_error_repeats():
    assert for_log("550 <Jan.Jansen@school.example>: no such user") == "550 <address>: no such user"
    assert for_log('DETAIL:  Key (username)=(jan.jansen) already exists.') == (
        'DETAIL:  Key (username)=(…) already exists.')
    assert for_log("Key (brin, name)=(12AB, De Regenboog) is not present in table") == (
        "Key (brin, name)=(…) is not present in table")


def test_redaction_takes_out_the_values_a_validation_error_repeats():
    class Row(BaseModel):
        count: int

    with pytest.raises(ValidationError) as refused:
        Row(count="Jan de Vries")
    assert "Jan de Vries" in str(refused.value) and "Jan de Vries" not in for_log(str(refused.value))
    error = ResponseValidationError([{"type": "int_type", "loc": ("response",), "msg": "Input should be an integer",
                                      "input": {"summary": "Piet Klaassen}", "seen": ["by", {"x": 1}]}}])
    assert "Piet" in str(error) and "Piet" not in for_log(str(error)) and "Input should be an integer" in for_log(
        str(error))


def test_the_log_level_and_format_are_checked():
    with pytest.raises(ValueError):
        Settings(log_level="chatty")
    with pytest.raises(ValueError):
        Settings(log_format="xml")


# --- a whole incident through a real `serve`, its log read line by line -------------------------

# Every string a person wrote or that names a person, planted where the scenario can carry it.
PLANTED = {
    "school_name": "Basisschool Zonnewijzer-Qx7",
    "school_contact": "directie.qx7@zonnewijzer.example",
    "other_contact": "ib.qx7@zonnewijzer.example",
    "handler_name": "jdevries-qx7",
    "handler_email": "jan.devries.qx7@verwerker.example",
    "manager_email": "m.bakker.qx7@verwerker.example",
    "school_user": "zonnewijzer-qx7",
    "reporter_name": "Pieter Plantinga-Qx7",
    "reporter_contact": "pieter.qx7@ouders.example",
    "summary": "Cijferlijst van groep 8 zichtbaar voor Jan-Qx7 en Fatima-Qx7",
    "discovery_method": "Melding door moeder van Noor-Qx7",
    "nature_how": "Rechtencontrole ontbrak in de module van juf Anneke-Qx7",
    "measures": "Module uitgezet na telefoontje met meester Kees-Qx7",
    "cause_description": "Release 4.2-Qx7 liet de groepscontrole vallen",
    "fix_description": "Groepscontrole-Qx7 hersteld",
    "backup_description": "Nachtelijke backup-Qx7",
    "evaluation": "Evaluatie-Qx7: checklist uitgebreid",
    "consequences": "Cijfers van Sem-Qx7 gezien door andere ouders",
    "subjects_not_informed_reason": "Laag risico-Qx7",
    "contact_summary": "Directeur Henk-Qx7 gebeld",
    "note": "Leverancier Qx7-BV gebeld",
    "notice_message": "Beste Henk-Qx7, hierbij een update",
    "delay_reason": "Vertraagd door ziekte van Marieke-Qx7",
    "acknowledgement": "Ontvangen door Henk-Qx7",
    "dismissal_reason": "Geen datalek volgens Karin-Qx7",
}
METRICS_TOKEN = "scrape-" + "q" * 40


class Served:
    """A `breachflow serve` process: JSON logs at DEBUG into a file, HTTP calls with chosen request ids."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent_ids: list[str] = []

    def call(self, method: str, path: str, token: str | None = None, body: dict | None = None,
             request_id: str | None = None) -> tuple[int, dict, object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if request_id:
            headers["X-Request-ID"] = request_id
            self.sent_ids.append(request_id)
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, headers=headers,
                                         data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 http://127.0.0.1 above
                status, answer_headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, error.headers, error.read()
        answer_headers = {name.lower(): value for name, value in answer_headers.items()}
        content = raw.decode()
        return status, answer_headers, json.loads(content) if "json" in answer_headers.get("content-type", "") else content

    def ok(self, method: str, path: str, token: str, body: dict | None = None, request_id: str | None = None):
        status, _, content = self.call(method, path, token, body, request_id)
        assert status in (200, 201), (method, path, status, content)
        return content


@pytest.fixture
def served(ctx, smtp, tmp_path):
    port = free_port()
    env = settings_env(ctx.settings) | {
        "BREACHFLOW_SMTP_HOST": "127.0.0.1", "BREACHFLOW_SMTP_PORT": str(smtp.port),
        "BREACHFLOW_LOG_FORMAT": "json", "BREACHFLOW_LOG_LEVEL": "DEBUG", "BREACHFLOW_METRICS_TOKEN": METRICS_TOKEN,
        "BREACHFLOW_REMINDER_SCAN_SECONDS": "0.3", "BREACHFLOW_DISPATCH_POLL_SECONDS": "0.2",
    }
    log_file = tmp_path / "serve.log"
    with open(log_file, "w") as stderr:
        process = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], cwd=tmp_path,
                                   env=environment(**env), stdout=subprocess.PIPE, stderr=stderr, text=True)
    server = Served(port)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if server.call("GET", "/api/v1/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield server, process, log_file
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        process.stdout.close()


def wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def scrape(server: Served) -> dict[tuple[str, frozenset], float]:
    status, _, text = server.call("GET", "/metrics", METRICS_TOKEN)
    assert status == 200, text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def walk_an_incident_to_closed(server: Served, handler: str, school: str) -> str:
    """Report → confirm → … → closed, through the API, with a planted string in every text."""
    p = PLANTED
    discovered = (datetime.now(UTC) - timedelta(hours=75)).isoformat()  # AP deadline passed: a delay reason
    ref = server.ok("POST", "/api/v1/incidents", handler, {"source": "school", "schools": {"12QX": 40}, "fields": {
        "summary": p["summary"], "reporter_name": p["reporter_name"], "reporter_contact": p["reporter_contact"],
        "discovery_method": p["discovery_method"], "discovered_at": discovered}}, "scenario-report")["reference"]
    fire = lambda trigger, fields, rid=None: server.ok(  # noqa: E731
        "POST", f"/api/v1/incidents/{ref}/triggers/{trigger}", handler, {"fields": fields}, rid)
    fire("begin_triage", {})
    fire("confirm", CONFIRM | {"nature_how": p["nature_how"]}, "scenario-confirm")
    server.ok("POST", f"/api/v1/incidents/{ref}/notes", handler, {"text": p["note"]})
    fire("contained", CONTAIN | {"measures": p["measures"]})
    server.ok("POST", f"/api/v1/incidents/{ref}/contacts", handler,
              {"school": "12QX", "channel": "phone", "summary": p["contact_summary"]})
    fire("remediated", REMEDIATE | {"cause_description": p["cause_description"],
                                    "fix_description": p["fix_description"], "data_lost_or_altered": True})
    fire("restored", RESTORE | {"backup_description": p["backup_description"]})
    fire("verified", VERIFY)
    server.ok("POST", f"/api/v1/incidents/{ref}/notices", handler, {"message": p["notice_message"]})
    server.ok("POST", f"/api/v1/incidents/{ref}/acknowledgements", school, {"comment": p["acknowledgement"]})
    groups = [{**EVALUATE["affected_groups"][0], "consequences": p["consequences"]}]
    fire("evaluated", EVALUATE | {"evaluation": p["evaluation"], "affected_groups": groups})
    server.ok("POST", f"/api/v1/incidents/{ref}/ap-notifications", handler,
              {"kind": "final", "ap_reference": "2026-QX-1", "delay_reason": p["delay_reason"]})
    closed = fire("ap_notified", AP_FORM | {"subjects_not_informed_reason": p["subjects_not_informed_reason"]})
    assert closed["state"] == "closed"
    return ref


@pytest.mark.slow
def test_a_whole_incident_leaves_json_logs_with_request_ids_and_no_personal_data(ctx, smtp, served):
    server, process, log_file = served
    admin = accounts.create_token(ctx, username="admin", label="test").secret  # serve made the admin at start
    server.ok("POST", "/api/v1/schools", admin, {"brin": "12QX", "name": PLANTED["school_name"],
                                                 "contacts": [PLANTED["school_contact"], PLANTED["other_contact"]]})
    tokens = {}
    for username, role, school, email in [(PLANTED["handler_name"], "handler", None, PLANTED["handler_email"]),
                                          ("boss", "manager", None, PLANTED["manager_email"]),
                                          (PLANTED["school_user"], "school", "12QX", None)]:
        accounts.add_user(ctx, username=username, role=role, school=school, email=email)
        tokens[role] = accounts.create_token(ctx, username=username).secret
    handler = tokens["handler"]

    closed = walk_an_incident_to_closed(server, handler, tokens["school"])
    overdue = server.ok("POST", "/api/v1/incidents", handler, {"source": "monitoring", "schools": {"12QX": 1},
                        "fields": {"discovered_at": (datetime.now(UTC) - timedelta(hours=80)).isoformat()}})["reference"]
    dismissed = server.ok("POST", "/api/v1/incidents", handler, {"source": "school", "schools": {"12QX": None}})
    server.ok("POST", f"/api/v1/incidents/{dismissed['reference']}/triggers/begin_triage", handler, {"fields": {}})
    server.ok("POST", f"/api/v1/incidents/{dismissed['reference']}/triggers/dismiss", handler,
              {"fields": {"dismissal_reason": PLANTED["dismissal_reason"]}})

    def reminded() -> bool:  # the overdue incident's two clocks (school and AP notice) make the scanner remind
        return sum(PLANTED["handler_email"] in r.recipients and overdue in r.message["Subject"]
                   for r in smtp.received) == 2  # the staff (the walked incident's reminders came earlier)

    def all_sent() -> bool:
        with ctx.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(outbox_t.c.status != "sent")).scalar_one() == 0

    wait_for(reminded, "a reminder to the handler")
    wait_for(all_sent, "every message sent")
    with ctx.engine.connect() as conn:
        sent = conn.execute(sa.select(sa.func.count()).select_from(outbox_t)).scalar_one()
    first_lines = [r.part("plain").splitlines()[0] for r in smtp.received]  # what each is (one subject per school)
    assert len(first_lines) == sent and f"Datalek {closed} is afgesloten" in first_lines, first_lines

    # the metrics of the same process, after the scenario
    found = scrape(server)
    states = {dict(labels)["state"]: n for (name, labels), n in found.items() if name == "breachflow_incidents"}
    assert {s: n for s, n in states.items() if n} == {"closed": 1, "reported": 1, "dismissed": 1}
    assert found[("breachflow_messages_sent_total", frozenset())] == sent
    assert found[("breachflow_message_failures_total", frozenset({("outcome", "dead")}))] == 0
    for status in ("pending", "sending", "accepted", "dead"):
        assert found[("breachflow_outbox_messages", frozenset({("status", status)}))] == 0
    assert found[("breachflow_deadlines_open", frozenset({("kind", "school_notice"), ("status", "overdue")}))] == 1
    assert found[("breachflow_workers", frozenset())] == 1
    assert server.call("GET", "/api/v1/readyz", request_id="scenario-ready")[0] == 200
    _, made, _ = server.call("GET", "/api/v1/healthz")

    process.terminate()
    process.wait(timeout=30)  # uvicorn stops gracefully, then re-raises SIGTERM
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object

    for name, planted in PLANTED.items():
        assert planted.lower() not in text.lower(), f"{name} is in the log"
    for planted in (closed, overdue):  # references may be logged; they are not personal data
        assert planted in text
    access = [line for line in lines if line["logger"] == "breachflow.access"]
    assert all(line.get("request_id") and "?" not in line["route"] and "DL-" not in line["route"] for line in access)
    assert {line["request_id"] for line in access} >= set(server.sent_ids) | {made["x-request-id"]}
    confirm_lines = [line for line in lines if line.get("request_id") == "scenario-confirm"]
    assert {line["logger"] for line in confirm_lines} >= {"breachflow.unit", "breachflow.access"}
    worker_lines = [line for line in lines if line["logger"] == "breachflow.unit" and "notices_sent" in line["message"]]
    assert worker_lines and all("request_id" not in line for line in worker_lines)  # the worker serves no request
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]


@pytest.mark.slow
def test_the_cli_logs_through_the_same_configuration(ctx, tmp_path: Path):
    from cli_process import breachflow

    env = settings_env(ctx.settings) | {"BREACHFLOW_LOG_FORMAT": "json", "BREACHFLOW_LOG_LEVEL": "DEBUG"}
    done = breachflow(tmp_path, "incident", "report", "--source", "monitoring", "--set", "summary=Bart-Qx7 saw it",
                      **env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [line["logger"] for line in lines] == ["breachflow.unit"]
    assert "Qx7" not in done.stderr
