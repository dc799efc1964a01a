"""Pure-ASGI middleware around the whole application (outside FastAPI's own error handling, so
500s get the same treatment): security headers on every response and a cap on request bodies.

Pure ASGI rather than ``BaseHTTPMiddleware``, which costs a task and a copy per request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from breachflow.api.errors import error_response

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
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds the security headers to every HTTP response; data is ``no-store``, docs assets may be cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = HEADERS + [(b"content-security-policy", DOCS_CSP if path == DOCS_PAGE else DATA_CSP)]
        if not path.startswith(DOCS_STATIC):
            extra.append(NO_STORE)
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


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

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if over and not started:
            await self._refuse(scope, receive, send)
