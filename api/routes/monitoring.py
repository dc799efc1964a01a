"""Monitoring: liveness and readiness (no token)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from breachflow.api import schemas
from breachflow.api.deps import CtxDep, read
from breachflow.api.errors import ErrorResponse, NotReady, responses
from breachflow.notifications import health
from breachflow.workflow.errors import FieldProblem

router = APIRouter(tags=["monitoring"])


@router.get("/healthz", operation_id="health", response_model=schemas.Health, responses=responses(422))
async def alive(ctx: CtxDep) -> schemas.Health:
    """Liveness: the process answers (no token, no query: whether it can work is ``/readyz``)."""
    return schemas.Health(status="ok", database=ctx.engine.dialect.name)


@router.get("/readyz", operation_id="ready", response_model=schemas.Readiness, responses={
    **responses(422), 503: {"model": ErrorResponse, "description": "not ready: each failed check is named"}})
async def ready(request: Request, ctx: CtxDep) -> schemas.Readiness:
    """Readiness (no token): the database answers, a worker beat recently, no message waits too long.
    503 names each failed check and what it found."""
    checks = await read(request, health.readiness, ctx, datetime.now(UTC))
    failed = [c for c in checks if not c.ok]
    if failed:
        raise NotReady("not ready: " + ", ".join(c.name for c in failed), [FieldProblem(c.name, c.detail) for c in failed])
    return schemas.Readiness(status="ready", checks=[schemas.CheckOut(**c.__dict__) for c in checks])

