"""Figures of the register for monitoring, from plain columns only: nothing is decrypted."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import lifecycle, store
from breachflow.workflow.deadlines import DeadlineKind, Periods, Status, deadlines
from breachflow.workflow.models import incident_t

OPEN = (Status.ok, Status.due_soon, Status.overdue)


def incidents_by_state(conn: Connection) -> dict[str, int]:
    """How many incidents are in each state (every state named, 0 included)."""
    found = dict(conn.execute(sa.select(incident_t.c.state, sa.func.count()).group_by(incident_t.c.state)).all())
    return {state.value: found.get(state.value, 0) for state in lifecycle.State}


def open_deadlines(conn: Connection, periods: Periods, now: datetime) -> dict[tuple[str, str], int]:
    """Unmet deadlines of incidents in progress by kind and status at ``now`` (``ok``, ``due_soon``,
    ``overdue``; every pair named). The clocks are computed from plain columns (``store.clocks_in_progress``)."""
    found = Counter(
        (d.kind.value, d.status(now, periods.due_soon).value)
        for incident in store.clocks_in_progress(conn) for d in deadlines(incident, periods)
    )
    return {(kind.value, status.value): found[(kind.value, status.value)] for kind in DeadlineKind for status in OPEN}
