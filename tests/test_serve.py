"""``breachflow serve`` on a fresh directory: it sets itself up, says where it listens and how to log in."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from cli_process import COMMAND, breachflow, environment
from conftest import CONFIRM
from cryptography.fernet import Fernet, InvalidToken
from smtp_server import free_port

from breachflow.workflow import accounts
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context
from breachflow.workflow.db import write_transaction
from breachflow.workflow.models import data_key_t, user_t

pytestmark = pytest.mark.slow  # real processes (see the marker in pyproject.toml)


@pytest.fixture
def served(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port)],
        cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines.append(process.stdout.readline())
            if "listens on" in lines[-1] or process.poll() is not None:
                break
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield port, "".join(lines), tmp_path
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def get(port: int, path: str, token: str | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 http://127.0.0.1 above
        return json.load(response)


def test_serve_starts_on_the_embedded_default_and_prints_how_to_log_in(served):
    port, output, directory = served
    assert f"http://127.0.0.1:{port}" in output
    assert (directory / "var" / "breachflow.db").is_file()
    for name in ("master.key", "audit.key", "checkpoint.key"):  # the first start creates every key
        assert f"file var/{name}" in output and stat.S_IMODE((directory / "var" / name).stat().st_mode) == 0o600
    token = next(line.strip() for line in output.splitlines() if line.strip().startswith("bf_"))
    assert get(port, "/api/v1/healthz") == {"status": "ok", "database": "sqlite"}
    assert get(port, "/api/v1/schools", token)["items"] == []


def post(port: int, path: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 http://127.0.0.1 above
        return json.load(response)


def a_school_and_a_handler(port: int, output: str, directory: Path) -> tuple[Context, str]:
    """School 12AB added through the API, and a handler's token."""
    admin = next(line.strip() for line in output.splitlines() if line.strip().startswith("bf_"))
    post(port, "/api/v1/schools", admin, {"brin": "12AB", "name": "De Regenboog", "contacts": ["d@regenboog.nl"]})
    ctx = Context.open(Settings(data_dir=directory / "var"))
    accounts.add_user(ctx, username="hanna", role="handler")
    return ctx, accounts.create_token(ctx, username="hanna").secret


def report(port: int, handler: str) -> str:
    return post(port, "/api/v1/incidents", handler, {"schools": {"12AB": 3}, "fields": {
        "summary": "Lists visible", "discovered_at": "2026-11-28T09:00:00+01:00"}})["reference"]


def test_processes_starting_at_once_on_a_fresh_installation_make_one_admin(ctx):
    """Another process is midway through creating 'admin' when this one looks: it makes no second
    and starts all the same, without a token to print (the other prints it)."""
    with write_transaction(ctx.engine) as conn:
        conn.execute(sa.insert(user_t).values(username="admin", role="admin", created_at=datetime.now(UTC)))
        starting = ThreadPoolExecutor(1).submit(accounts.create_first_admin, ctx)
        time.sleep(0.5)  # it finds no users yet and waits to add 'admin' until this transaction ends
    assert starting.result(timeout=30) is None
    assert [a.username for a in accounts.list_users(ctx)] == ["admin"]
    assert accounts.create_first_admin(ctx) is None


def test_serve_delivers_notices_to_the_local_maildir(served):
    port, output, directory = served
    assert "maildir" in output
    _, handler = a_school_and_a_handler(port, output, directory)
    ref = report(port, handler)
    post(port, f"/api/v1/incidents/{ref}/triggers/begin_triage", handler, {})
    post(port, f"/api/v1/incidents/{ref}/triggers/confirm", handler, {"fields": CONFIRM})
    inbox = directory / "var" / "maildir" / "new"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (inbox.is_dir() and any(inbox.iterdir())):
        time.sleep(0.1)
    (delivered,) = inbox.iterdir()
    message = message_from_bytes(delivered.read_bytes(), policy=policy.default)
    assert message["Subject"] == f"Datalek {ref} - De Regenboog"
    assert stat.S_IMODE(delivered.stat().st_mode) == 0o600  # a notice holds personal data
    assert stat.S_IMODE((directory / "var" / "maildir").stat().st_mode) == 0o700


def test_a_rotation_while_serving_needs_no_restart(served):
    port, output, directory = served
    ctx, handler = a_school_and_a_handler(port, output, directory)
    before = report(port, handler)
    assert get(port, f"/api/v1/incidents/{before}", handler)["disclosure"]["summary"] == "Lists visible"
    old_key = ctx.keys.keys[0]
    rotated = breachflow(directory, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    newest = (directory / "var" / "master.key").read_bytes().split()[0]
    after = report(port, handler)  # first thing after the rotation: a new data key (test_keys.py: a read)
    with ctx.engine.connect() as conn:
        wrapped = conn.execute(sa.select(data_key_t.c.wrapped).order_by(data_key_t.c.id.desc())).scalars().first()
    Fernet(newest).decrypt(wrapped)  # sealed under the newest master key
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(wrapped)
    assert get(port, f"/api/v1/incidents/{before}", handler)["disclosure"]["summary"] == "Lists visible"
    assert get(port, f"/api/v1/incidents/{after}", handler)["reference"] == after


def test_serve_sends_no_server_banner_and_the_security_headers(served):
    port, _, _ = served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=10) as response:
        headers = response.headers
    assert headers["Server"] is None  # uvicorn would say 'uvicorn'
    assert (headers["X-Content-Type-Options"], headers["Cache-Control"], headers["X-Frame-Options"]) == (
        "nosniff", "no-store", "DENY")


def test_a_forwarded_for_header_neither_escapes_nor_turns_the_auth_limit(served):
    """Each bad token claims another client address; the limit counts the real one all the same."""
    port, _, _ = served
    statuses = []
    for n in range(12):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/incidents", headers={
            "Authorization": "Bearer bf_wrong", "X-Forwarded-For": f"10.9.9.{n}"})
        try:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 http://127.0.0.1 above
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
