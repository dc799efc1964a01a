"""A process that fires one command on an incident when the barrier opens (for the race tests)."""

from __future__ import annotations

from workflow import queries, service
from workflow.config import Settings
from workflow.context import Context
from workflow.errors import BreachflowError


def fire_when_released(settings: dict, reference: str, trigger: str, fields: dict,
                       expected_version: int | None, barrier, results) -> None:
    ctx = Context.open(Settings(**settings))
    queries.get(ctx, reference)  # connect and warm up before the race
    barrier.wait(timeout=30)
    try:
        service.fire(ctx, reference=reference, trigger=trigger, actor="racer", fields=fields,
                     expected_version=expected_version)
        results.put("ok")
    except BreachflowError as exc:
        results.put(type(exc).__name__)
