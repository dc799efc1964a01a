"""The register page (handlers and managers): every incident, dismissed and reopened ones included,
newest first, filtered by state, school and responsibility, and its CSV download with the same
filters (``/register.csv``, streamed by ``api.register_export`` as the API's export is)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from breachflow.api import register_export
from breachflow.api.deps import Cursor, Limit, read
from breachflow.api.web.auth import set_cookies
from breachflow.api.web.dashboard import Staff, chosen, filter_context, filters_of, with_query
from breachflow.api.web.render import page
from breachflow.workflow import dashboard, pages
from breachflow.workflow.lifecycle import State

router = APIRouter(include_in_schema=False)


@router.get("/register")
async def register_page(request: Request, session: Staff, limit: Limit = pages.DEFAULT_LIMIT,
                        cursor: Cursor = None) -> Response:
    ctx, params = request.app.state.ctx, chosen(request)
    found = await read(request, register_export.page, ctx, session.account, limit=limit, cursor=cursor,
                       **filters_of(params))
    schools = await read(request, dashboard.schools, ctx)
    return set_cookies(request, page(request, "register.html.j2", {
        "entries": found.items, "unreadable": found.unreadable, "now": datetime.now(UTC),
        "next_url": with_query("/register", params, cursor=found.next_cursor) if found.next_cursor else None,
        "first_url": with_query("/register", params) if cursor else None,
        "csv_url": with_query("/register.csv", {k: v for k, v in params.items() if k != "limit"}),
        "filter_states": [s.value for s in State],
        **filter_context(request.state.visitor.language, schools, params)}))


@router.get("/register.csv")
async def register_csv(request: Request, session: Staff) -> StreamingResponse:
    params = chosen(request)
    await read(request, register_export.page, request.app.state.ctx, session.account, limit=1,
               **filters_of(params))  # an unknown filter is refused as a page, before the download starts
    return register_export.csv_download(request.app.state.ctx, session.account, **filters_of(params))
