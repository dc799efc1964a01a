"""``/incidents``: report, read, change and advance incidents."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request
from pydantic import AfterValidator

from breachflow.api import schemas, views
from breachflow.api.deps import (
    CtxDep,
    Cursor,
    Handler,
    Limit,
    Reader,
    ReaderCaller,
    Reporter,
    SchoolUser,
    Staff,
    command,
    read,
)
from breachflow.api.errors import Forbidden, responses
from breachflow.workflow import actions, pages, queries, service
from breachflow.workflow.accounts import Account
from breachflow.workflow.context import Context
from breachflow.workflow.deadlines import Status
from breachflow.workflow.disclosure import Source
from breachflow.workflow.errors import FieldProblem, InvalidInput, NotFound
from breachflow.workflow.incident import Incident
from breachflow.workflow.lifecycle import State, Trigger
from breachflow.workflow.responsibility import Responsibility
from breachflow.workflow.validation import MAX_COUNT, no_nul

router = APIRouter(prefix="/incidents", tags=["incidents"])
Reference = Annotated[str, Path(max_length=30, examples=["DL-2026-00042"]), AfterValidator(no_nul)]
SchoolQuery = Annotated[str | None, Query(max_length=6, description="BRIN code"), AfterValidator(no_nul)]


def seen_by(account: Account, incident: Incident) -> Incident:
    """``incident``, if ``account`` may know it exists; else the 404 of one that does not."""
    if not views.can_see(account, incident):
        raise NotFound(f"incident {incident.reference} does not exist")
    return incident


async def visible(request: Request, ctx: Context, account: Account, reference: Reference) -> Incident:
    """The incident, if it exists and ``account`` may know it does; else 404."""
    return seen_by(account, await read(request, queries.get, ctx, reference))


def _out(ctx: Context, account: Account, incident: Incident) -> schemas.IncidentOut:
    return views.incident_out(account, incident, datetime.now(UTC), ctx.periods)


@router.post("", status_code=201, operation_id="report_incident", response_model=schemas.IncidentOut,
             responses=responses(401, 403, 404, 409, 413, 422, 503))
async def report_incident(
    request: Request,
    ctx: CtxDep,
    account: Reporter,
    body: schemas.ReportIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255,
                                                  description="a retry with the same key creates one incident")] = None,
) -> schemas.IncidentOut:
    """Register a report in the breach register. A school reports for itself only.

    A retry with the same ``Idempotency-Key`` (the same user's) answers with the incident it created,
    as the caller may see it now: 404 once it no longer concerns the caller's school.
    """
    schools, source = body.schools, body.source
    if views.is_school(account):
        if set(b.strip().upper() for b in schools) - {account.school_brin}:
            raise Forbidden("a school reports incidents for itself only")
        schools = schools or {views.own_brin(account): None}
        source = Source.school
    idempotency = None
    if idempotency_key:
        digest = hashlib.sha256(body.model_dump_json(exclude_unset=True).encode()).hexdigest()
        idempotency = service.Idempotency(account.id, idempotency_key, digest)
    incident = await command(request, service.report, ctx, actor=account.username, source=source,
                           fields=body.fields.model_dump(exclude_unset=True), schools=schools,
                           idempotency=idempotency)
    return _out(ctx, account, seen_by(account, incident))


@router.get("", operation_id="list_incidents", response_model=schemas.IncidentPage,
            responses=responses(401, 403, 422, 503))
async def list_incidents(
    request: Request,
    ctx: CtxDep,
    account: Reader,
    state: State | None = None,
    school: SchoolQuery = None,
    responsibility: Responsibility | None = None,
    deadline: Annotated[Status | None, Query(description="the most urgent deadline's status")] = None,
    limit: Limit = pages.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> schemas.IncidentPage:
    """Incidents, newest first, filtered, a page at a time. A school sees only its own."""
    school_id = None
    if views.is_school(account):
        if school is not None and school.strip().upper() != account.school_brin:
            return schemas.IncidentPage(items=[], limit=limit, next_cursor=None)
        school, school_id = None, account.school_id
    now = datetime.now(UTC)
    found = await read(request, queries.incident_page, ctx, state=state.value if state else None, brin=school,
                       responsibility=responsibility.value if responsibility else None,
                       deadline=deadline.value if deadline else None, school_id=school_id, now=now,
                       limit=limit, cursor=cursor)
    items = [views.summary_out(account, i, now, ctx.periods) for i in found.items]
    return schemas.IncidentPage(items=items, limit=limit, next_cursor=found.next_cursor, unreadable=found.unreadable)


@router.get("/{reference}", operation_id="get_incident", response_model=schemas.IncidentOut,
            responses=responses(401, 403, 404, 410, 422, 503))
async def get_incident(caller: ReaderCaller, reference: Reference) -> schemas.IncidentOut:
    """One incident with its schools, AP notifications and deadlines."""
    account, incident = await caller.read(queries.get_in, caller.ctx, reference)  # one transaction with the token
    return _out(caller.ctx, account, seen_by(account, incident))


@router.patch("/{reference}", operation_id="update_incident", response_model=schemas.IncidentOut,
              responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def update_incident(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference, body: schemas.UpdateIn,
) -> schemas.IncidentOut:
    """Change disclosure fields and affected schools; ``version`` must be the current one."""
    incident = await command(request, service.update, ctx, reference=reference, actor=account.username,
                           fields=body.fields.model_dump(exclude_unset=True), schools=body.schools,
                           remove_schools=body.remove_schools, reason=body.reason, expected_version=body.version)
    return _out(ctx, account, incident)


@router.get("/{reference}/triggers", operation_id="list_triggers", response_model=list[schemas.TriggerOut],
            responses=responses(401, 403, 404, 410, 422, 503))
async def list_triggers(request: Request, ctx: CtxDep, account: Staff, reference: Reference) -> list[schemas.TriggerOut]:
    """Every trigger valid in the incident's state, with what each still misses."""
    return views.triggers_out(await visible(request, ctx, account, reference))


@router.post("/{reference}/triggers/{trigger}", operation_id="fire_trigger", response_model=schemas.IncidentOut,
             responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def fire_trigger(
    request: Request,
    ctx: CtxDep,
    account: Handler,
    reference: Reference,
    trigger: Trigger,
    body: Annotated[schemas.FireIn | None, Body()] = None,
) -> schemas.IncidentOut:
    """Fire a trigger; fields in the body are saved with it, or nothing is saved."""
    body = body or schemas.FireIn()
    incident = await command(request, service.fire, ctx, reference=reference, trigger=trigger.value,
                           actor=account.username, fields=body.fields.model_dump(exclude_unset=True),
                           reason=body.reason, actions=body.actions, expected_version=body.version)
    return _out(ctx, account, incident)


@router.post("/{reference}/actions", status_code=201, operation_id="add_actions", response_model=schemas.IncidentOut,
             responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def add_actions(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference, body: schemas.ActionsIn,
) -> schemas.IncidentOut:
    """Record follow-up actions, from the evaluation until the incident is closed."""
    incident = await command(request, actions.add, ctx, reference=reference, actor=account.username,
                             actions=body.actions, expected_version=body.version)
    return _out(ctx, account, incident)


@router.post("/{reference}/actions/{number}/settlement", operation_id="settle_action",
             response_model=schemas.IncidentOut, responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def settle_action(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference,
    number: Annotated[int, Path(ge=1, le=MAX_COUNT)], body: schemas.SettleIn,
) -> schemas.IncidentOut:
    """Mark a follow-up action done or dropped, with an optional note."""
    incident = await command(request, actions.settle, ctx, reference=reference, actor=account.username,
                             number=number, status=body.status, note=body.note, expected_version=body.version)
    return _out(ctx, account, incident)


@router.get("/{reference}/timeline", operation_id="get_timeline", response_model=schemas.TimelinePage,
            responses=responses(401, 403, 404, 422, 503))
async def get_timeline(
    request: Request, ctx: CtxDep, account: Reader, reference: Reference, limit: Limit = pages.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> schemas.TimelinePage:
    """The incident's timeline, oldest first, a page at a time (a school sees what concerns it, so
    its pages may hold fewer events than ``limit``)."""
    if views.is_school(account):
        await visible(request, ctx, account, reference)
    found = await read(request, queries.timeline_page, ctx, reference, limit=limit, cursor=cursor)
    return schemas.TimelinePage(items=views.timeline_out(account, found.items), limit=limit,
                                next_cursor=found.next_cursor)


@router.post("/{reference}/notes", status_code=201, operation_id="add_note", response_model=schemas.IncidentOut,
             responses=responses(401, 403, 404, 410, 413, 422, 503))
async def add_note(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference, body: schemas.NoteIn,
) -> schemas.IncidentOut:
    """Add a note to the timeline."""
    incident = await command(request, service.add_note, ctx, reference=reference, actor=account.username,
                           text=body.text)
    return _out(ctx, account, incident)


@router.post("/{reference}/contacts", status_code=201, operation_id="log_contact",
             response_model=schemas.IncidentOut, responses=responses(401, 403, 404, 410, 413, 422, 503))
async def log_contact(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference, body: schemas.ContactIn,
) -> schemas.IncidentOut:
    """Log a phone or email contact with an affected school; it counts as informing it."""
    incident = await command(request, service.log_contact, ctx, reference=reference, actor=account.username,
                           brin=body.school, channel=body.channel.value, summary=body.summary,
                           told_must_notify_ap=body.told_must_notify_ap, at=body.at)
    return _out(ctx, account, incident)


@router.post("/{reference}/ap-notifications", status_code=201, operation_id="record_ap_notification",
             response_model=schemas.IncidentOut, responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def record_ap_notification(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference, body: schemas.ApNotificationIn,
) -> schemas.IncidentOut:
    """Record a notification to the AP (preliminary, final, supplement or withdrawal)."""
    incident = await command(request, service.record_ap_notification, ctx, reference=reference,
                           actor=account.username, kind=body.kind.value, ap_reference=body.ap_reference,
                           notified_at=body.notified_at, schools=body.schools, delay_reason=body.delay_reason)
    return _out(ctx, account, incident)


@router.post("/{reference}/notices", status_code=201, operation_id="send_update_notice",
             response_model=schemas.IncidentOut, responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def send_update_notice(
    request: Request, ctx: CtxDep, account: Handler, reference: Reference,
    body: Annotated[schemas.NoticeIn | None, Body()] = None,
) -> schemas.IncidentOut:
    """Queue an update notice to every informed school: what changed since its last notice."""
    incident = await command(request, service.send_update, ctx, reference=reference, actor=account.username,
                             message=body.message if body else None)
    return _out(ctx, account, incident)


@router.post("/{reference}/acknowledgements", status_code=201, operation_id="acknowledge_notice",
             response_model=schemas.IncidentOut, responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def acknowledge_notice(
    request: Request, ctx: CtxDep, account: SchoolUser, reference: Reference,
    body: Annotated[schemas.AcknowledgementIn | None, Body()] = None,
) -> schemas.IncidentOut:
    """A school confirms it received the processor's notice."""
    await visible(request, ctx, account, reference)
    incident = await command(request, service.acknowledge, ctx, reference=reference, actor=account.username,
                           brin=account.school_brin, comment=body.comment if body else None)
    return _out(ctx, account, incident)


@router.post("/{reference}/people-informed", status_code=201, operation_id="record_people_informed",
             response_model=schemas.IncidentOut, responses=responses(401, 403, 404, 409, 410, 413, 422, 503))
async def record_people_informed(
    request: Request, ctx: CtxDep, account: Reporter, reference: Reference, body: schemas.PeopleInformedIn,
) -> schemas.IncidentOut:
    """Record whether and how a school told the people affected (GDPR art. 34): a school user for its
    own school, a handler on a school's behalf (``school`` required)."""
    if views.is_school(account):
        await visible(request, ctx, account, reference)
        if body.school is not None and body.school.strip().upper() != account.school_brin:
            raise NotFound(f"incident {reference} does not exist")  # another school's part: as if missing
        brin = account.school_brin
    elif body.school is None:
        raise InvalidInput("invalid input", [FieldProblem("school", "give the BRIN code of the school you record for")])
    else:
        brin = body.school
    incident = await command(request, service.record_people_informed, ctx, reference=reference,
                             actor=account.username, brin=brin, informed=body.informed, at=body.at,
                             via=body.via.value if body.via else None, count=body.count, note=body.note)
    return _out(ctx, account, incident)
