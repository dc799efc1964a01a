"""The FastAPI application: routers under ``/api/v1``, one error shape, docs served locally.

``create_app`` builds it for given settings (tests build their own); ``app_from_environment`` is
what ``breachflow serve`` hands to uvicorn.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp
from swagger_ui_bundle import swagger_ui_path

from breachflow.api import errors, web
from breachflow.api.deps import connection_slots, known_query
from breachflow.api.metrics import Metrics
from breachflow.api.middleware import BodyLimit, RequestLog, SecurityHeaders
from breachflow.api.routes import dossier, incidents, monitoring, overview, schools, subjects
from breachflow.api.routing import included
from breachflow.api.throttle import SlidingWindow
from breachflow.notifications.mailer import mailer_for
from breachflow.notifications.worker import notifications_context, run_worker
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context
from breachflow.workflow.db import is_sqlite

API_PREFIX = "/api/v1"
OPENAPI_URL = "/openapi.json"
DESCRIPTION = """Data-breach response for a processor of school data.

Authenticate with `Authorization: Bearer <token>` (`breachflow token create`). Every error has the
shape `{"error": {"code", "message", "fields": [{"field", "problem"}]}}`. Times are UTC (ISO 8601).
"""


class Breachflow(FastAPI):
    """FastAPI with the edge middleware outermost, around FastAPI's own error handling too."""

    max_body_bytes: int

    def build_middleware_stack(self) -> ASGIApp:
        inner = SecurityHeaders(BodyLimit(super().build_middleware_stack(), self.max_body_bytes))
        return RequestLog(inner, self.state.metrics, self.state.route_templates)


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
        docs_url=None, redoc_url=None, openapi_url=OPENAPI_URL,
        # Starlette's redirect to the path without its trailing slash names the Host the client sent:
        # a forged Host would make breachflow send people elsewhere
        redirect_slashes=False,
    )
    app.max_body_bytes = settings.max_body_bytes
    app.state.ctx = ctx
    app.state.metrics = Metrics(ctx)
    app.state.auth_failures = SlidingWindow(settings.auth_failures_per_minute)
    app.state.public_reports = SlidingWindow(settings.reports_per_hour, window=3600)
    app.state.wake = None
    # SQLite: commands run on the loop, one at a time; threads take turns for the pool's connections (api.deps)
    app.state.on_loop = is_sqlite(ctx.engine)
    app.state.connections = connection_slots(ctx.engine)
    errors.install(app)

    app.router.routes.extend(_api_routes())

    # Swagger UI from the installed package: the docs page loads nothing from third parties
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL, title="breachflow API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js", swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    web.install(app)
    app.state.route_templates = _templates(app, MODULES)
    return app


MODULES = (incidents, dossier, overview, schools, subjects, monitoring)


@cache
def _api_routes() -> tuple[BaseRoute, ...]:
    """The API's routes under its prefix, and the metrics, built once per process (``api.routing``)."""
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(known_query)])
    for module in MODULES:
        api.include_router(module.router)
    return included(api, monitoring.metrics_router)


def _templates(app: FastAPI, modules: tuple) -> dict[int, str]:
    """By ``id`` of each endpoint (the ``endpoint`` of a request's scope), the path template it is served
    under, for the access log and the metrics. Asked of its route, an included route would give the
    path it was declared with, without the prefix it is served under."""
    served = {id(route.endpoint): API_PREFIX + route.path for m in modules for route in m.router.routes
              if isinstance(route, Route)}
    served |= {id(route.endpoint): route.path for route in monitoring.metrics_router.routes if isinstance(route, Route)}
    for route in app.router.routes:
        if isinstance(route, Mount):
            served[id(route.app)] = route.path + "/{path}"
        elif isinstance(route, Route):
            served[id(route.endpoint)] = route.path
    return served


def app_from_environment() -> FastAPI:
    """The application configured by ``BREACHFLOW_*`` variables (uvicorn factory)."""
    app = create_app(Settings())
    gc.freeze()  # start-up objects live for good: keep them out of every collection
    return app
