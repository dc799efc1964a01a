"""Liveness and readiness: /healthz answers while the process lives; /readyz says whether breachflow
can do its work (database, a worker's heartbeat, an outbox that moves) and names what fails."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from api_support import assert_error
from cli_process import COMMAND, environment
from conftest import add_school, confirmed
from fastapi.testclient import TestClient
from notify_support import settings_env, with_notices
from pydantic import ValidationError
from smtp_server import free_port

from breachflow.api.main import create_app
from breachflow.notifications import heartbeat
from breachflow.notifications.models import heartbeat_t, outbox_t
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context


def app_for(ctx: Context, **settings) -> TestClient:
    return TestClient(create_app(ctx.settings.model_copy(update={"in_process_worker": False, **settings})))


def beat(ctx: Context, seconds_ago: float = 0, worker: str = "host-a:101") -> None:
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    heartbeat.beat(ctx, heartbeat.Worker(worker, moment), moment)


def ready(client: TestClient):
    return client.get("/api/v1/readyz")


def failed_checks(response) -> list[str]:
    error = assert_error(response, 503, "not_ready")
    return [f["field"] for f in error["fields"]]


def test_ready_with_a_worker_running_and_nothing_waiting(ctx):
    with app_for(ctx, in_process_worker=True) as client:  # the lifespan runs the worker, which beats at once
        wait_until(lambda: ready(client).status_code == 200, "the worker's first beat")
        response = ready(client)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert [(c["name"], c["ok"]) for c in response.json()["checks"]] == [
        ("database", True), ("worker", True), ("outbox", True)]


def test_a_worker_that_stopped_leaves_no_heartbeat(ctx):
    with app_for(ctx, in_process_worker=True) as client:
        wait_until(lambda: ready(client).status_code == 200, "the worker's first beat")
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(heartbeat_t)).scalar_one() == 0
    assert failed_checks(ready(app_for(ctx))) == ["worker"]


def test_no_worker_is_not_ready_and_says_so(ctx):
    response = ready(app_for(ctx))
    assert failed_checks(response) == ["worker"]
    assert "180 s" in response.json()["error"]["fields"][0]["problem"]


def test_probes_that_ask_with_head_get_the_same_answer_without_a_body(ctx):
    client = app_for(ctx)
    assert client.head("/api/v1/healthz").status_code == 200
    not_ready = client.head("/api/v1/readyz")
    assert (not_ready.status_code, not_ready.content) == (503, b"")
    beat(ctx)
    assert client.head("/api/v1/readyz").status_code == 200


def test_a_worker_silent_too_long_counts_as_gone(ctx):
    client = app_for(ctx, worker_stale_seconds=120)
    beat(ctx, seconds_ago=125)
    assert failed_checks(ready(client)) == ["worker"]
    beat(ctx, seconds_ago=115)
    assert ready(client).status_code == 200


def test_a_worker_counts_as_gone_after_three_scans_unless_told_otherwise(tmp_path):
    assert Settings(data_dir=tmp_path).worker_stale_seconds == 180
    assert Settings(data_dir=tmp_path, reminder_scan_seconds=600).worker_stale_seconds == 1800
    assert Settings(data_dir=tmp_path, reminder_scan_seconds=600, worker_stale_seconds=700).worker_stale_seconds == 700
    with pytest.raises(ValidationError, match="WORKER_STALE_SECONDS must be longer"):
        Settings(data_dir=tmp_path, reminder_scan_seconds=600, worker_stale_seconds=300)


def test_one_row_per_worker_and_the_silent_ones_are_cleaned(ctx):
    beat(ctx, seconds_ago=500, worker="gone:7")
    beat(ctx, seconds_ago=30, worker="host-a:101")
    beat(ctx, seconds_ago=0, worker="host-a:101")
    beat(ctx, seconds_ago=0, worker="host-b:202")
    with ctx.engine.connect() as conn:
        rows = sorted(conn.execute(sa.select(heartbeat_t.c.worker)).scalars())
    assert rows == ["host-a:101", "host-b:202"]


def test_an_unreachable_database_is_named_without_saying_where_it_is(ctx, backend):
    client = app_for(ctx)
    beat(ctx)
    nowhere = (f"postgresql+psycopg://breachflow@127.0.0.1:{free_port()}/gone" if backend == "postgresql"
               else "sqlite:////nonexistent-directory/breachflow.db")
    client.app.state.ctx = replace(ctx, engine=sa.create_engine(nowhere))
    response = ready(client)
    assert failed_checks(response) == ["database"]
    assert "nonexistent" not in response.text and "127.0.0.1" not in response.text
    assert client.get("/api/v1/healthz").status_code == 200  # alive all the same: liveness asks no database


def test_a_message_due_too_long_means_the_outbox_is_stuck(ctx):
    add_school(ctx)
    confirmed(with_notices(ctx))  # the first notice waits in the outbox, due now
    client = app_for(ctx, outbox_stuck_seconds=300)
    beat(ctx)
    assert ready(client).status_code == 200
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=290)))
    assert ready(client).status_code == 200
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=310)))
    response = ready(client)
    assert failed_checks(response) == ["outbox"]
    assert "limit 300 s" in response.json()["error"]["fields"][0]["problem"]


def test_a_retry_waiting_out_its_backoff_is_not_stuck(ctx):
    add_school(ctx)
    confirmed(with_notices(ctx))
    client = app_for(ctx, outbox_stuck_seconds=300)
    beat(ctx)
    with ctx.engine.begin() as conn:  # created long ago, tried and failed: next try in ten minutes
        conn.execute(sa.update(outbox_t).values(created_at=datetime.now(UTC) - timedelta(hours=2), attempts=3,
                                                next_attempt_at=datetime.now(UTC) + timedelta(minutes=10)))
    assert ready(client).status_code == 200


def test_a_claim_held_past_its_lease_means_the_outbox_is_stuck(ctx):
    add_school(ctx)
    confirmed(with_notices(ctx))
    client = app_for(ctx)
    beat(ctx)
    with ctx.engine.begin() as conn:  # a dispatcher claimed it and was never heard of again
        conn.execute(sa.update(outbox_t).values(status="sending", claimed_until=datetime.now(UTC) + timedelta(seconds=60)))
    assert ready(client).status_code == 200
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).values(claimed_until=datetime.now(UTC) - timedelta(seconds=1)))
    response = ready(client)
    assert failed_checks(response) == ["outbox"]
    assert "past their lease" in response.json()["error"]["fields"][0]["problem"]


def test_every_failed_check_is_named_at_once(ctx):
    add_school(ctx)
    confirmed(with_notices(ctx))
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).values(next_attempt_at=datetime.now(UTC) - timedelta(hours=1)))
    assert failed_checks(ready(app_for(ctx))) == ["worker", "outbox"]


def test_readiness_needs_no_token_and_reveals_no_register_data(ctx):
    add_school(ctx)
    reference = confirmed(with_notices(ctx))
    beat(ctx)
    response = ready(app_for(ctx))
    assert response.status_code == 200
    assert reference not in response.text and "12AB" not in response.text and "host-a" not in response.text


@pytest.mark.slow
def test_a_worker_in_another_process_makes_every_api_process_ready_and_counts_its_sends(ctx, smtp, tmp_path):
    """`breachflow worker` beats in the database: an API process elsewhere sees it. Its own delivery
    counters are served on --metrics-port; stopped, it takes its heartbeat with it."""
    add_school(ctx)
    client = app_for(ctx)
    assert failed_checks(ready(client)) == ["worker"]
    port = free_port()
    env = settings_env(ctx.settings) | {"BREACHFLOW_SMTP_HOST": "127.0.0.1", "BREACHFLOW_SMTP_PORT": str(smtp.port),
                                        "BREACHFLOW_DISPATCH_POLL_SECONDS": "0.2"}
    worker = subprocess.Popen([*COMMAND, "worker", "--metrics-port", str(port)], cwd=tmp_path,
                              env=environment(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: ready(client).status_code == 200, "the worker's first beat")
        confirmed(with_notices(ctx))
        wait_until(lambda: len(smtp.received) == 1, "the notice")
        wait_until(lambda: "breachflow_messages_sent_total 1.0" in worker_metrics(port), "the count of the send")
    finally:
        worker.send_signal(signal.SIGINT)
        _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert failed_checks(ready(client)) == ["worker"]


def worker_metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def wait_until(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
