"""``breachflow serve`` on a fresh directory: it sets itself up, says where it listens and how to log in."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREACHFLOW_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=tmp_path, env=env | {"PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_serve_starts_on_the_embedded_default_and_prints_how_to_log_in(served):
    port, output, directory = served
    assert f"http://127.0.0.1:{port}" in output
    assert (directory / "var" / "breachflow.db").is_file()
    token = next(line.strip() for line in output.splitlines() if line.strip().startswith("bf_"))
    assert get(port, "/api/v1/healthz") == {"status": "ok", "database": "sqlite"}
    assert get(port, "/api/v1/schools", token) == []


def post(port: int, path: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_serve_delivers_notices_to_the_local_maildir(served):
    from conftest import CONFIRM

    from workflow import accounts
    from workflow.config import Settings
    from workflow.context import Context

    port, output, directory = served
    assert "maildir" in output
    admin = next(line.strip() for line in output.splitlines() if line.strip().startswith("bf_"))
    post(port, "/api/v1/schools", admin, {"brin": "12AB", "name": "De Regenboog", "contacts": ["d@regenboog.nl"]})
    ctx = Context.open(Settings(data_dir=directory / "var"))
    accounts.add_user(ctx, username="hanna", role="handler")
    handler = accounts.create_token(ctx, username="hanna").secret
    ref = post(port, "/api/v1/incidents", handler, {"schools": {"12AB": 3}, "fields": {
        "summary": "Lists visible", "discovered_at": "2026-11-28T09:00:00+01:00"}})["reference"]
    post(port, f"/api/v1/incidents/{ref}/triggers/begin_triage", handler, {})
    post(port, f"/api/v1/incidents/{ref}/triggers/confirm", handler, {"fields": CONFIRM})
    inbox = directory / "var" / "maildir" / "new"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (inbox.is_dir() and any(inbox.iterdir())):
        time.sleep(0.1)
    (delivered,) = inbox.iterdir()
    message = message_from_bytes(delivered.read_bytes(), policy=policy.default)
    assert message["Subject"] == f"Datalek {ref}: melding aan De Regenboog"


def test_serve_sends_no_server_banner_and_the_security_headers(served):
    port, _, _ = served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=10) as response:
        headers = response.headers
    assert headers["Server"] is None  # uvicorn would say 'uvicorn'
    assert (headers["X-Content-Type-Options"], headers["Cache-Control"], headers["X-Frame-Options"]) == (
        "nosniff", "no-store", "DENY")
