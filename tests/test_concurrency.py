"""Concurrent commands on one incident, from separate processes: exactly one wins."""

from __future__ import annotations

import multiprocessing

import pytest
from concurrent_fire import fire_when_released
from conftest import add_school, reported
from notify_support import settings_env
from reading import whole_timeline

from breachflow.workflow import audit, queries, service

pytestmark = pytest.mark.slow  # real processes (see the marker in pyproject.toml)

RACERS = 4


def race(settings, reference, trigger, fields_per_racer, expected_version=None) -> list[str]:
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(len(fields_per_racer)), spawn.Queue()
    same_installation = settings_env(settings)
    procs = [
        spawn.Process(target=fire_when_released,
                      args=(same_installation, reference, trigger, fields, expected_version, barrier, results))
        for fields in fields_per_racer
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return sorted(outcomes)


def test_the_same_trigger_fired_at_once_succeeds_exactly_once(ctx, settings):
    add_school(ctx)
    ref = reported(ctx)
    outcomes = race(settings, ref, "begin_triage", [{}] * RACERS)
    assert outcomes.count("ok") == 1
    assert all(o == "TriggerNotAllowed" for o in outcomes if o != "ok")
    events = whole_timeline(ctx, ref)
    assert [e.kind for e in events] == ["reported", "transition"]
    assert audit.verify(ctx).findings == []


def test_concurrent_updates_of_one_version_lose_nothing(ctx, settings):
    add_school(ctx)
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    reasons = [{"dismissal_reason": f"reason {n}"} for n in range(RACERS)]
    outcomes = race(settings, ref, "dismiss", reasons, expected_version=2)
    assert outcomes.count("ok") == 1
    assert outcomes.count("StaleVersion") == RACERS - 1
    incident = queries.get(ctx, ref)
    assert (incident.state, incident.version) == ("dismissed", 3)
    winner = whole_timeline(ctx, ref)[-1].payload["changes"]["dismissal_reason"][1]
    assert incident.disclosure.dismissal_reason == winner


@pytest.mark.postgres
def test_the_races_above_ran_on_postgresql_in_the_postgres_pass(needs_postgres, ctx):
    assert ctx.engine.dialect.name == "postgresql"
