"""Monitoring: liveness and readiness under ``/api/v1`` (no token), Prometheus metrics at ``/metrics``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from breachflow.api import schemas
from breachflow.api.deps import CtxDep, known_query, metrics_reader, read
from breachflow.api.errors import ErrorResponse, NotReady, responses
from breachflow.notifications import health
from breachflow.workflow.errors import FieldProblem

router = APIRouter(tags=["monitoring"])
metrics_router = APIRouter(dependencies=[Depends(known_query)])


@router.get("/healthz", operation_id="health", response_model=schemas.Health, responses=responses(422))
async def alive(ctx: CtxDep) -> schemas.Health:
    """Liveness: the process answers (no token, no query: whether it can work is ``/readyz``)."""
    return schemas.Health(status="ok", database=ctx.engine.dialect.name)


@router.head("/healthz", include_in_schema=False)
async def alive_head() -> Response:
    """Liveness for probes that ask with HEAD (load balancers): the status alone."""
    return Response()


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


@router.head("/readyz", include_in_schema=False)
async def ready_head(request: Request, ctx: CtxDep) -> Response:
    """Readiness for probes that ask with HEAD: 200 or 503, no body (GET says which check failed)."""
    checks = await read(request, health.readiness, ctx, datetime.now(UTC))
    return Response(status_code=200 if all(c.ok for c in checks) else 503)


@metrics_router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
async def metrics(request: Request) -> Response:
    """Prometheus metrics: the metrics token, or a manager's or admin's token."""
    body = await read(request, request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
