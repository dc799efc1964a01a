"""Pages through a test client: users with passwords, signing in, and forms with their CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass

from api_support import SCHOOL_A, SCHOOL_B
from conftest import add_school
from fastapi.testclient import TestClient

from breachflow.api.main import create_app
from breachflow.workflow import accounts, sessions
from breachflow.workflow.context import Context

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
USERS = [("handler", "handler", None), ("manager", "manager", None), ("admin", "admin", None),
         ("school_a", "school", SCHOOL_A), ("school_b", "school", SCHOOL_B)]


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Browser:
    """One browser (its own cookies) on the pages of ``app``."""

    client: TestClient

    def get(self, path: str, **kwargs):
        return self.client.get(path, follow_redirects=False, **kwargs)

    def submit(self, page_path: str, action: str, data: dict, **kwargs):
        """Open ``page_path``, then post ``data`` to ``action`` with the page's CSRF token."""
        page = self.client.get(page_path)
        return self.client.post(action, data={"csrf": csrf_of(page.text), **data}, follow_redirects=False, **kwargs)

    def sign_in(self, username: str, password: str = PASSWORD):
        return self.submit("/signin", "/signin", {"username": username, "password": password})


def installation(ctx: Context, settings) -> tuple:
    """Two schools and one user per role, each with ``PASSWORD``; the app, with no worker."""
    add_school(ctx, SCHOOL_A, "De Regenboog")
    add_school(ctx, SCHOOL_B, "Het Anker")
    for username, role, school in USERS:
        accounts.add_user(ctx, username=username, role=role, school=school)
        sessions.set_password(ctx, username=username, password=PASSWORD)
    return create_app(settings.model_copy(update={"in_process_worker": False}))


def browser(app, base_url: str = "http://127.0.0.1:8000") -> Browser:
    """A fresh browser: no cookies."""
    return Browser(TestClient(app, raise_server_exceptions=False, base_url=base_url))
