"""The pages for people (server-rendered HTML over the same service layer as the API).

``install`` adds them to the application: the page routers, the app's own stylesheet, script and
pictures under ``/static``, and the HTML form of every error on a page (``page_error``).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from breachflow.api.middleware import is_page
from breachflow.api.routing import included
from breachflow.api.web import auth, dashboard, dossier, incident, link, portal, register, report
from breachflow.api.web.render import page

ROUTERS = (auth.router, dashboard.router, register.router, incident.router, link.router, portal.router, report.router,
           dossier.router)
STATIC = "/static"

def page_error(request: Request, status: int, code: str, message: str, fields: list,
               headers: dict[str, str] | None) -> Response:
    """An error on a page: sign in first when that is what is missing, else a page that says what went wrong."""
    if not hasattr(request.state, "visitor"):  # refused before the visitor was known (an unknown path, say)
        request.state.visitor = auth.Visitor(None, request.cookies.get(auth.LANGUAGE_COOKIE, "nl")
                                             if request.cookies.get(auth.LANGUAGE_COOKIE) == "en" else "nl", "", "")
    if code == auth.SignInNeeded.code:
        return auth.redirect(request, auth.sign_in_target(request))
    headers = {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    return auth.set_cookies(request, page(request, "error.html.j2", {
        "status": status, "code": code, "message": message, "fields": fields}, status=status, headers=headers))


def install(app: FastAPI) -> None:
    """Serve the pages and their static files from ``app``."""
    static = files("breachflow.templates") / "static"
    app.mount(STATIC, StaticFiles(directory=str(static)), name="static")
    app.router.routes.extend(_page_routes())
    app.state.page_error, app.state.is_page = page_error, is_page


@cache
def _page_routes() -> tuple[BaseRoute, ...]:
    """The pages' routes, built once per process (``api.routing``)."""
    return included(*ROUTERS)
