"""The ``deadline`` table: every incident's clocks as plain indexed rows, kept by the commands.

``workflow.deadlines`` stays the one definition of the clocks; this module stores what it
computes, so the lists, the deadlines view, the register and the reminder scanner find what they
need with indexed queries instead of computing every incident's clocks. A command that changes
what drives the clocks (``Unit.finish``) writes the difference in its own transaction.

The rows depend on the configured periods and reminder offsets. Those they were computed with are
kept in ``clock_basis``. A database just created or upgraded has none: the first process to open
it computes every row. ``serve`` and ``worker`` adopt other periods when they start (every row is
recomputed, once); any other process with other periods is refused, and a command of a process
still running with the old ones is refused before it writes a row (``PeriodsMismatch``), so the
stored deadlines always follow one set of periods.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from breachflow.workflow import store
from breachflow.workflow.db import migration_transaction, read_transaction
from breachflow.workflow.deadlines import Deadline, Periods, deadlines
from breachflow.workflow.errors import PeriodsMismatch
from breachflow.workflow.incident import Incident
from breachflow.workflow.models import clock_basis_t, deadline_t, incident_t

log = logging.getLogger("breachflow.clocks")
BATCH = 1000  # incidents per query when every row is recomputed
_KEPT = ("due_at", "met_at", "outcome", "is_open")
_OF_INCIDENT = sa.select(deadline_t).where(deadline_t.c.incident_id == sa.bindparam("incident_id"))


def row_values(deadline: Deadline, periods: Periods) -> dict[str, Any]:
    """The ``deadline`` columns for one clock (``next_look_at``: the first reminder's time)."""
    return {"kind": deadline.kind.value, "school_id": deadline.school_id, "action_id": deadline.action_id,
            "due_at": deadline.due_at,
            "met_at": deadline.met_at, "outcome": deadline.outcome.value if deadline.outcome else None,
            "is_open": deadline.is_open,
            "next_look_at": deadline.due_at - periods.reminder_lead if deadline.is_open else None}


def sync(conn: Connection, incident: Incident, periods: Periods) -> None:
    """Make the incident's ``deadline`` rows what its clocks are now: update, add and remove rows.

    A row whose due time and openness did not change keeps its ``next_look_at`` (the scanner's
    place among the reminders already sent). Refused (``PeriodsMismatch``) when the stored rows
    follow other periods than this process's; on PostgreSQL the check holds the basis row until
    the command ends, so a recompute cannot pass between the check and the writes."""
    stored_basis = conn.execute(_BASIS_SHARED).scalar()
    if stored_basis != basis(periods):
        raise _mismatch(stored_basis, periods)
    try:
        stored = {(r.kind, r.school_id, r.action_id): r
                  for r in conn.execute(_OF_INCIDENT, {"incident_id": incident.id})}
    except ValueError:  # a row written past breachflow that does not even read: the command's rows replace it
        log.warning("incident %s: a stored deadline cannot be read; its deadlines are written anew", incident.reference)
        conn.execute(sa.delete(deadline_t).where(deadline_t.c.incident_id == incident.id))
        stored = {}
    new, changed = [], []
    for d in deadlines(incident, periods):
        values = row_values(d, periods)
        old = stored.pop((values["kind"], values["school_id"], values["action_id"]), None)
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


_BASIS = sa.select(clock_basis_t.c.periods)
_BASIS_SHARED = _BASIS.with_for_update(read=True)


def basis(periods: Periods) -> str:
    """What the stored rows depend on, as stored in ``clock_basis``: the periods in hours and the
    reminder offsets (not ``due_soon``, which only colours a status when it is shown)."""
    return json.dumps({"school_notice": _hours(periods.school_notice), "ap_notice": _hours(periods.ap_notice),
                       "school_ap_notice": _hours(periods.school_ap_notice),
                       "reminder_offsets": sorted(periods.reminder_offsets, reverse=True)}, sort_keys=True)


def _hours(period: timedelta) -> float:
    return period / timedelta(hours=1)


def _mismatch(stored: str | None, periods: Periods) -> PeriodsMismatch:
    return PeriodsMismatch(
        f"the deadlines stored in this database follow other periods ({_differences(stored, periods)}): run "
        "every process with the same BREACHFLOW_*_NOTICE_HOURS and BREACHFLOW_REMINDER_OFFSETS_HOURS; "
        "'serve' and 'worker' adopt new ones when they start, recomputing every deadline")


def _differences(stored: str | None, periods: Periods) -> str:
    if stored is None:
        return "none recorded"
    try:
        were = json.loads(stored)
    except ValueError:
        return "unreadable"
    now = json.loads(basis(periods))
    return "; ".join(f"{name}: stored {were.get(name)}, here {value}" for name, value in now.items()
                     if were.get(name) != value) or "unreadable"


def ensure_current(engine: Engine, periods: Periods, now: datetime, *, adopt: bool = False) -> bool:
    """Compute every ``deadline`` row if none were (a new or just upgraded database), or, with
    ``adopt``, if they follow other periods; ``True`` if it did. Other periods without ``adopt`` are
    ``PeriodsMismatch``."""
    wanted = basis(periods)
    with read_transaction(engine) as conn:
        stored = conn.execute(_BASIS).scalar()
    if stored == wanted:
        return False
    if stored is not None and not adopt:
        raise _mismatch(stored, periods)
    with migration_transaction(engine) as conn:
        # the basis row first: a command that checked it holds it (PostgreSQL), so every command that
        # wrote with the old periods has committed before the rows are read, and none writes after
        stored = conn.execute(_BASIS.with_for_update()).scalar()
        if stored == wanted:  # another process did it
            return False
        if stored is not None:
            if not adopt:
                raise _mismatch(stored, periods)
            log.warning("the deadline periods changed (%s): recomputing every stored deadline",
                        _differences(stored, periods))
        rows = recompute_all(conn, periods)
        conn.execute(sa.delete(clock_basis_t))
        conn.execute(sa.insert(clock_basis_t).values(id=1, periods=wanted, computed_at=now))
    log.debug("computed %d stored deadline(s)", rows)
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



Reader = Callable[[Connection, sa.Select[Any], sa.Table], tuple[Sequence[Any], list[tuple[Any, str]]]]


def differences(conn: Connection, periods: Periods, read: Reader) -> dict[str, list[str]]:
    """For the audit: per incident reference, how its stored ``deadline`` rows differ from the clocks
    its facts give (a row deleted, planted, doubled or altered past breachflow hides or invents a
    deadline). ``read`` reads rows that may hold values their column cannot (the audit's reader)."""
    found: dict[str, list[str]] = {}
    last = 0
    while True:
        ids = list(conn.execute(sa.select(incident_t.c.id).where(incident_t.c.id > last)
                                .order_by(incident_t.c.id).limit(BATCH)).scalars())
        if not ids:
            break
        last = ids[-1]
        stored: dict[int, Counter[tuple[Any, ...]]] = defaultdict(Counter)
        rows, unreadable = read(conn, sa.select(deadline_t).where(deadline_t.c.incident_id.in_(ids)), deadline_t)
        for r in rows:
            stored[r.incident_id][_compared(r._mapping)] += 1
        broken = defaultdict(list)
        for (_row_id, incident_id), error in unreadable:
            broken[incident_id].append(f"a stored deadline cannot be read ({error})")
        for incident in store.clock_inputs(conn, ids):
            wanted = Counter(_compared(row_values(d, periods)) for d in deadlines(incident, periods))
            have = stored[incident.id]
            problems = broken[incident.id]
            problems += [f"stored deadline {_named(row)} is not what its facts give"
                         for row in sorted((have - wanted).elements(), key=str)]
            problems += [f"deadline {_named(row)} is missing from the stored deadlines"
                         for row in sorted((wanted - have).elements(), key=str)]
            if problems:
                found[incident.reference] = problems
    orphans = conn.execute(sa.select(sa.func.count()).select_from(deadline_t).where(
        deadline_t.c.incident_id.not_in(sa.select(incident_t.c.id)))).scalar()
    if orphans:
        found["deadline rows"] = [f"{orphans} belong to no incident"]
    return found


def _compared(row: Any) -> tuple[Any, ...]:
    return tuple(row[name] for name in ("kind", "school_id", "action_id", *_KEPT))


def _named(row: tuple[Any, ...]) -> str:
    kind, school_id, action_id, due_at = row[:4]
    of = f" (school #{school_id})" if school_id else f" (action #{action_id})" if action_id else ""
    return f"{kind}{of} due {due_at:%Y-%m-%d %H:%M} UTC"
