"""``/schools``: the controllers, managed by admins."""

from __future__ import annotations

from fastapi import APIRouter, Request

from breachflow.api import schemas
from breachflow.api.deps import Admin, CtxDep, Cursor, Limit, SchoolReader, command, read
from breachflow.api.errors import responses
from breachflow.workflow import pages, schools

router = APIRouter(prefix="/schools", tags=["schools"])


def _out(school: schools.SchoolView) -> schemas.SchoolOut:
    return schemas.SchoolOut(brin=school.brin, name=school.name, language=school.language,
                             contacts=school.contacts, contract_ends_on=school.contract_ends_on)


@router.post("", status_code=201, operation_id="add_school", response_model=schemas.SchoolOut,
             responses=responses(401, 403, 413, 422, 503))
async def add_school(request: Request, ctx: CtxDep, _account: Admin, body: schemas.SchoolIn) -> schemas.SchoolOut:
    """Register a school and its contact addresses."""
    school = await command(request, schools.add, ctx, brin=body.brin, name=body.name, contacts=body.contacts,
                         language=body.language, contract_ends_on=body.contract_ends_on)
    return _out(school)


@router.get("", operation_id="list_schools", response_model=schemas.SchoolPage,
            responses=responses(401, 403, 422, 503))
async def list_schools(request: Request, ctx: CtxDep, _account: SchoolReader, limit: Limit = pages.DEFAULT_LIMIT,
                       cursor: Cursor = None) -> schemas.SchoolPage:
    """The schools, by BRIN code, a page at a time."""
    found = await read(request, schools.page, ctx, limit=limit, cursor=cursor)
    return schemas.SchoolPage(items=[_out(s) for s in found.items], limit=limit, next_cursor=found.next_cursor)
