"""The register's view of incidents: reopenings, dismissal and delay reasons.

What happened to an incident lives on its timeline and in its AP notifications, not in the
incident row (whose ``reopen_reason`` holds only the latest reason). ``histories`` reads them for
many incidents at once: a fixed number of queries per batch of incidents, never one per incident.
Reasons are decrypted with each incident's data key; once that key is destroyed the reasons read
``None`` while the counts and dates stay, and a damaged sealed value loses only its own reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import crypto
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.errors import DataDamaged, DataDestroyed
from breachflow.workflow.incident import ApKind
from breachflow.workflow.lifecycle import FINAL_STATES, State
from breachflow.workflow.models import ap_t, data_key_t, event_t, incident_t
from breachflow.workflow.timeline import EventKind

log = logging.getLogger("breachflow.register")
BATCH = 1000  # incidents per query: far below the bound-parameter limits of SQLite and PostgreSQL
REASONS = ("reopen_reason", "dismissal_reason")
CHANGING = (EventKind.reported, EventKind.updated, EventKind.transition)  # the events that carry ``changes``


@dataclass(frozen=True)
class Reopening:
    """One reopening: when, from which final state, and the reason it was given."""

    at: datetime
    from_state: str
    reason: str | None


@dataclass(frozen=True)
class ApDelay:
    """An AP notification recorded with the reason why it came late (GDPR art. 33(1))."""

    kind: ApKind
    ap_reference: str
    notified_at: datetime
    school_ids: list[int]
    reason: str | None


@dataclass
class History:
    """What the register tells about one incident beyond its current fields."""

    reopenings: list[Reopening] = field(default_factory=list)
    dismissed_at: datetime | None = None  # the latest dismissal
    dismissal_reason: str | None = None
    ap_delays: list[ApDelay] = field(default_factory=list)


def histories(ctx: Context, incident_ids: list[int]) -> dict[int, History]:
    """The history of every incident in ``incident_ids`` (each gets one, maybe empty)."""
    result = {incident_id: History() for incident_id in incident_ids}
    with read_transaction(ctx.engine) as conn:
        for batch in _batches(list(result)):
            keys = _data_keys(conn, ctx.keys, batch)
            _walk_transitions(conn, batch, keys, result)
            _add_ap_delays(conn, batch, keys, result)
    return result


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def _data_keys(conn: Connection, keys: crypto.KeyRing, ids: list[int]) -> dict[int, bytes | None]:
    rows = conn.execute(
        sa.select(incident_t.c.id, data_key_t.c.wrapped)
        .join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id)
        .where(incident_t.c.id.in_(ids))
    )
    found: dict[int, bytes | None] = {}
    for row in rows:
        try:
            found[row.id] = keys.unwrap(row.wrapped)
        except DataDestroyed:  # retention: counts and dates stay; a missing master key raises (503)
            found[row.id] = None
    return found


def _open(key: bytes | None, sealed: bytes | None, incident_id: int) -> Any:
    """A sealed value, or ``None`` when its key is gone or it is damaged (that alone is lost)."""
    if key is None or sealed is None:
        return None
    try:
        return crypto.open_sealed(key, sealed)
    except (DataDamaged, ValueError) as exc:
        log.warning("a sealed value of incident #%s cannot be read and counts as unknown: %s", incident_id, exc)
        return None


def _walk_transitions(conn: Connection, ids: list[int], keys: dict[int, bytes | None],
                      result: dict[int, History]) -> None:
    """Replay the reason fields through the events of incidents ever dismissed or reopened.

    A reopening leaves a final state (only ``reopen`` does); a reason may have been set by an
    earlier event than the transition itself (the report, an update), so every event that
    carries changes is replayed, in order, for those incidents only.
    """
    turned = sa.select(event_t.c.incident_id).where(
        event_t.c.incident_id.in_(ids),
        event_t.c.kind == EventKind.transition,
        (event_t.c.to_state == State.dismissed) | event_t.c.from_state.in_(sorted(FINAL_STATES)),
    )
    events = conn.execute(
        sa.select(event_t.c.incident_id, event_t.c.at, event_t.c.kind, event_t.c.from_state,
                  event_t.c.to_state, event_t.c.payload)
        .where(event_t.c.incident_id.in_(turned), event_t.c.kind.in_(CHANGING))
        .order_by(event_t.c.incident_id, event_t.c.seq)
    )
    current: dict[int, dict[str, str | None]] = {}
    for e in events:
        reasons = current.setdefault(e.incident_id, dict.fromkeys(REASONS))
        if e.payload is not None:
            payload = _open(keys.get(e.incident_id), e.payload, e.incident_id)
            if payload is None:  # key destroyed or payload damaged: the reasons are unknown from here on
                reasons.update(dict.fromkeys(REASONS))
            for name, (_old, new) in (payload or {}).get("changes", {}).items():
                if name in reasons:
                    reasons[name] = new
        if e.kind != EventKind.transition:
            continue
        history = result[e.incident_id]
        if e.from_state in FINAL_STATES:
            history.reopenings.append(Reopening(e.at, e.from_state, reasons["reopen_reason"]))
        if e.to_state == State.dismissed:
            history.dismissed_at, history.dismissal_reason = e.at, reasons["dismissal_reason"]


def _add_ap_delays(conn: Connection, ids: list[int], keys: dict[int, bytes | None],
                   result: dict[int, History]) -> None:
    rows = conn.execute(
        sa.select(ap_t.c.incident_id, ap_t.c.kind, ap_t.c.ap_reference, ap_t.c.notified_at, ap_t.c.school_ids,
                  ap_t.c.delay_reason)
        .where(ap_t.c.incident_id.in_(ids), ap_t.c.delay_reason.is_not(None))
        .order_by(ap_t.c.incident_id, ap_t.c.id)
    )
    for r in rows:
        reason = _open(keys.get(r.incident_id), r.delay_reason, r.incident_id)
        result[r.incident_id].ap_delays.append(
            ApDelay(ApKind(r.kind), r.ap_reference, r.notified_at, list(r.school_ids), reason))
