"""The FastAPI application: routers under ``/api/v1``, one error shape, docs served locally.

``create_app`` builds it for given settings (tests build their own); ``app_from_environment`` is
what ``breachflow serve`` hands to uvicorn.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from breachflow.api import errors
from breachflow.api.deps import known_query
from breachflow.api.middleware import BodyLimit, SecurityHeaders
from breachflow.api.routes import incidents, overview, schools
from breachflow.api.throttle import AuthFailures
from breachflow.notifications.mailer import mailer_for
from breachflow.notifications.worker import notifications_context, run_worker
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context
from breachflow.workflow.db import is_sqlite

API_PREFIX = "/api/v1"
DESCRIPTION = """Data-breach response for a processor of school data.

Authenticate with `Authorization: Bearer <token>` (`breachflow token create`). Every error has the
shape `{"error": {"code", "message", "fields": [{"field", "problem"}]}}`. Times are UTC (ISO 8601).
"""


class Breachflow(FastAPI):
    """FastAPI with the edge middleware outermost, around FastAPI's own error handling too."""

    max_body_bytes: int

    def build_middleware_stack(self):
        return SecurityHeaders(BodyLimit(super().build_middleware_stack(), self.max_body_bytes))


def create_app(settings: Settings) -> FastAPI:
    """The application for an initialised installation.

    Run by a server (lifespan), it also runs the worker unless ``in_process_worker`` is off; the
    server's shutdown stops it as SIGTERM stops ``breachflow worker``.
    """
    ctx = notifications_context(Context.open(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.in_process_worker:
            yield
            return
        stop = asyncio.Event()
        app.state.wake = asyncio.Event()
        worker = asyncio.create_task(run_worker(ctx, mailer_for(settings), stop, app.state.wake))
        yield
        stop.set()
        await worker

    app = Breachflow(
        title="breachflow", version="1", description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    app.max_body_bytes = settings.max_body_bytes
    app.state.ctx = ctx
    app.state.auth_failures = AuthFailures(settings.auth_failures_per_minute)
    app.state.wake = None
    # SQLite: commands run on the loop, one at a time (see api.deps); else threads, bounded by the pool
    app.state.writers = None if is_sqlite(ctx.engine) else anyio.CapacityLimiter(ctx.engine.pool.size())
    errors.install(app)

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(known_query)])
    for module in (incidents, overview, schools):
        api.include_router(module.router)
    app.include_router(api)

    # Swagger UI from the installed package: the docs page loads nothing from third parties
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title="breachflow API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js", swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    return app


def app_from_environment() -> FastAPI:
    """The application configured by ``BREACHFLOW_*`` variables (uvicorn factory)."""
    app = create_app(Settings())
    gc.freeze()  # start-up objects live for good: keep them out of every collection
    return app
