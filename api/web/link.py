"""The signed link in a notice (``workflow.links``): ``/link/{token}`` shows one school its part of
one incident without signing in, as a school user would see it, with the notices sent to it, a
button to acknowledge receipt, and, for informing the people affected (GDPR art. 34), the draft
message for them and a form to record whether and how they were informed.

Opening the link changes nothing. A link breachflow did not sign, one bent to another incident or
school, an expired one, and one whose school the incident no longer affects all get the same 404:
it never tells whether an incident exists. The link grants these three routes and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from breachflow.api import views
from breachflow.api.deps import brief, command
from breachflow.api.errors import status_of
from breachflow.api.routes.incidents import seen_by
from breachflow.api.web import forms, informing
from breachflow.api.web.auth import Visitor, VisitorDep, posted, redirect, set_cookies
from breachflow.api.web.render import page
from breachflow.api.web.words import deadline_words, reader
from breachflow.notifications import outbox
from breachflow.notifications.texts import VALUES
from breachflow.workflow import links, pages, queries, service
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.disclosure import label
from breachflow.workflow.errors import BreachflowError, DataDestroyed, FieldProblem, InvalidInput, NotFound
from breachflow.workflow.incident import Incident
from breachflow.workflow.schools import ids_by_brin

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Path()]  # any text: what is not a valid link is the same 404 (``links.opened``)
COMMENT_LENGTH = 2_000


@dataclass(frozen=True)
class Opened:
    """What a valid link opens: the incident, seen through an account of the link's school."""

    account: Account
    incident: Incident


def opened(ctx: Context, token: str) -> Opened | None:
    """What ``token`` opens, or ``None`` for every kind of link that opens nothing."""
    link = links.opened(ctx.audit_key, token)
    if link is None:
        return None
    with read_transaction(ctx.engine) as conn:
        try:
            school_id = ids_by_brin(conn, [link.brin], "school")[link.brin]
            incident = queries.get_in(conn, ctx, link.reference)
        except (InvalidInput, NotFound, DataDestroyed):  # a school or incident deleted or destroyed since
            return None
    account = Account(0, f"link:{link.brin}", Role.school, school_id, link.brin)
    try:
        return Opened(account, seen_by(account, incident))
    except NotFound:  # the incident no longer affects this school, or retention destroyed its part
        return None


def _nothing_here(seen: Visitor) -> NotFound:
    return NotFound(seen.words(
        "Deze link werkt niet (meer): hij is onvolledig of verlopen. Een school kan zich aanmelden op het "
        "schoolportaal, of de verwerker vragen om een nieuwe link.",
        "This link does not work (any more): it is incomplete or has expired. A school can sign in to the school "
        "portal, or ask the processor for a new link."))


async def _open(request: Request, seen: Visitor, token: str) -> Opened:
    found = await brief(request, opened, request.app.state.ctx, token)
    if found is None:
        raise _nothing_here(seen)
    return found


async def _show(request: Request, seen: Visitor, token: str, found: Opened, *, status: int = 200,
                problems: list[FieldProblem] | None = None, comment: str = "",
                people_typed: dict[str, str] | None = None) -> Response:
    ctx: Context = request.app.state.ctx
    notices = await brief(request, outbox.notices_to, ctx, found.account.school_id,
                          reference=found.incident.reference, limit=pages.MAX_LIMIT)
    now = datetime.now(UTC)
    incident = views.incident_out(found.account, found.incident, now, ctx.periods)
    part = incident.schools[0]
    unacknowledged = [n for n in notices.items if part.acknowledged_at is None or n.queued_at > part.acknowledged_at]
    own = next(s for s in found.incident.schools if s.school_id == found.account.school_id)
    refused = {p.field: p.problem for p in problems or ()}
    return set_cookies(request, page(request, "link.html.j2", {
        "token": token, "incident": incident, "part": part, "notices": notices.items,
        "can_acknowledge": part.informed_at is not None and bool(unacknowledged),
        "fields": [(label(name, seen.language), reader(seen.language, zone=True).field(name, value))
                   for name, value in incident.disclosure if value not in (None, [])],
        "problems": refused if people_typed is None else {}, "comment": comment,
        "people": informing.section(found.incident, own, seen.language, ctx.settings),
        "people_problems": refused if people_typed is not None else {}, "people_typed": people_typed or {},
        "words": VALUES[seen.language], "status_words": partial(deadline_words, now=now, language=seen.language),
    }, status=status))


@router.get("/link/{token}")
async def link_page(request: Request, seen: VisitorDep, token: Token) -> Response:
    return await _show(request, seen, token, await _open(request, seen, token))


@router.post("/link/{token}/acknowledge")
async def acknowledge(request: Request, seen: VisitorDep, token: Token) -> Response:
    form = await posted(request, seen)
    found = await _open(request, seen, token)
    comment = str(form.get("comment", "")).strip()
    if len(comment) > COMMENT_LENGTH:
        return await _show(request, seen, token, found, status=422, comment=comment, problems=[
            FieldProblem("comment", seen.words(f"hoogstens {COMMENT_LENGTH} tekens", f"at most {COMMENT_LENGTH} characters"))])
    await command(request, service.acknowledge, request.app.state.ctx, reference=found.incident.reference,
                  actor=found.account.username, brin=found.account.school_brin, comment=comment or None)
    return redirect(request, f"/link/{token}")


@router.post("/link/{token}/people-informed")
async def people_informed(request: Request, seen: VisitorDep, token: Token) -> Response:
    """The school records whether and how it informed the people affected (GDPR art. 34)."""
    form = await posted(request, seen)
    found = await _open(request, seen, token)
    typed = {name: str(form.get(name, "")) for name in informing.FIELDS}
    try:
        await command(request, service.record_people_informed, request.app.state.ctx,
                      reference=found.incident.reference, actor=found.account.username,
                      brin=found.account.school_brin, **informing.parsed(forms.multi(form)))
    except BreachflowError as exc:
        if status_of(exc) not in (409, 422):
            raise
        problems = exc.fields or [FieldProblem("informed", exc.message)]
        return await _show(request, seen, token, found, status=status_of(exc), problems=problems, people_typed=typed)
    return redirect(request, f"/link/{token}#form-people")
