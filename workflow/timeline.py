"""The append-only, tamper-evident timeline.

Each event's hash covers the previous event's hash and the event's own columns, its payload as
stored (ciphertext), so the chain survives the destruction of a data key. The incident row keeps
the head of its chain (``event_count``, ``head_hash``), which also reveals a truncated tail.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select

from workflow.models import event_t, incident_t

GENESIS = "0" * 64
_INSERT = insert(event_t)


class EventKind(StrEnum):
    """What a timeline event records."""

    reported = "reported"  # the report was registered
    updated = "updated"  # fields or affected schools changed
    transition = "transition"  # a trigger moved the incident
    note = "note"
    contact = "contact"  # a phone or email contact with a school
    ap_notification = "ap_notification"
    acknowledged = "acknowledged"  # a school confirmed it received a notice
    notice_requested = "notice_requested"  # a handler asked for an update notice
    notices_queued = "notices_queued"
    notices_sent = "notices_sent"
    notices_failed = "notices_failed"
    notices_dead = "notices_dead"
    notices_requeued = "notices_requeued"
    reminder_queued = "reminder_queued"
    reminder_unsent = "reminder_unsent"  # due, but no handler or manager has an email address


@dataclass(frozen=True)
class Event:
    """One timeline event as a command states it, before it is sealed and chained."""

    kind: EventKind
    payload: dict[str, Any] = field(default_factory=dict)
    from_state: str | None = None
    to_state: str | None = None


def event_hash(
    prev_hash: str,
    incident_id: int,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    from_state: str | None,
    to_state: str | None,
    payload: bytes | None,
) -> str:
    """SHA-256 over the canonical form of one event."""
    canonical = json.dumps(
        [prev_hash, incident_id, seq, at.isoformat(), actor, kind, from_state, to_state,
         bytes(payload).hex() if payload is not None else None],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    conn: Connection,
    *,
    incident_id: int,
    seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    kind: str,
    from_state: str | None = None,
    to_state: str | None = None,
    payload: bytes | None = None,
) -> str:
    """Insert event ``seq`` after ``prev_hash``; return its hash."""
    digest = event_hash(prev_hash, incident_id, seq, at, actor, kind, from_state, to_state, payload)
    conn.execute(
        _INSERT,
        {
            "incident_id": incident_id, "seq": seq, "at": at, "actor": actor, "kind": kind,
            "from_state": from_state, "to_state": to_state, "payload": payload,
            "prev_hash": prev_hash, "hash": digest,
        },
    )
    return digest


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link of one incident's chain."""

    reference: str
    seq: int
    problem: str


def verify(conn: Connection) -> tuple[int, list[ChainBreak]]:
    """Check every chain; return the number of events checked and the first break per incident."""
    heads = {
        row.id: row
        for row in conn.execute(
            select(incident_t.c.id, incident_t.c.reference, incident_t.c.event_count, incident_t.c.head_hash)
        )
    }
    rows = conn.execute(select(event_t).order_by(event_t.c.incident_id, event_t.c.seq))
    breaks: dict[int, ChainBreak] = {}
    last: dict[int, tuple[int, str]] = {}
    checked = 0
    for ev in rows:
        checked += 1
        if ev.incident_id in breaks:
            continue
        reference = heads[ev.incident_id].reference if ev.incident_id in heads else f"#{ev.incident_id}"
        seq, prev = last.get(ev.incident_id, (0, GENESIS))
        problem = None
        if ev.seq != seq + 1:
            problem = f"expected event {seq + 1}, found {ev.seq} (an event is missing)"
        elif ev.prev_hash != prev:
            problem = "does not point to the previous event's hash"
        elif ev.hash != event_hash(
            ev.prev_hash, ev.incident_id, ev.seq, ev.at, ev.actor, ev.kind,
            ev.from_state, ev.to_state, ev.payload,
        ):
            problem = "its content does not match its hash (altered)"
        if problem:
            breaks[ev.incident_id] = ChainBreak(reference, ev.seq, problem)
        last[ev.incident_id] = (ev.seq, ev.hash)
    for incident_id, head in heads.items():
        if incident_id in breaks:
            continue
        seq, digest = last.get(incident_id, (0, GENESIS))
        if (seq, digest) != (head.event_count, head.head_hash):
            breaks[incident_id] = ChainBreak(
                head.reference, seq + 1, f"the incident records {head.event_count} events; the chain ends at {seq}"
            )
    return checked, sorted(breaks.values(), key=lambda b: b.reference)
