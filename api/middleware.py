"""Pure-ASGI middleware around the whole application (outside FastAPI's own error handling, so
500s get the same treatment): a request id, the access log and request metrics; security headers
on every response; and a cap on request bodies.

Pure ASGI rather than ``BaseHTTPMiddleware``, which costs a task and a copy per request.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from breachflow.api.errors import error_response
from breachflow.api.metrics import METHODS, UNMATCHED, Metrics
from breachflow.workflow import logs

DOCS_STATIC = "/docs/static/"
DOCS_PAGE = "/docs"
# Data: nothing may load, frame or sniff it, and nothing keeps a copy.
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
DATA_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The Swagger UI page loads its script and styles from /docs/static and starts with an inline script.
DOCS_CSP = (b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            b"img-src 'self' data:; frame-ancestors 'none'")
# Pages (api.web): the app's own script, styles, pictures and forms, nothing from elsewhere, no inline code.
PAGE_CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
            b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE_STATIC = "/static/"
NOT_PAGES = ("/api/", "/docs", "/openapi.json", "/metrics")
NO_STORE = (b"cache-control", b"no-store")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's X-Request-ID is taken only if it looks like one
access = logging.getLogger("breachflow.access")


class RequestLog:
    """Gives every HTTP request an id: the client's ``X-Request-ID`` if it is a valid one, else a new
    one. The id is returned in ``X-Request-ID`` and set (``logs.request_id``) for every line logged
    while the request is handled. When it is answered: one access line (method, route template,
    status, duration, the caller's user id and role, never the query, names or addresses) and the
    request's metrics.

    The id is not reset afterwards: uvicorn handles each request in a task of its own, and its
    line about an exception that escaped the application belongs to the request too.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: dict[int, str]) -> None:
        """``templates``: by ``id`` of each endpoint, the path template it is served under."""
        self.app, self.metrics, self.templates = app, metrics, templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        logs.request_id.set(rid)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._answered(scope, status, time.perf_counter() - started)

    def _answered(self, scope: Scope, status: int, seconds: float) -> None:
        template = self.templates.get(id(scope.get("endpoint")))
        # a path no route serves is the client's text (a name in it, a forged log line): never logged
        method, shown = scope["method"] if scope["method"] in METHODS else "OTHER", template or UNMATCHED
        self.metrics.observe(method, template, status, seconds)
        fields = {"method": method, "route": shown, "status": status, "duration_ms": round(seconds * 1000, 1)}
        account = scope.get("state", {}).get("account")
        if account is not None:
            fields |= {"user_id": account.id, "role": account.role.value}
        caller = f" user {account.id} ({account.role.value})" if account is not None else ""
        access.info("%s %s %d %.1f ms%s", method, shown, status, seconds * 1000, caller, extra={"fields": fields})


class SecurityHeaders:
    """Adds the security headers to every HTTP response; data is ``no-store``, docs assets may be cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = HEADERS + [(b"content-security-policy", _csp(path))]
        if not path.startswith((DOCS_STATIC, PAGE_STATIC)):
            extra.append(NO_STORE)
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_page(path: str) -> bool:
    """Whether ``path`` is a page for people (``api.web``, its static files included) rather than data."""
    return not path.startswith(NOT_PAGES)


def _csp(path: str) -> bytes:
    if path == DOCS_PAGE:
        return DOCS_CSP
    return PAGE_CSP if is_page(path) else DATA_CSP


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Answers 413 (in the one error shape) to a request body over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before anything is read; otherwise the
    streamed body is counted, so a missing or false length does not get past it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "too_large", f"the request body is over {self.max_bytes} bytes")
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received, over, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app answers to the cut-off read, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # the cut-off read: answered with 413 below
            await self.app(scope, counting_receive, guarded_send)
        if over and not started:
            await self._refuse(scope, receive, send)
