"""The AP dossier as a page to print: ``/incidents/{reference}/dossier`` (``?school=BRIN``).

The same dossier and the same rules of who reads it as ``GET /api/v1/incidents/{reference}/ap-dossier``
(``api.dossier``); a staff member who names no school of an incident with several chooses one here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from breachflow.api import dossier
from breachflow.api.deps import read
from breachflow.api.routes.incidents import Reference, SchoolQuery
from breachflow.api.web.auth import VisitorDep, set_cookies, signed_in
from breachflow.api.web.render import page
from breachflow.workflow import sessions
from breachflow.workflow.accounts import Role
from breachflow.workflow.dossier import CHAPTERS

router = APIRouter(include_in_schema=False)
Readers = Annotated[sessions.Session, Depends(signed_in(Role.handler, Role.manager, Role.school))]


@router.get("/incidents/{reference}/dossier")
async def dossier_page(request: Request, session: Readers, seen: VisitorDep, reference: Reference,
                       school: SchoolQuery = None) -> Response:
    """The dossier for one school, or, for staff on an incident of several schools, the choice of one."""
    now = datetime.now(UTC)
    incident, found = await read(request, dossier.load_or_choose, request.app.state.ctx, session.account, reference,
                                 school, language=seen.language, now=now)
    context = {"incident": incident, "now": now, "dossier": dossier.dossier_out(found) if found else None,
               "titles": {key: seen.words(*pair) for key, pair in CHAPTERS.items()}}
    return set_cookies(request, page(request, "dossier.html.j2", context))
