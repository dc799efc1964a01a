"""Reading incidents: one, many, by filter; their timelines, deadlines and chains.

Reads never change anything; each runs in one consistent read transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import crypto, lifecycle, store
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.deadlines import Deadline, deadlines
from breachflow.workflow.disclosure import CauseCategory
from breachflow.workflow.errors import DataDestroyed, NotFound, SecretUnavailable
from breachflow.workflow.incident import Incident
from breachflow.workflow.models import affected_t, data_key_t, event_t, incident_t
from breachflow.workflow.responsibility import Responsibility, responsibility_for
from breachflow.workflow.schools import ids_by_brin
from breachflow.workflow.validation import choice

log = logging.getLogger("breachflow.queries")


def get(ctx: Context, reference: str) -> Incident:
    """One incident, decrypted."""
    with read_transaction(ctx.engine) as conn:
        return get_in(conn, ctx, reference)


def get_in(conn: Connection, ctx: Context, reference: str) -> Incident:
    """One incident, decrypted, in the read transaction ``conn``."""
    return store.load(conn, ctx.keys, reference).incident


def find(
    ctx: Context,
    *,
    state: str | None = None,
    brin: str | None = None,
    responsibility: str | None = None,
) -> list[str]:
    """References of the register's incidents, newest first, by state, school or responsibility."""
    query = sa.select(incident_t.c.reference).order_by(incident_t.c.id.desc())
    if state is not None:
        state = choice(lifecycle.State, state, "state")
        query = query.where(incident_t.c.state == state)
    if responsibility is not None:
        wanted = choice(Responsibility, responsibility, "responsibility")
        causes = [c.value for c in CauseCategory if responsibility_for(c) is wanted]
        matches = incident_t.c.cause_category.in_(causes)
        if wanted is Responsibility.unknown:
            matches = matches | incident_t.c.cause_category.is_(None)
        query = query.where(matches)
    with read_transaction(ctx.engine) as conn:
        if brin is not None:
            school_id = ids_by_brin(conn, [brin], "school")[brin.strip().upper()]
            query = query.where(
                incident_t.c.id.in_(sa.select(affected_t.c.incident_id).where(affected_t.c.school_id == school_id))
            )
        return list(conn.execute(query).scalars())


def get_many(ctx: Context, references: list[str], unreadable: list[str] | None = None) -> list[Incident]:
    """Incidents by reference, in the order given, from one consistent read.

    One record that cannot be read or whose clocks cannot be computed (a forged or damaged row, a
    data key no master key opens) never breaks the read for the rest: it is left out, logged with
    its reference, and named in ``unreadable`` when given. When no record opens at all, the master
    keys are missing from the configuration: that is raised (503), not hidden.
    """
    incidents, unopened = [], []
    with read_transaction(ctx.engine) as conn:
        for ref in references:
            try:
                incident = store.load(conn, ctx.keys, ref).incident
                deadlines(incident, ctx.periods)  # a clock that cannot be computed breaks every view of it
            except SecretUnavailable as exc:  # this record's key, or (when none opens) the configuration
                unopened.append(exc)
                log.warning("incident %s: no master key opens its data key; left out", ref)
                if unreadable is not None:
                    unreadable.append(ref)
                continue
            except Exception as exc:  # noqa: BLE001  (whatever is wrong with it, the others are read)
                log.warning("incident %s cannot be read and is left out: %s: %s", ref, type(exc).__name__, exc)
                if unreadable is not None:
                    unreadable.append(ref)
                continue
            incidents.append(incident)
    if unopened and not incidents:  # not one record opens: the master keys are missing, not the records
        raise unopened[0]
    return incidents


def list_incidents(ctx: Context, unreadable: list[str] | None = None, **filters: str | None) -> list[Incident]:
    """Incidents of the register, newest first (filters as for ``find``); see ``get_many``."""
    return get_many(ctx, find(ctx, **filters), unreadable)


@dataclass(frozen=True)
class Entry:
    """One timeline event as people read it; ``payload`` is ``None`` once its key is destroyed."""

    seq: int
    at: datetime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any] | None
    hash: str


def timeline_of(ctx: Context, reference: str) -> list[Entry]:
    """The incident's timeline, oldest first."""
    with read_transaction(ctx.engine) as conn:
        row = conn.execute(
            sa.select(incident_t.c.id, data_key_t.c.wrapped)
            .join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id)
            .where(incident_t.c.reference == reference)
        ).first()
        if row is None:
            raise NotFound(f"incident {reference} does not exist")
        try:
            key = ctx.keys.unwrap(row.wrapped)
        except DataDestroyed:  # retention; a missing master key is the configuration's fault: 503
            key = None
        events = conn.execute(sa.select(event_t).where(event_t.c.incident_id == row.id).order_by(event_t.c.seq)).all()
    return [
        Entry(e.seq, e.at, e.actor, e.kind, e.from_state, e.to_state,
              crypto.open_sealed(key, e.payload) if key and e.payload is not None else ({} if key else None),
              e.hash)
        for e in events
    ]


def find_in_progress(ctx: Context) -> list[str]:
    """References of incidents that are neither dismissed nor closed."""
    with read_transaction(ctx.engine) as conn:
        return list(conn.execute(
            sa.select(incident_t.c.reference).where(incident_t.c.state.not_in(lifecycle.FINAL_STATES))
        ).scalars())


def deadlines_of(ctx: Context, incident: Incident) -> list[Deadline]:
    """The incident's clocks under this installation's periods."""
    return deadlines(incident, ctx.periods)


def open_deadlines(ctx: Context, unreadable: list[str] | None = None) -> list[tuple[Incident, Deadline]]:
    """Every unmet deadline of incidents still in progress, soonest first; see ``get_many``."""
    incidents = get_many(ctx, find_in_progress(ctx), unreadable)
    pairs = [(i, d) for i in incidents for d in deadlines(i, ctx.periods) if d.met_at is None]
    return sorted(pairs, key=lambda pair: pair[1].due_at)
