"""Figures of the register for monitoring, from plain columns only: nothing is decrypted."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import lifecycle
from breachflow.workflow.deadlines import DeadlineKind, Periods, Status
from breachflow.workflow.models import deadline_t, incident_t

OPEN = (Status.ok, Status.due_soon, Status.overdue)


def incidents_by_state(conn: Connection) -> dict[str, int]:
    """How many incidents are in each state (every state named, 0 included)."""
    found: dict[str, int] = dict(
        conn.execute(sa.select(incident_t.c.state, sa.func.count()).group_by(incident_t.c.state)).all())
    return {state.value: found.get(state.value, 0) for state in lifecycle.State}


def open_deadlines(conn: Connection, periods: Periods, now: datetime) -> dict[tuple[str, str], int]:
    """Unmet deadlines of incidents in progress by kind and status at ``now`` (``ok``, ``due_soon``,
    ``overdue``; every pair named), counted by the database from the indexed ``deadline`` rows."""
    status = sa.case((deadline_t.c.due_at < now, Status.overdue.value),
                     (deadline_t.c.due_at <= now + periods.due_soon, Status.due_soon.value), else_=Status.ok.value)
    found = dict(((kind, state), n) for kind, state, n in conn.execute(
        sa.select(deadline_t.c.kind, status, sa.func.count()).where(deadline_t.c.is_open == sa.true())
        .group_by(deadline_t.c.kind, status)))
    return {(kind.value, s.value): found.get((kind.value, s.value), 0) for kind in DeadlineKind for s in OPEN}
