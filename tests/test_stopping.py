"""``breachflow worker`` and ``breachflow serve`` stopped by SIGTERM, as a service manager stops them,
mid-send to a real SMTP server that is slow to answer DATA: sends in flight finish within the grace
period or are cut off, whatever was claimed and not sent goes back to the outbox at once (not after
the 5-minute lease), nothing is left half-done, exit 0 with one line; the next worker then sends
every message exactly once."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from cli_process import COMMAND, environment
from conftest import confirmed
from notify_support import settings_env, smtp_context
from reading import whole_timeline
from smtp_server import free_port

from breachflow.notifications import outbox
from breachflow.workflow import schools

pytestmark = pytest.mark.slow  # real processes (see the marker in pyproject.toml)

SCHOOLS = tuple(f"1{n}AB" for n in range(6))
CONNECTIONS = 2  # two sends in flight, the other four claimed and waiting for a connection


@pytest.fixture
def six_notices(ctx, smtp):
    """Six schools' first notices in the outbox, to go to ``smtp`` over two connections."""
    for brin in SCHOOLS:
        schools.add(ctx, brin=brin, name=f"School {brin}", contacts=[f"info@{brin.lower()}.example.nl"])
    mail = smtp_context(ctx, smtp.port, smtp_connections=CONNECTIONS, dispatch_poll_seconds=0.1)
    return mail, confirmed(mail, brins=SCHOOLS)


def start(directory: Path, mail, *argv: str, **variables: str) -> subprocess.Popen:
    return subprocess.Popen([*COMMAND, *argv], cwd=directory, env=environment(**settings_env(mail.settings), **variables),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.02)


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM, as systemd or Kubernetes sends it; the exit code and what the process printed."""
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def statuses(mail) -> Counter:
    return Counter(r.status for r in outbox.list_messages(mail, status=None).items)


def sent_on_timeline(mail, reference: str) -> list[str]:
    return [m["school"] for e in whole_timeline(mail, reference) if e.kind == "notices_sent"
            for m in e.payload["messages"]]


def a_second_worker_sends_the_rest(tmp_path: Path, mail, smtp, reference: str) -> None:
    """The next worker (default 5-minute lease) sends what the first gave back, at once; in the
    end every school has its notice exactly once, and once on the timeline."""
    smtp.handler.delay = 0
    second = start(tmp_path, mail, "worker")
    wait_until(lambda: statuses(mail) == Counter(sent=6), "the second worker sent everything")
    code, out, _ = stop(second)
    assert code == 0 and out.splitlines()[-1] == "breachflow worker: stopped on SIGTERM; every send in flight finished"
    assert sorted(r.recipients[0] for r in smtp.received) == sorted(f"info@{b.lower()}.example.nl" for b in SCHOOLS)
    assert len({r.message["Message-ID"] for r in smtp.received}) == 6
    assert sorted(sent_on_timeline(mail, reference)) == sorted(SCHOOLS)


def test_a_worker_stopped_mid_send_finishes_what_is_in_flight_and_gives_back_the_rest(tmp_path, six_notices, smtp):
    mail, reference = six_notices
    smtp.handler.delay = 2  # the server holds each DATA for a while, well within the 20 s grace period
    worker = start(tmp_path, mail, "worker")
    wait_until(lambda: smtp.handler.data_begun == CONNECTIONS, "two messages are in flight")
    code, out, err = stop(worker)
    assert code == 0, err
    assert out.splitlines()[-1] == ("breachflow worker: stopped on SIGTERM; 4 claimed message(s) not sent went "
                                    "back to the outbox for the next worker")
    assert smtp.handler.data_begun == CONNECTIONS and len(smtp.received) == CONNECTIONS  # in flight: finished
    assert statuses(mail) == Counter(sent=2, pending=4)  # recorded, or given back: nothing sending or accepted
    rows = outbox.list_messages(mail, status="pending").items
    assert {r.attempts for r in rows} == {0}  # a try that never started is not counted
    assert len(sent_on_timeline(mail, reference)) == 2
    a_second_worker_sends_the_rest(tmp_path, mail, smtp, reference)


def test_a_send_still_unanswered_after_the_grace_period_is_cut_off_and_given_back(tmp_path, six_notices, smtp):
    mail, reference = six_notices
    smtp.handler.delay = 60  # the server would answer only long after the grace period
    worker = start(tmp_path, mail, "worker", BREACHFLOW_SHUTDOWN_GRACE_SECONDS="0.5")
    wait_until(lambda: smtp.handler.data_begun == CONNECTIONS, "two messages are in flight")
    code, out, err = stop(worker)
    assert code == 0, err
    assert "6 claimed message(s) not sent went back to the outbox" in out.splitlines()[-1]
    assert smtp.received == []  # cut off before the server answered: the server kept nothing
    assert statuses(mail) == Counter(pending=6)
    assert sent_on_timeline(mail, reference) == []
    a_second_worker_sends_the_rest(tmp_path, mail, smtp, reference)


def test_serve_stopped_mid_send_stops_its_worker_the_same_way(tmp_path, six_notices, smtp):
    mail, reference = six_notices
    smtp.handler.delay = 2
    server = start(tmp_path, mail, "serve", "--port", str(free_port()))
    wait_until(lambda: smtp.handler.data_begun == CONNECTIONS, "two messages are in flight")
    code, out, err = stop(server)
    assert code == 0, err
    assert out.splitlines()[-1] == ("breachflow serve: stopped on SIGTERM; requests and sends in flight had 20 s "
                                    "to finish, unsent mail is back in the outbox")
    assert len(smtp.received) == CONNECTIONS and statuses(mail) == Counter(sent=2, pending=4)
    a_second_worker_sends_the_rest(tmp_path, mail, smtp, reference)


def listening(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(("variable", "argv", "sends"), [
    (None, [], True),
    ("false", [], False),  # the setting is honoured, not overwritten by serve
    ("true", ["--no-worker"], False),
])
def test_serve_runs_a_worker_only_when_the_setting_and_the_flag_both_allow(tmp_path, six_notices, smtp,
                                                                            variable, argv, sends):
    mail, _ = six_notices
    port = free_port()
    extra = {"BREACHFLOW_IN_PROCESS_WORKER": variable} if variable else {}
    server = start(tmp_path, mail, "serve", "--port", str(port), *argv, **extra)
    wait_until(lambda: listening(port) or server.poll() is not None, "serve listens")
    if sends:
        wait_until(lambda: len(smtp.received) == 6, "serve's worker sent every notice")
    else:
        time.sleep(2)  # twenty polls of a worker, had there been one
    code, out, err = stop(server)
    assert code == 0, err
    said = "no worker in this process: run 'breachflow worker'" in out
    assert said is not sends and ("mail goes to SMTP 127.0.0.1" in out) is sends
    assert len(smtp.received) == (6 if sends else 0)
    assert statuses(mail) == (Counter(sent=6) if sends else Counter(pending=6))
