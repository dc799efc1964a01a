"""``/schools``: the controllers, managed by admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import AfterValidator

from breachflow.api import schemas
from breachflow.api.deps import Admin, CtxDep, Cursor, Limit, SchoolReader, command, read
from breachflow.api.errors import responses
from breachflow.workflow import pages, schools
from breachflow.workflow.validation import no_nul

router = APIRouter(prefix="/schools", tags=["schools"])
BrinPath = Annotated[str, Path(max_length=6, examples=["12AB"]), AfterValidator(no_nul)]


def _out(school: schools.SchoolView) -> schemas.SchoolOut:
    return schemas.SchoolOut(brin=school.brin, name=school.name, language=school.language,
                             contacts=school.contacts, contract_ends_on=school.contract_ends_on,
                             **school.master.model_dump())


@router.post("", status_code=201, operation_id="add_school", response_model=schemas.SchoolOut,
             responses=responses(401, 403, 413, 422, 503))
async def add_school(request: Request, ctx: CtxDep, _account: Admin, body: schemas.SchoolIn) -> schemas.SchoolOut:
    """Register a school, its contact addresses and its master data for the AP's form."""
    school = await command(request, schools.add, ctx, brin=body.brin, name=body.name, contacts=body.contacts,
                         language=body.language, contract_ends_on=body.contract_ends_on,
                         master=schools.MasterData.model_validate(body.model_dump(include=set(schools.MASTER_FIELDS))))
    return _out(school)


@router.patch("/{brin}", operation_id="update_school", response_model=schemas.SchoolOut,
              responses=responses(401, 403, 404, 413, 422, 503))
async def update_school(request: Request, ctx: CtxDep, _account: Admin, brin: BrinPath,
                        body: schemas.SchoolUpdateIn) -> schemas.SchoolOut:
    """Change a school: only the fields sent change; a master-data field sent as null is cleared."""
    school = await command(request, schools.update, ctx, brin=brin, changes=body.model_dump(exclude_unset=True))
    return _out(school)


@router.get("", operation_id="list_schools", response_model=schemas.SchoolPage,
            responses=responses(401, 403, 422, 503))
async def list_schools(request: Request, ctx: CtxDep, _account: SchoolReader, limit: Limit = pages.DEFAULT_LIMIT,
                       cursor: Cursor = None) -> schemas.SchoolPage:
    """The schools, by BRIN code, a page at a time."""
    found = await read(request, schools.page, ctx, limit=limit, cursor=cursor)
    return schemas.SchoolPage(items=[_out(s) for s in found.items], limit=limit, next_cursor=found.next_cursor)
