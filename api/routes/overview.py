"""The register, deadlines and the workflow definition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from breachflow.api import register_export, schemas, views
from breachflow.api.deps import Anyone, CtxDep, Reader, read
from breachflow.api.errors import FieldProblemOut, responses
from breachflow.workflow import lifecycle, queries
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.incident import Incident

router = APIRouter(tags=["overview"])
UNREADABLE_HEADER = "Breachflow-Unreadable"  # references of damaged records a list had to leave out


@router.get("/register", operation_id="get_register", response_model=list[schemas.RegisterEntry],
            responses={**responses(401, 403, 422, 503),
                       200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "the register as JSON, or CSV when asked for"}})
async def get_register(
    request: Request,
    response: Response,
    ctx: CtxDep,
    account: Reader,
    format: Annotated[Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")] = None,
):
    """The breach register: every incident, dismissed ones included (a school: its own)."""
    unreadable: list[str] = []
    entries = await read(request, register_export.entries, ctx, account, unreadable)
    named = {UNREADABLE_HEADER: ", ".join(unreadable)} if unreadable else {}
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if not wants_csv:
        response.headers.update(named)
        return entries
    return Response(register_export.to_csv(entries), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="datalekkenregister.csv"', **named})


@router.get("/deadlines", operation_id="list_deadlines", response_model=list[schemas.DeadlineOut],
            responses=responses(401, 403, 422, 503))
async def list_deadlines(request: Request, response: Response, ctx: CtxDep,
                         account: Reader) -> list[schemas.DeadlineOut]:
    """Open deadlines of incidents in progress, soonest first (a school: its own)."""
    unreadable: list[str] = []
    pairs: list[tuple[Incident, object]] = await read(request, queries.open_deadlines, ctx, unreadable)
    if unreadable and not views.is_school(account):  # a school never learns another's references
        response.headers[UNREADABLE_HEADER] = ", ".join(unreadable)
    now = datetime.now(UTC)
    return [
        views.deadline_out(incident, d, now, ctx.periods)
        for incident, d in pairs
        if views.can_see(account, incident) and d in views.visible_deadlines(account, incident, ctx.periods)
    ]


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
