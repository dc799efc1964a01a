"""Errors → HTTP, in one place. Every error response has one shape:

    {"error": {"code": "...", "message": "...", "fields": [{"field": "...", "problem": "..."}]}}

Statuses are found along the class hierarchy, so a new subclass of ``Conflict`` is a 409 without
being listed here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from breachflow.workflow.accounts import Role
from breachflow.workflow.errors import (
    BreachflowError,
    Conflict,
    DataDamaged,
    DataDestroyed,
    FieldProblem,
    InvalidInput,
    KeyUnavailable,
    NotFound,
    NotInitialised,
    SchemaMismatch,
)

log = logging.getLogger("breachflow.api")


class Unauthenticated(BreachflowError):
    code = "unauthenticated"


class Forbidden(BreachflowError):
    code = "forbidden"


class TooManyFailures(BreachflowError):
    """Too many failed authentications from one client address (``api.throttle``)."""

    code = "too_many_failures"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications from your address; try again in {retry_after} s")
        self.retry_after = retry_after


class NotReady(BreachflowError):
    """A readiness check failed; ``fields`` names each failed check and what it found."""

    code = "not_ready"


STATUS: dict[type[BreachflowError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    TooManyFailures: 429,
    NotFound: 404,
    Conflict: 409,
    DataDestroyed: 410,  # for good: the retention period ended
    InvalidInput: 422,
    DataDamaged: 500,
    KeyUnavailable: 503,  # a key is missing from the configuration: fixed by restoring it
    NotInitialised: 503,
    NotReady: 503,
    SchemaMismatch: 503,  # the database needs 'breachflow db upgrade', or a newer breachflow
}


class FieldProblemOut(BaseModel):
    field: str
    problem: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldProblemOut] = []


class ErrorResponse(BaseModel):
    """The one shape of every error."""

    error: ErrorDetail


def status_of(exc: BreachflowError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, fields: Sequence[FieldProblem] = ()) -> ErrorResponse:
    """The one shape of an error: the API's error responses and the command line's ``--json`` errors."""
    return ErrorResponse(error=ErrorDetail(
        code=code, message=message, fields=[FieldProblemOut(field=f.field, problem=f.problem) for f in fields]))


def error_response(status: int, code: str, message: str, fields: Sequence[FieldProblem] = (),
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, fields).model_dump(), status_code=status, headers=headers)


def _headers(exc: BreachflowError) -> dict[str, str] | None:
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, TooManyFailures):
        return {"Retry-After": str(exc.retry_after)}
    return None


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _answer(request: Request, status: int, code: str, message: str, fields: Sequence[FieldProblem] = (),
            headers: dict[str, str] | None = None) -> Response:
    """The error as data, or, on a page (``api.web``), as a page for a person."""
    page_error = getattr(request.app.state, "page_error", None)
    if page_error is not None and request.app.state.is_page(request.url.path):
        return page_error(request, status, code, message, list(fields), headers)
    return error_response(status, code, message, fields, headers)


def as_seen_by_caller(request: Request, exc: BreachflowError) -> BreachflowError:
    """A school's account gets the 404 of a missing incident where the data is destroyed: retention
    destroys an incident's key only once no school keeps a part of it (and a school's own key only
    with its accounts), so a 410 would only tell a school that another school's incident exists.
    Handlers and managers keep the 410."""
    account = getattr(request.state, "account", None)
    if not isinstance(exc, DataDestroyed) or account is None or account.role is not Role.school:
        return exc
    reference = request.path_params.get("reference")
    return NotFound(f"incident {reference} does not exist" if reference else "not found")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one shape (a page, on a page)."""

    @app.exception_handler(BreachflowError)
    async def _breachflow(request: Request, exc: BreachflowError) -> Response:
        exc = as_seen_by_caller(request, exc)
        return _answer(request, status_of(exc), exc.code, exc.message, exc.fields, _headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        fields = [
            FieldProblem(_field_name(err["loc"]),
                         "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))
            for err in exc.errors()
        ]
        return _answer(request, 422, InvalidInput.code, "invalid input", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8): invalid input like any other
            return _answer(request, 422, InvalidInput.code, "invalid input", [FieldProblem("body", "not valid JSON")])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _answer(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return _answer(request, 500, "internal_error", "something went wrong on our side; it has been logged")


DESCRIPTIONS = {
    401: "no or invalid token", 403: "your role may not do this", 404: "no such incident (or not yours)",
    409: "the incident's state or version does not allow it", 410: "personal data destroyed (retention)",
    413: "the request body is too large", 422: "invalid input; every bad field is named",
    429: "too many failed authentications from your address; wait Retry-After seconds",
    503: "a master key is unavailable: the operator must restore it",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI entries for the error statuses a route can return (429 wherever a token is checked)."""
    if 401 in statuses:
        statuses += (429,)
    entries: dict[int | str, dict] = {s: {"model": ErrorResponse, "description": DESCRIPTIONS[s]} for s in statuses}
    if 429 in entries:
        entries[429]["headers"] = RETRY_AFTER
    return entries
