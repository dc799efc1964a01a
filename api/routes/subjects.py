"""``/subjects``: a school's requests about one person (seed section 5): what breachflow holds about
them, and erasing what no legal duty keeps. A school user asks for its own school only; a handler
acts on a school's request and names the school."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from breachflow.api import schemas, views
from breachflow.api.deps import CtxDep, SubjectAsker, command
from breachflow.api.errors import Forbidden, responses
from breachflow.workflow import subjects
from breachflow.workflow.accounts import Account
from breachflow.workflow.context import Context
from breachflow.workflow.errors import FieldProblem, InvalidInput

router = APIRouter(prefix="/subjects", tags=["data subjects"])


def _school(account: Account, body: schemas.SubjectIn) -> str:
    """The school the request is for: a school user's own (another is refused, as a report for
    another school is), or the one a handler names."""
    if views.is_school(account):
        if body.school is not None and body.school.strip().upper() != account.school_brin:
            raise Forbidden("a school asks about the people of its own school only")
        return views.own_brin(account)
    if body.school is None:
        raise InvalidInput("invalid input", [FieldProblem("school", "name the school whose request this is")])
    return body.school


async def _run(request: Request, fn: Callable[..., Any], ctx: Context, account: Account,
               body: schemas.SubjectIn) -> dict[str, Any]:
    person = subjects.Person.of(email=body.email, name=body.name, pupil_number=body.pupil_number)
    done = await command(request, fn, ctx, _school(account, body), person, account.username,
                         staff=not views.is_school(account))
    return done.as_json()


@router.post("/export", operation_id="export_subject", response_model=schemas.SubjectExportOut,
             responses=responses(401, 403, 409, 413, 422, 503))
async def export_subject(request: Request, ctx: CtxDep, account: SubjectAsker,
                         body: schemas.SubjectIn) -> dict[str, Any]:
    """Everything breachflow holds about one person that the school may see, across its incidents
    and its own record, each item with its incident, where it sits and its value (GDPR art. 15).
    Each incident where something was found records the request on its timeline."""
    return await _run(request, subjects.export, ctx, account, body)


@router.post("/erase", operation_id="erase_subject", response_model=schemas.SubjectErasureOut,
             responses=responses(401, 403, 409, 413, 422, 503))
async def erase_subject(request: Request, ctx: CtxDep, account: SubjectAsker,
                        body: schemas.SubjectIn) -> dict[str, Any]:
    """Erase one person's details where no legal duty keeps them (GDPR art. 17): the reporter's name
    and contact, their address among the school's contacts; says what it kept and why. Each incident
    where something was found records the request on its timeline."""
    return await _run(request, subjects.erase, ctx, account, body)
