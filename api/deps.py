"""Dependencies of the routes: the context, the calling account, role checks, and where work runs.

On SQLite, which has one writer, commands, the token lookup and the read of one incident run on
the event loop itself, one at a time: writers queue in the process instead of sleeping in
SQLite's busy handler, and no thread hand-off (about 0.15 ms here) is paid per request
(bench/api.py). On PostgreSQL they run in worker threads. Reads that may be long (lists, the
register) always run in worker threads.

Worker threads that use the database take turns through one limiter (``connection_slots``): at
most as many at once as the connection pool keeps open (on SQLite one fewer: the loop holds the
other), so requests queue in the process for a connection and never make the pool open and close
connections beyond it.

A read of one incident checks the caller's token in its own transaction (``Caller``): one
connection checkout, and on PostgreSQL one trip to a worker thread, per request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar, cast

import anyio
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from breachflow.api.errors import Forbidden, TooManyFailures, Unauthenticated
from breachflow.api.throttle import SlidingWindow
from breachflow.workflow import accounts, pages
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.context import Context
from breachflow.workflow.db import is_sqlite, read_transaction
from breachflow.workflow.errors import FieldProblem, InvalidInput

T = TypeVar("T")
# error messages, not secrets
NO_TOKEN = "send 'Authorization: Bearer <token>'; create one with 'breachflow token create'"  # noqa: S105
UNKNOWN_TOKEN = "the token is unknown, revoked or expired"  # noqa: S105
bearer = HTTPBearer(auto_error=False, description="an API token from 'breachflow token create'")


async def get_ctx(request: Request) -> Context:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread
    return request.app.state.ctx


CtxDep = Annotated[Context, Depends(get_ctx)]
Limit = Annotated[int, Query(ge=1, le=pages.MAX_LIMIT, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=pages.MAX_CURSOR, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="the next_cursor of the previous page")]


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def known_query(request: Request) -> None:
    """Refuse query parameters the route does not take: a misspelt filter must not filter nothing."""
    if not request.query_params:
        return
    route = request.scope["route"]
    unknown = [name for name in request.query_params if name not in _query_names(route.dependant)]
    if unknown:
        raise InvalidInput("invalid input", [FieldProblem(name, "unknown query parameter") for name in unknown])


def connection_slots(engine: Engine) -> anyio.CapacityLimiter:
    """The limiter of worker threads that use ``engine``: as many as its pool keeps open, less the
    one the loop holds on SQLite."""
    size = cast(QueuePool, engine.pool).size()  # the pool of every engine breachflow makes
    return anyio.CapacityLimiter(max(1, size - 1) if is_sqlite(engine) else size)


async def read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking read in a worker thread, when a connection is free."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=request.app.state.connections)


async def brief(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run short database work where commands run: on the loop on SQLite, else in a worker thread."""
    if request.app.state.on_loop:
        return fn(*args, **kwargs)
    return await read(request, fn, *args, **kwargs)


async def command(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a command where commands run (``brief``); the worker is woken for the mail it may queue."""
    result = await brief(request, fn, *args, **kwargs)
    if request.app.state.wake is not None:  # mail may be queued: don't wait for the next poll
        request.app.state.wake.set()
    return result


async def current_account(
    request: Request,
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Account:
    """The account of the request's token; a client with too many failures is turned away first.

    The account is kept on the request's state for the access log (``api.middleware``)."""
    failures, client = _not_turned_away(request)
    if credentials is None:
        failures.add(client)
        raise Unauthenticated(NO_TOKEN)
    account = await brief(request, accounts.authenticate, ctx, credentials.credentials)
    if account is None:
        failures.add(client)
        raise Unauthenticated(UNKNOWN_TOKEN)
    request.state.account = account
    return account


def _not_turned_away(request: Request) -> tuple[SlidingWindow, str]:
    """The failure count and the client's address; ``TooManyFailures`` if it failed too often."""
    failures, client = request.app.state.auth_failures, client_address(request)
    wait = failures.retry_after(client)
    if wait is not None:
        raise TooManyFailures(wait)
    return failures, client


def client_address(request: Request) -> str:
    """The address the request came from (the proxy's, behind a proxy: see ``api.throttle``)."""
    return request.client.host if request.client else ""


async def metrics_reader(
    request: Request,
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Admit the configured metrics token (``BREACHFLOW_METRICS_TOKEN``), or a manager's or admin's token."""
    _not_turned_away(request)
    configured = ctx.settings.metrics_token
    if credentials is not None and configured is not None and hmac.compare_digest(
            credentials.credentials.encode(), configured.get_secret_value().encode()):
        return
    account = await current_account(request, ctx, credentials)
    if account.role not in (Role.manager, Role.admin):
        raise Forbidden(f"a {account.role.value} may not read the metrics; allowed: manager, admin, the metrics token")


def admitted(account: Account, roles: tuple[Role, ...]) -> Account:
    """``account``, if its role is one of ``roles``; else ``Forbidden``."""
    if account.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"the role {account.role.value} may not do this; allowed: {allowed}")
    return account


def allow(*roles: Role) -> Callable[..., Any]:
    """A dependency that admits only ``roles``."""

    async def check(account: Annotated[Account, Depends(current_account)]) -> Account:
        return admitted(account, roles)

    return check


@dataclass(frozen=True)
class Caller:
    """A caller whose token is checked in the transaction of the read it asks for (``read``)."""

    request: Request
    ctx: Context
    secret: str
    roles: tuple[Role, ...]

    async def read(self, fn: Callable[..., T], *args: Any) -> tuple[Account, T]:
        """The caller's account and ``fn(conn, *args)``, read in one transaction after the token
        lookup and the role check in it; on PostgreSQL in one trip to a worker thread."""
        found = await brief(self.request, self._read, fn, args)
        if found is None:
            self.request.app.state.auth_failures.add(client_address(self.request))
            raise Unauthenticated(UNKNOWN_TOKEN)
        return found

    def _read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[Account, T] | None:
        with read_transaction(self.ctx.engine) as conn:
            account = accounts.account_of(conn, self.secret)
            if account is None:
                return None
            self.request.state.account = account  # for the access log, whatever happens next
            admitted(account, self.roles)
            return account, fn(conn, *args)


def caller(*roles: Role) -> Callable[..., Any]:
    """A dependency that gives a ``Caller`` with one of ``roles``, checked when it reads."""

    async def credentials(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        failures, client = _not_turned_away(request)
        if credentials is None:
            failures.add(client)
            raise Unauthenticated(NO_TOKEN)
        return Caller(request, request.app.state.ctx, credentials.credentials, roles)

    return credentials


Handler = Annotated[Account, Depends(allow(Role.handler))]
Reader = Annotated[Account, Depends(allow(Role.handler, Role.manager, Role.school))]
Staff = Annotated[Account, Depends(allow(Role.handler, Role.manager))]
Reporter = Annotated[Account, Depends(allow(Role.handler, Role.school))]
SchoolUser = Annotated[Account, Depends(allow(Role.school))]
SubjectAsker = Annotated[Account, Depends(allow(Role.handler, Role.school))]  # a school, or a handler on its request
Admin = Annotated[Account, Depends(allow(Role.admin))]
SchoolReader = Annotated[Account, Depends(allow(Role.admin, Role.handler, Role.manager))]
ReaderCaller = Annotated[Caller, Depends(caller(Role.handler, Role.manager, Role.school))]
Anyone = Annotated[Account, Depends(current_account)]
