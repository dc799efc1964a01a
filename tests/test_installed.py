"""The built wheel, installed into a clean virtual environment, does what the checkout does.

The wheel is built from a copy of the source tree, installed with its dependencies into a fresh
venv, and its ``breachflow`` console script is run from an empty directory that holds no source:
an operator's path from ``init`` to a school's notice accepted by a real SMTP server. It does not
touch the test database, so it runs once per CI, in the SQLite pass.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import PG_URL
from smtp_server import SmtpServer

from breachflow.workflow.deadlines import AMSTERDAM

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("workflow", "api", "notifications", "templates")  # they install as breachflow.<folder>
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".pytest_cache")

pytestmark = [
    pytest.mark.slow,  # the wheel built and installed, real processes (see the marker in pyproject.toml)
    pytest.mark.skipif(PG_URL is not None,
                       reason="the installed wheel uses no test database: it runs once, in the SQLite pass of .ci/run"),
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the source tree (no stale build/ of a checkout gets in)."""
    source = tmp_path_factory.mktemp("source") / "breachflow"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)])
    (built,) = out.glob("breachflow-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel and its dependencies from the registry; its bin directory."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
         "--disable-pip-version-check", str(wheel)])
    return venv / "bin"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def clean_environment(**variables: str) -> dict[str, str]:
    """No BREACHFLOW_* setting, no PYTHONPATH and no active venv: only the installed files count."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BREACHFLOW_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env | variables


def test_the_wheel_holds_one_namespace_and_every_module_and_template(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names if not name.startswith("breachflow-")}
    assert top_level == {"breachflow"}, f"generic top-level packages in the wheel: {top_level - {'breachflow'}}"
    for folder in FOLDERS:  # every module and data file of the four folders, under breachflow/
        expected = {f"breachflow/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / folder).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts}
        assert expected, folder
        assert expected <= set(names), f"missing from the wheel: {sorted(expected - set(names))}"
    templates = [n for n in names if n.startswith("breachflow/templates/email/")]
    assert any(n.endswith("nl/initial.j2") for n in templates) and any(n.endswith("en/initial.j2") for n in templates)


def test_an_installed_wheel_runs_from_an_empty_directory_to_a_notice_accepted_by_smtp(
        installed: Path, tmp_path: Path, smtp: SmtpServer):
    workdir = tmp_path / "operator"
    workdir.mkdir()
    env = clean_environment(BREACHFLOW_ACTOR="hanna", BREACHFLOW_SMTP_HOST="127.0.0.1",
                            BREACHFLOW_SMTP_PORT=str(smtp.port), BREACHFLOW_REMINDER_SCAN_SECONDS="3600",
                            BREACHFLOW_DISPATCH_POLL_SECONDS="0.2")
    command = str(installed / "breachflow")

    def breachflow(*argv: str) -> str:
        return run([command, *argv], cwd=workdir, env=env).stdout

    where = run([str(installed / "python"), "-c", "import breachflow.api.cli as m; print(m.__file__)"],
                cwd=workdir, env=env).stdout.strip()
    assert Path(where).is_relative_to(installed.parent), where  # the installed copy, not the checkout
    for generic in ("api", "workflow", "notifications"):
        probe = subprocess.run([str(installed / "python"), "-c", f"import {generic}"], cwd=workdir, env=env,
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0, f"'import {generic}' works in the installed environment"

    assert breachflow("--version").strip() == "breachflow 0.1.0"
    assert "database" in breachflow("init")
    breachflow("school", "add", "--brin", "12AB", "--name", "De Regenboog", "--contact", "directie@regenboog.nl")
    breachflow("user", "add", "hanna", "--role", "handler", "--email", "hanna@basisonline.example")
    discovered = (datetime.now(AMSTERDAM) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    reference = json.loads(breachflow(
        "incident", "report", "--source", "school", "--school", "12AB:28", "--json",
        "--set", "summary=Klassenlijst zichtbaar voor alle ouders", "--set", f"discovered_at={discovered}",
    ))["reference"]
    breachflow("incident", "fire", reference, "begin_triage")
    confirmed = json.loads(breachflow(
        "incident", "fire", reference, "confirm", "--json", "--set", "nature_how=Een rechtencontrole ontbrak",
        "--set", "nature_actions=read", "--set", "affected_systems=parent_portal", "--set", "cause_category=unknown",
    ))
    assert confirmed["state"] == "containment"
    assert (workdir / "var" / "breachflow.db").is_file()  # the data directory is relative to where it runs

    worker = subprocess.Popen([command, "worker"], cwd=workdir, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not smtp.received and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGINT)
        out, err = worker.communicate(timeout=30)
    assert smtp.received, f"no notice arrived; the worker said:\n{out}\n{err}"

    (notice,) = smtp.received
    assert notice.recipients == ["directie@regenboog.nl"]
    assert notice.message["Subject"] == f"Datalek {reference} - De Regenboog"
    text = notice.part("plain")
    for expected in ("Geachte directie van De Regenboog,", "Klassenlijst zichtbaar voor alle ouders", "Een rechtencontrole ontbrak",
                     "nog in onderzoek", "Autoriteit Persoonsgegevens", f"Kenmerk: {reference}"):
        assert expected in text, expected
    assert "{{" not in text and "{%" not in text
    assert "De Regenboog" in notice.part("html")
    (entry,) = json.loads(breachflow("register", "export", "--json"))["items"]
    assert (entry["reference"], entry["state"], entry["schools"]) == (reference, "containment", ["12AB"])
    assert "notices sent (1)" in breachflow("incident", "timeline", reference)


def test_an_installed_wheel_serves_the_pages_with_their_own_stylesheet(installed: Path, tmp_path: Path):
    import urllib.request

    from smtp_server import free_port

    port = free_port()
    env = clean_environment(BREACHFLOW_IN_PROCESS_WORKER="false")
    server = subprocess.Popen([str(installed / "breachflow"), "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                time.sleep(0.2)
        assert '<html lang="nl">' in page and 'href="/static/app.css"' in page and 'name="csrf"' in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/app.css", timeout=5) as response:
            assert response.headers["content-type"].startswith("text/css") and b"--brand" in response.read()
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
