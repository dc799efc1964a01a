"""Browser tests' helpers: a running installation (``Site``), signing in, axe-core, screenshots.

See ``tests/browser/conftest.py`` for the fixtures.
"""

from __future__ import annotations

import mailbox
import os
import shutil
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from cli_process import Running
from smtp_server import free_port

from breachflow.workflow import accounts, schools, sessions
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise

CHROMIUM = os.environ.get("BREACHFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery"
SCHOOLS = {"12AB": "De Regenboog", "34CD": "Het Anker"}
USERS = [("hanna", "handler", None), ("marit", "manager", None),
         ("regenboog", "school", "12AB"), ("anker", "school", "34CD")]
SERIOUS = ("serious", "critical")
# read on import: the suite's fixtures clear BREACHFLOW_* variables before each test
SCREENSHOTS = os.environ.get("BREACHFLOW_SCREENSHOTS")


class Site:
    """A running installation: its address, a context on its database, and the mail it wrote."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(data_dir=directory / "var", public_url=self.url)
        initialise(self.settings)
        self.ctx = Context.open(self.settings)
        for brin, name in SCHOOLS.items():
            schools.add(self.ctx, brin=brin, name=name, contacts=[f"directie@{brin.lower()}.example.nl"])
        for username, role, school in USERS:
            accounts.add_user(self.ctx, username=username, role=role, school=school)
            sessions.set_password(self.ctx, username=username, password=PASSWORD)
        self.server = Running(directory, "serve", "--port", str(self.port), BREACHFLOW_PUBLIC_URL=self.url,
                              BREACHFLOW_REMINDER_SCAN_SECONDS="1").wait_until_ready(self.port)

    def mail(self) -> list[EmailMessage]:
        """Every message the worker delivered to the local maildir, oldest first."""
        box = mailbox.Maildir(self.settings.resolved_maildir, factory=None, create=False)
        parsed = [message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()]
        return sorted(parsed, key=lambda m: m["Date"].datetime)

    def stop(self) -> None:
        self.server.stop()
        self.ctx.engine.dispose()


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign ``username`` in through the sign-in page, as a person would."""
    page.goto("/signin")
    page.get_by_label("Gebruikersnaam").fill(username)
    page.get_by_label("Wachtwoord").fill(password)
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_load_state()


def accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert not bad, f"{page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad)


def screenshot(page, name: str, tmp_path: Path) -> Path:
    """A full-page picture ``name``.png, into ``BREACHFLOW_SCREENSHOTS`` if set, else ``tmp_path``."""
    directory = Path(SCREENSHOTS or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target
