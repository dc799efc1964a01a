"""The FastAPI application: routers under ``/api/v1``, one error shape, docs served locally.

``create_app`` builds it for given settings (tests build their own); ``app_from_environment`` is
what ``breachflow serve`` hands to uvicorn.
"""

from __future__ import annotations

import gc

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api import errors
from api.routes import incidents, overview, schools
from workflow.config import Settings
from workflow.context import Context
from workflow.db import is_sqlite

API_PREFIX = "/api/v1"
DESCRIPTION = """Data-breach response for a processor of school data.

Authenticate with `Authorization: Bearer <token>` (`breachflow token create`). Every error has the
shape `{"error": {"code", "message", "fields": [{"field", "problem"}]}}`. Times are UTC (ISO 8601).
"""


def create_app(settings: Settings) -> FastAPI:
    """The application for an initialised installation."""
    ctx = Context.open(settings)
    app = FastAPI(
        title="breachflow", version="1", description=DESCRIPTION,
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    # SQLite: commands run on the loop, one at a time (see api.deps); else threads, bounded by the pool
    app.state.writers = None if is_sqlite(ctx.engine) else anyio.CapacityLimiter(ctx.engine.pool.size())
    errors.install(app)

    api = APIRouter(prefix=API_PREFIX)
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
