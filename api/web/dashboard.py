"""The dashboard (handlers and managers): incidents in progress with their running clocks, the most
urgent first, filtered by state, school and responsibility, with the counts per state.

Countdowns are computed when the page is rendered (``words.countdown``); each clock carries its status
as a class (colour) and in words, so colour is never the only signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from breachflow.api.deps import Cursor, Limit, read
from breachflow.api.web.auth import set_cookies, signed_in
from breachflow.api.web.render import in_language, page
from breachflow.api.web.words import countdown
from breachflow.notifications.reminders import deadline_name
from breachflow.notifications.texts import VALUES
from breachflow.workflow import dashboard, pages, queries
from breachflow.workflow.accounts import Role
from breachflow.workflow.dashboard import OPEN_STATES
from breachflow.workflow.deadlines import Status, status_at
from breachflow.workflow.lifecycle import State
from breachflow.workflow.responsibility import Responsibility
from breachflow.workflow.sessions import Session

KEPT = ("state", "school", "responsibility", "limit")
Staff = Annotated[Session, Depends(signed_in(Role.handler, Role.manager))]
STATUS_WORDS = {Status.overdue: ("te laat", "overdue"), Status.due_soon: ("bijna verlopen", "due soon"),
                Status.ok: ("loopt", "running")}
RESPONSIBILITY_WORDS = {Responsibility.processor: ("de verwerker", "the processor"),
                        Responsibility.school: ("de school", "the school"),
                        Responsibility.unknown: ("nog onbekend", "not yet known")}


@dataclass(frozen=True)
class ShownClock:
    """A running clock as the page shows it."""

    name: str
    brin: str | None
    due_at: datetime
    status: str
    status_words: str
    countdown: str


def shown_clocks(row: dashboard.Row, now: datetime, due_soon: timedelta, language: str) -> list[ShownClock]:
    """The clocks of ``row`` with their status and countdown at ``now``."""
    shown = []
    for clock in row.clocks:
        status = status_at(clock.due_at, None, now, due_soon)
        name = deadline_name(clock.kind, language, number=clock.action, owner=clock.owner)
        shown.append(ShownClock(name, clock.brin, clock.due_at, status.value,
                                in_language(language, *STATUS_WORDS[status]), countdown(clock.due_at, now, language)))
    return shown


def state_words(language: str) -> dict[str, str]:
    """Every state in words."""
    return {state: VALUES[language][state] for state in State}


def responsibility_words(language: str) -> dict[str, str]:
    """Every responsibility in words."""
    return {r.value: in_language(language, *words) for r, words in RESPONSIBILITY_WORDS.items()}


def chosen(request: Request) -> dict[str, str]:
    """The filters a form sent (``state``, ``school``, ``responsibility``; empty means all) and the
    page size asked for, as the links to other pages of the list repeat them."""
    return {name: value for name in KEPT if (value := request.query_params.get(name, "").strip())}


def filters_of(params: dict[str, str]) -> queries.Filters:
    """The form's filters as the queries take them."""
    return {"state": params.get("state"), "brin": params.get("school"), "responsibility": params.get("responsibility")}


def with_query(path: str, params: dict[str, str], **more: str | None) -> str:
    """``path`` with ``params`` and ``more`` (those not ``None``) as its query."""
    query = urlencode({**params, **{k: v for k, v in more.items() if v is not None}})
    return f"{path}?{query}" if query else path


def filter_context(language: str, schools: list[tuple[str, str]], params: dict[str, str]) -> dict[str, object]:
    """What the filter form of the dashboard and the register shows."""
    return {"params": params, "schools": schools, "states": state_words(language),
            "responsibilities": responsibility_words(language)}


router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def dashboard_page(request: Request, session: Staff, limit: Limit = pages.DEFAULT_LIMIT,
                         cursor: Cursor = None) -> Response:
    ctx, params = request.app.state.ctx, chosen(request)
    found = await read(request, dashboard.overview, ctx, limit=limit, cursor=cursor, **filters_of(params))
    language, now = request.state.visitor.language, datetime.now(UTC)
    return set_cookies(request, page(request, "dashboard.html.j2", {
        "rows": [(row, shown_clocks(row, now, ctx.periods.due_soon, language)) for row in found.page.items],
        "next_url": with_query("/dashboard", params, cursor=found.page.next_cursor) if found.page.next_cursor else None,
        "first_url": with_query("/dashboard", params) if cursor else None,
        "by_state": found.by_state, "open_states": [s.value for s in OPEN_STATES],
        "filter_states": [s.value for s in OPEN_STATES],
        "open_total": sum(found.by_state[s] for s in OPEN_STATES), "now": now,
        **filter_context(language, found.schools, params)}))
