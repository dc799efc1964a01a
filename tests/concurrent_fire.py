"""A process that fires one command on an incident when the barrier opens (for the race tests)."""

from __future__ import annotations

import os

from breachflow.workflow import queries, service
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context
from breachflow.workflow.errors import BreachflowError


def fire_when_released(environment: dict, reference: str, trigger: str, fields: dict,
                       expected_version: int | None, barrier, results) -> None:
    os.environ.update(environment)
    ctx = Context.open(Settings())
    queries.get(ctx, reference)  # connect and warm up before the race
    barrier.wait(timeout=30)
    try:
        service.fire(ctx, reference=reference, trigger=trigger, actor="racer", fields=fields,
                     expected_version=expected_version)
        results.put("ok")
    except BreachflowError as exc:
        results.put(type(exc).__name__)
