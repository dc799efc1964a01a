"""``serve`` and ``worker`` say why they cannot start: one line naming what to change, exit 5 (a
setting or argument that is wrong: exit 2), and nothing written before it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from cli_process import COMMAND, breachflow, environment
from smtp_server import free_port

from breachflow.api import startup
from breachflow.workflow.config import Settings

pytestmark = pytest.mark.slow  # real processes (see the marker in pyproject.toml)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("breachflow") and ": error: " in lines[0]
    return lines[0]


@pytest.fixture
def taken_port():
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize(("command", "option"), [("serve", "--port"), ("worker", "--metrics-port")])
def test_a_port_in_use_is_said_before_anything_is_written(tmp_path, taken_port, command, option):
    done = breachflow(tmp_path, command, option, str(taken_port))
    assert done.returncode == 5
    line = one_line(done.stderr)
    assert f"port {taken_port} on 127.0.0.1 is in use" in line and f"with {option}" in line
    assert not (tmp_path / "var").exists() and done.stdout == ""


def test_the_servers_own_start_up_failure_is_exit_5_too(tmp_path):
    """The port is free at the check and taken before the server binds it: the server's failure
    (uvicorn exits 3, the lifecycle's code) becomes breachflow's exit 5 with what happened."""
    port = free_port()
    process = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], cwd=tmp_path, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # printed after the check, long before the server binds
        os.kill(process.pid, signal.SIGSTOP)
        with socket.socket() as other:
            other.bind(("127.0.0.1", port))
            other.listen()
            os.kill(process.pid, signal.SIGCONT)
            out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "created" in first and process.returncode == 5
    *server_says, line = err.strip().splitlines()
    assert "address already in use" in " ".join(server_says)
    assert line == f"breachflow: error: the server could not start on 127.0.0.1 port {port} (the line above says why)"
    assert "listens on" in out  # announced, but the exit code and the last line say otherwise


def test_several_server_processes_on_sqlite_are_refused_with_what_to_do_instead(tmp_path):
    done = breachflow(tmp_path, "serve", "--workers", "2", "--port", str(free_port()))
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "--workers 2 needs PostgreSQL" in line and "BREACHFLOW_DATABASE_URL" in line
    assert "'breachflow serve --no-worker' and one 'breachflow worker'" in line
    assert not (tmp_path / "var").exists()


def test_several_server_processes_on_postgresql_pass_the_check():
    startup.check_workers(Settings(database_url="postgresql+psycopg://breachflow@db.example.nl/breachflow"), 4)
    startup.check_workers(Settings(), 1)


@pytest.mark.parametrize(("host", "words"), [
    ("no-such-host.invalid", "is not a name or address this machine knows"),
    ("192.0.2.1", "is not an address of this machine"),  # TEST-NET-1: never this machine's
])
def test_a_host_that_is_not_this_machines_is_said(tmp_path, host, words):
    done = breachflow(tmp_path, "serve", "--host", host, "--port", str(free_port()))
    assert done.returncode == 5
    line = one_line(done.stderr)
    assert f"--host {host} {words}" in line and "0.0.0.0" in line  # noqa: S104 the advice read, nothing bound
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("port", ["65536", "http", "-1", ""])
def test_a_port_that_is_not_one_is_bad_input(tmp_path, port):
    done = breachflow(tmp_path, "serve", BREACHFLOW_PORT=port)
    assert done.returncode == 2
    assert f"'{port}' is not a port number (1 to 65535, or 0 for any free one)" in one_line(done.stderr)


def start(command: str) -> list[str]:
    return [command, "--port", str(free_port())] if command == "serve" else [command]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_data_directory_that_cannot_be_written_is_named(tmp_path, command):
    (tmp_path / "a-file").write_text("not a directory")
    data_dir = tmp_path / "a-file" / "var"
    done = breachflow(tmp_path, *start(command), BREACHFLOW_DATA_DIR=str(data_dir))
    assert done.returncode == 5
    line = one_line(done.stderr)
    assert f"cannot write {data_dir}" in line and "BREACHFLOW_DATA_DIR" in line


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_database_that_cannot_be_reached_is_named(tmp_path, command):
    url = f"postgresql+psycopg://breachflow:secret@127.0.0.1:{free_port()}/breachflow"
    done = breachflow(tmp_path, *start(command), BREACHFLOW_DATABASE_URL=url)
    assert done.returncode == 5
    line = one_line(done.stderr)
    assert "cannot open the database postgresql+psycopg://breachflow:***@127.0.0.1" in line
    assert "check BREACHFLOW_DATABASE_URL" in line and "secret" not in line


def test_the_exit_codes_are_documented_where_help_shows_them(tmp_path: Path):
    shown = breachflow(tmp_path, "--help").stdout
    assert "5 'serve' or 'worker' cannot start here" in " ".join(shown.split())
