"""The register, deadlines and the workflow definition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from breachflow.api import register_export, schemas, views
from breachflow.api.deps import Anyone, CtxDep, Cursor, Limit, Reader, read
from breachflow.api.errors import FieldProblemOut, responses
from breachflow.workflow import lifecycle, pages, queries
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.incident import Incident

router = APIRouter(tags=["overview"])


@router.get("/register", operation_id="get_register", response_model=schemas.RegisterPage,
            responses=responses(401, 403, 422, 503))
async def get_register(request: Request, ctx: CtxDep, account: Reader, limit: Limit = pages.DEFAULT_LIMIT,
                       cursor: Cursor = None) -> schemas.RegisterPage:
    """The breach register, newest first, a page at a time: every incident, dismissed ones
    included (a school: its own). ``/register/export`` gives all of it at once."""
    found = await read(request, register_export.page, ctx, account, limit=limit, cursor=cursor)
    return schemas.RegisterPage(items=found.items, limit=limit, next_cursor=found.next_cursor,
                                unreadable=found.unreadable)


@router.get("/register/export", operation_id="export_register",
            responses={**responses(401, 403, 422, 503), 200: {
                "content": {"application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}}},
                "description": 'the whole register as JSON ({"items": [...], "unreadable": [...]}) or CSV, '
                               "streamed"}})
async def export_register(
    request: Request,
    ctx: CtxDep,
    account: Reader,
    format: Annotated[Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")] = None,
) -> StreamingResponse:
    """The whole breach register (a school: its own), streamed as it is read: a register of any
    size is exported in the memory of one page. Unreadable records are named, never dropped."""
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        return register_export.csv_download(ctx, account)
    return StreamingResponse(register_export.stream_json(ctx, account), media_type="application/json")


@router.get("/deadlines", operation_id="list_deadlines", response_model=schemas.DeadlinePage,
            responses=responses(401, 403, 422, 503))
async def list_deadlines(request: Request, ctx: CtxDep, account: Reader, limit: Limit = pages.DEFAULT_LIMIT,
                         cursor: Cursor = None) -> schemas.DeadlinePage:
    """Open deadlines of incidents in progress, soonest first, a page at a time (a school: its own)."""
    found = await read(request, queries.open_deadline_page, ctx,
                       school_id=account.school_id if views.is_school(account) else None, limit=limit, cursor=cursor)
    now = datetime.now(UTC)
    return schemas.DeadlinePage(items=[views.open_deadline_out(o, now, ctx.periods) for o in found.items],
                                limit=limit, next_cursor=found.next_cursor)


def _requirements(step: lifecycle.Step) -> list[FieldProblemOut]:
    guard = step.guard
    if guard is None:
        return []
    empty = Incident(0, "", step.sources[0], 0, "", datetime.now(UTC), Disclosure())
    return [FieldProblemOut(field=m.field, problem=m.problem) for m in guard(empty)]


WORKFLOW = schemas.WorkflowOut(
    states=list(lifecycle.State), initial=lifecycle.INITIAL_STATE, final=sorted(lifecycle.FINAL_STATES),
    steps=[schemas.StepOut(trigger=s.trigger, sources=list(s.sources), dest=s.dest, help=s.help,
                           when=s.when.__name__ if s.when else None, unless=s.unless.__name__ if s.unless else None,
                           requires=_requirements(s)) for s in lifecycle.STEPS],
)


@router.get("/workflow", operation_id="get_workflow", response_model=schemas.WorkflowOut,
            responses=responses(401, 422))
async def get_workflow(_account: Anyone) -> schemas.WorkflowOut:
    """The lifecycle definition: states, steps, branch conditions and what each guard asks."""
    return WORKFLOW
