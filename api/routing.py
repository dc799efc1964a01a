"""Routes built once per process and shared by every app in it.

Including a router analyses each endpoint's parameters and response model (about 50 ms for all of
breachflow's). What that builds belongs to no app, so the app of ``serve`` and the many apps of a
test run take the same route objects instead of building their own. Being no app's, they do not
consult an app's ``dependency_overrides``; breachflow sets none.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import BaseRoute


def included(*routers: APIRouter) -> tuple[BaseRoute, ...]:
    """The routes of ``routers`` as an app serves them, in order (callers cache the result)."""
    built = APIRouter()
    for router in routers:
        built.include_router(router)
    return tuple(built.routes)
