"""``/incidents/{reference}/ap-dossier``: what the AP's notification form asks, for one controller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Query, Request

from breachflow.api import dossier, schemas
from breachflow.api.deps import CtxDep, Reader, read
from breachflow.api.errors import responses
from breachflow.api.routes.incidents import Reference, SchoolQuery

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.get("/{reference}/ap-dossier", operation_id="get_ap_dossier", response_model=schemas.DossierOut,
            responses=responses(401, 403, 404, 410, 422, 503))
async def get_ap_dossier(
    request: Request, ctx: CtxDep, account: Reader, reference: Reference, school: SchoolQuery = None,
    lang: Literal["nl", "en"] = Query("nl", description="the language of the labels and words"),
) -> schemas.DossierOut:
    """The AP dossier of the incident for one affected school (``school``: required when several are
    affected), in the AP form's chapter order, each answer recorded, derived or missing. A school
    reads only its own, and only when it notifies the AP itself."""
    _incident, found = await read(request, dossier.load, ctx, account, reference, school, language=lang,
                                  now=datetime.now(UTC))
    return dossier.dossier_out(found)
