"""The ``deadline`` table: every incident's clocks as plain indexed rows, kept by the commands.

``workflow.deadlines`` stays the one definition of the clocks; this module stores what it
computes, so the lists, the deadlines view, the register and the reminder scanner find what they
need with indexed queries instead of computing every incident's clocks. A command that changes
what drives the clocks (``Unit.finish``) writes the difference in its own transaction.

The rows depend on the configured periods. The periods they were computed with are kept in
``clock_basis``; a process that starts with other periods (or finds none: a database just
upgraded) recomputes every row first, once, under the migration lock (``ensure_current``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from breachflow.workflow import store
from breachflow.workflow.db import migration_transaction, read_transaction
from breachflow.workflow.deadlines import Deadline, Periods, deadlines
from breachflow.workflow.incident import Incident
from breachflow.workflow.models import clock_basis_t, deadline_t, incident_t

log = logging.getLogger("breachflow.clocks")
BATCH = 1000  # incidents per query when every row is recomputed
_KEPT = ("due_at", "met_at", "outcome", "is_open")
_OF_INCIDENT = sa.select(deadline_t).where(deadline_t.c.incident_id == sa.bindparam("incident_id"))


def row_values(deadline: Deadline, periods: Periods) -> dict[str, Any]:
    """The ``deadline`` columns for one clock (``next_look_at``: the first reminder's time)."""
    return {"kind": deadline.kind.value, "school_id": deadline.school_id, "due_at": deadline.due_at,
            "met_at": deadline.met_at, "outcome": deadline.outcome.value if deadline.outcome else None,
            "is_open": deadline.is_open,
            "next_look_at": deadline.due_at - periods.reminder_lead if deadline.is_open else None}


def sync(conn: Connection, incident: Incident, periods: Periods) -> None:
    """Make the incident's ``deadline`` rows what its clocks are now: update, add and remove rows.

    A row whose due time and openness did not change keeps its ``next_look_at`` (the scanner's
    place among the reminders already sent)."""
    stored = {(r.kind, r.school_id): r for r in conn.execute(_OF_INCIDENT, {"incident_id": incident.id})}
    new, changed = [], []
    for d in deadlines(incident, periods):
        values = row_values(d, periods)
        old = stored.pop((values["kind"], values["school_id"]), None)
        if old is None:
            new.append(values | {"incident_id": incident.id})
        elif any(getattr(old, name) != values[name] for name in _KEPT):
            if old.due_at == values["due_at"] and old.is_open and values["is_open"]:
                values["next_look_at"] = old.next_look_at
            changed.append(values | {"b_id": old.id})
    if new:
        conn.execute(sa.insert(deadline_t), new)
    if changed:
        conn.execute(sa.update(deadline_t).where(deadline_t.c.id == sa.bindparam("b_id")), changed)
    if stored:
        conn.execute(sa.delete(deadline_t).where(deadline_t.c.id.in_([r.id for r in stored.values()])))


def basis(periods: Periods) -> str:
    """The periods as stored in ``clock_basis``."""
    return json.dumps({name: value.total_seconds() for name, value in vars(periods).items()}, sort_keys=True)


def ensure_current(engine: Engine, periods: Periods, now: datetime) -> bool:
    """Recompute every ``deadline`` row if they were computed with other periods; ``True`` if it did."""
    wanted = basis(periods)
    with read_transaction(engine) as conn:
        if conn.execute(sa.select(clock_basis_t.c.periods)).scalar() == wanted:
            return False
    with migration_transaction(engine) as conn:
        stored = conn.execute(sa.select(clock_basis_t.c.periods)).scalar()
        if stored == wanted:  # another process did it
            return False
        if stored is not None:
            log.warning("the deadline periods differ from those the stored deadlines were computed with: "
                        "recomputing them")
        recompute_all(conn, periods)
        conn.execute(sa.delete(clock_basis_t))
        conn.execute(sa.insert(clock_basis_t).values(id=1, periods=wanted, computed_at=now))
    return True


def recompute_all(conn: Connection, periods: Periods) -> int:
    """Rewrite every incident's ``deadline`` rows from its facts, a batch of incidents at a time;
    return how many rows there are now."""
    conn.execute(sa.delete(deadline_t))
    total, last = 0, 0
    while True:
        ids = list(conn.execute(sa.select(incident_t.c.id).where(incident_t.c.id > last)
                                .order_by(incident_t.c.id).limit(BATCH)).scalars())
        if not ids:
            return total
        last = ids[-1]
        rows = [row_values(d, periods) | {"incident_id": i.id}
                for i in store.clock_inputs(conn, ids) for d in deadlines(i, periods)]
        if rows:
            conn.execute(sa.insert(deadline_t), rows)
        total += len(rows)



def differences(conn: Connection, periods: Periods) -> dict[str, list[str]]:
    """For the audit: per incident reference, how its stored ``deadline`` rows differ from the clocks
    its facts give (a row deleted, planted or altered past breachflow hides or invents a deadline)."""
    found: dict[str, list[str]] = {}
    last = 0
    while True:
        ids = list(conn.execute(sa.select(incident_t.c.id).where(incident_t.c.id > last)
                                .order_by(incident_t.c.id).limit(BATCH)).scalars())
        if not ids:
            break
        last = ids[-1]
        stored: dict[int, set[tuple[Any, ...]]] = {}
        for r in conn.execute(sa.select(deadline_t).where(deadline_t.c.incident_id.in_(ids))):
            stored.setdefault(r.incident_id, set()).add(_compared(r._mapping))
        for incident in store.clock_inputs(conn, ids):
            wanted = {_compared(row_values(d, periods)) for d in deadlines(incident, periods)}
            have = stored.get(incident.id, set())
            problems = [f"stored deadline {_named(row)} is not what its facts give" for row in sorted(have - wanted, key=str)]
            problems += [f"deadline {_named(row)} is missing from the stored deadlines"
                         for row in sorted(wanted - have, key=str)]
            if problems:
                found[incident.reference] = problems
    orphans = conn.execute(sa.select(sa.func.count()).select_from(deadline_t).where(
        deadline_t.c.incident_id.not_in(sa.select(incident_t.c.id)))).scalar()
    if orphans:
        found["deadline rows"] = [f"{orphans} belong to no incident"]
    return found


def _compared(row: Any) -> tuple[Any, ...]:
    return tuple(row[name] for name in ("kind", "school_id", *_KEPT))


def _named(row: tuple[Any, ...]) -> str:
    kind, school_id, due_at = row[:3]
    return f"{kind}{f' (school #{school_id})' if school_id else ''} due {due_at:%Y-%m-%d %H:%M} UTC"
