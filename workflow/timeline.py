"""The append-only, tamper-evident timeline: what an event is, and how it is chained.

Each event's hash is an HMAC under the audit key (held outside the database, like the master
keys) over the previous event's hash and the event's own columns, its payload as stored
(ciphertext), so the chain survives the destruction of a data key. The incident row keeps the
head of its chain (``event_count``, ``head_hash``). ``workflow.audit`` verifies chains, replays
them against the stored rows and signs checkpoints.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert

from breachflow.workflow.models import event_t

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
    notice_bounced = "notice_bounced"  # a bounce (DSN) for a message the server had accepted was read
    reminder_queued = "reminder_queued"
    reminder_unsent = "reminder_unsent"  # due, but no handler or manager has an email address
    actions_recorded = "actions_recorded"  # follow-up actions of the evaluation added
    action_settled = "action_settled"  # a follow-up action done or dropped
    people_informed = "people_informed"  # a school recorded whether and how it told the people affected
    subject_exported = "subject_exported"  # a school asked what breachflow holds about a person
    subject_erased = "subject_erased"  # a person's details erased on request
    retention_destroyed = "retention_destroyed"  # a school's part, or all personal data, destroyed


@dataclass(frozen=True)
class Event:
    """One timeline event as a command states it, before it is sealed and chained."""

    kind: EventKind
    payload: dict[str, Any] = field(default_factory=dict)
    from_state: str | None = None
    to_state: str | None = None


def event_hash(
    key: bytes,
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
    """HMAC-SHA256, under the audit key, over the canonical form of one event.

    The key is not in the database: write access to it is not enough to forge a link.
    """
    canonical = json.dumps(
        [prev_hash, incident_id, seq, at.isoformat(), actor, kind, from_state, to_state,
         bytes(payload).hex() if payload is not None else None],
        separators=(",", ":"),
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def append(
    conn: Connection,
    key: bytes,
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
    digest = event_hash(key, prev_hash, incident_id, seq, at, actor, kind, from_state, to_state, payload)
    conn.execute(
        _INSERT,
        {
            "incident_id": incident_id, "seq": seq, "at": at, "actor": actor, "kind": kind,
            "from_state": from_state, "to_state": to_state, "payload": payload,
            "prev_hash": prev_hash, "hash": digest,
        },
    )
    return digest
