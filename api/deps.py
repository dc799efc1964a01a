"""Dependencies of the routes: the context, the calling account, role checks, and where work runs.

Writes run one at a time per process on SQLite (a capacity limiter of 1), so writers queue in the
process instead of sleeping in SQLite's busy handler; reads run in the default thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, Unauthenticated
from workflow import accounts
from workflow.accounts import Account, Role
from workflow.context import Context

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, description="an API token from 'breachflow token create'")


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


async def read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking read in the thread pool."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def write(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a command in a thread, within the process's writer limit."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=request.app.state.writers)


async def current_account(
    request: Request,
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Account:
    if credentials is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>'; create one with 'breachflow token create'")
    account = await read(request, accounts.authenticate, ctx, credentials.credentials)
    if account is None:
        raise Unauthenticated("the token is unknown, revoked or expired")
    return account


def allow(*roles: Role) -> Callable[..., Any]:
    """A dependency that admits only ``roles``."""

    async def check(account: Annotated[Account, Depends(current_account)]) -> Account:
        if account.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"a {account.role.value} may not do this; allowed: {allowed}")
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
