"""Dependencies of the routes: the context, the calling account, role checks, and where work runs.

On SQLite, which has one writer, commands and the token lookup run on the event loop itself, one
at a time: writers queue in the process instead of sleeping in SQLite's busy handler, and no
thread hand-off (about 0.15 ms here) is paid per request (bench/api.py). On PostgreSQL they run
in worker threads, at most as many at once as the connection pool holds. Reads that may be long
(lists, the register) always run in worker threads.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from breachflow.api.errors import Forbidden, TooManyFailures, Unauthenticated
from breachflow.api.throttle import AuthFailures
from breachflow.workflow import accounts, pages
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.context import Context
from breachflow.workflow.errors import FieldProblem, InvalidInput

T = TypeVar("T")
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


async def read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking read in the thread pool."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def command(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a command (or the token lookup) where commands run: on the loop on SQLite, else in a thread."""
    writers = request.app.state.writers
    if writers is None:
        result = fn(*args, **kwargs)
    else:
        result = await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=writers)
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
        failures.failed(client)
        raise Unauthenticated("send 'Authorization: Bearer <token>'; create one with 'breachflow token create'")
    account = await command(request, accounts.authenticate, ctx, credentials.credentials)
    if account is None:
        failures.failed(client)
        raise Unauthenticated("the token is unknown, revoked or expired")
    request.state.account = account
    return account


def _not_turned_away(request: Request) -> tuple[AuthFailures, str]:
    """The failure count and the client's address; ``TooManyFailures`` if it failed too often."""
    failures = request.app.state.auth_failures
    client = request.client.host if request.client else ""
    wait = failures.retry_after(client)
    if wait is not None:
        raise TooManyFailures(wait)
    return failures, client


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


def allow(*roles: Role) -> Callable[..., Any]:
    """A dependency that admits only ``roles``."""

    async def check(account: Annotated[Account, Depends(current_account)]) -> Account:
        if account.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"the role {account.role.value} may not do this; allowed: {allowed}")
        return account

    return check


Handler = Annotated[Account, Depends(allow(Role.handler))]
Reader = Annotated[Account, Depends(allow(Role.handler, Role.manager, Role.school))]
Staff = Annotated[Account, Depends(allow(Role.handler, Role.manager))]
Reporter = Annotated[Account, Depends(allow(Role.handler, Role.school))]
SchoolUser = Annotated[Account, Depends(allow(Role.school))]
Admin = Annotated[Account, Depends(allow(Role.admin))]
SchoolReader = Annotated[Account, Depends(allow(Role.admin, Role.handler, Role.manager))]
Anyone = Annotated[Account, Depends(current_account)]
