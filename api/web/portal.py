"""The school portal, for school users: its own incidents with their state and deadlines (its own
AP deadline with a countdown where the school notifies the AP), every notice sent to it, and a form
to report a new incident for itself.

Incidents are those ``queries.incident_page`` finds for the school, seen through
``views.incident_out`` with the school's account: the same cut as the API's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from breachflow.api import views
from breachflow.api.deps import Cursor, command, read
from breachflow.api.web.auth import VisitorDep, posted, redirect, set_cookies, signed_in
from breachflow.api.web.forms import typed_time, whole_number
from breachflow.api.web.render import page
from breachflow.api.web.words import deadline_words
from breachflow.notifications import outbox
from breachflow.notifications.texts import VALUES
from breachflow.workflow import intake, queries, sessions
from breachflow.workflow.accounts import Role
from breachflow.workflow.context import Context
from breachflow.workflow.deadlines import DeadlineKind
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.validation import MAX_COUNT

router = APIRouter(include_in_schema=False)
SchoolSession = Annotated[sessions.Session, Depends(signed_in(Role.school))]
PER_PAGE = 20
REPORT_FIELDS = ("summary", "discovered_at", "nature_how", "reporter_name", "reporter_contact", "affected_count")


@router.get("/portal")
async def portal(request: Request, session: SchoolSession, seen: VisitorDep, cursor: Cursor = None,
                 notices: Cursor = None) -> Response:
    ctx: Context = request.app.state.ctx
    account, now = session.account, datetime.now(UTC)
    found = await read(request, queries.incident_page, ctx, school_id=account.school_id, now=now,
                       limit=PER_PAGE, cursor=cursor)
    sent = await read(request, outbox.notices_to, ctx, account.school_id, limit=PER_PAGE, cursor=notices)
    incidents = [views.incident_out(account, i, now, ctx.periods) for i in found.items]
    return set_cookies(request, page(request, "portal.html.j2", {
        "incidents": incidents, "next_cursor": found.next_cursor, "unreadable": found.unreadable,
        "notices": sent.items, "next_notices": sent.next_cursor, "cursor": cursor, "notices_cursor": notices,
        "brin": account.school_brin, "own_ap": DeadlineKind.school_ap_notice.value,
        "words": VALUES[seen.language], "status_words": partial(deadline_words, now=now, language=seen.language),
    }))


def amsterdam_input(value: str, field: str) -> datetime | None:
    """A ``datetime-local`` form value, read as Amsterdam time, in UTC; blank is ``None``."""
    moment = typed_time(value)
    if isinstance(moment, str):
        raise InvalidInput("invalid input", [FieldProblem(field, "give a date and time")])
    return moment.astimezone(UTC) if moment else None


def _count(value: str) -> int | None:
    if not value.strip():
        return None
    count = whole_number(value)
    if count is None or count > MAX_COUNT:
        raise InvalidInput("invalid input", [FieldProblem("affected_count", f"give a whole number from 0 to {MAX_COUNT}")])
    return count


def _report_form(request: Request, typed: dict[str, str], problems: list[FieldProblem], status: int = 200) -> Response:
    shown: dict[str, str] = {}
    for p in problems:  # a school's count is refused as ``schools.<BRIN>``
        shown.setdefault("affected_count" if p.field.startswith("schools") else p.field, p.problem)
    return set_cookies(request, page(request, "portal_report.html.j2", {
        "typed": typed, "problems": shown, "other_problems": {k: v for k, v in shown.items() if k not in REPORT_FIELDS},
    }, status=status))


@router.get("/portal/report")
async def report_form(request: Request, session: SchoolSession) -> Response:
    return _report_form(request, dict.fromkeys(REPORT_FIELDS, ""), [])


@router.post("/portal/report")
async def report(request: Request, session: SchoolSession, seen: VisitorDep) -> Response:
    typed = {name: str(value) for name, value in (await posted(request, seen)).items() if name in REPORT_FIELDS}
    typed = dict.fromkeys(REPORT_FIELDS, "") | typed
    account, problems = session.account, []
    fields: dict[str, Any] = {k: typed[k] for k in ("summary", "nature_how", "reporter_name", "reporter_contact")
                              if typed[k].strip()}
    try:
        if discovered := amsterdam_input(typed["discovered_at"], "discovered_at"):
            fields["discovered_at"] = discovered
    except InvalidInput as exc:
        problems += exc.fields
    try:
        count = _count(typed["affected_count"])
    except InvalidInput as exc:
        problems, count = problems + exc.fields, None
    try:
        if problems:
            raise InvalidInput("invalid report", problems)
        incident = await command(request, intake.school_report, request.app.state.ctx, actor=account.username,
                                 brin=account.school_brin, fields=fields, affected_count=count)
    except InvalidInput as exc:
        return _report_form(request, typed, exc.fields, status=422)
    return redirect(request, f"/incidents/{incident.reference}")
