"""The outbox: claiming due messages, recording what became of them, listing and requeueing.

A message is ``pending`` until a dispatcher claims it (``sending``, with a lease), then ``sent``
or back to ``pending`` with a later ``next_attempt_at`` (temporary failure, exponential backoff),
or ``dead`` (permanent failure, too many tries, or its incident's key destroyed). A dispatcher
that dies leaves its claims to expire; they are sent again, with the same Message-ID.
On PostgreSQL several dispatchers claim with ``FOR UPDATE SKIP LOCKED`` and never share a row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from notifications.render import MessageKind
from workflow import crypto, service
from workflow.context import Context
from workflow.db import read_transaction, write_transaction
from workflow.errors import KeyUnavailable, NotFound
from workflow.hooks import Note
from workflow.models import data_key_t, incident_t, outbox_t, school_t

ACTOR = "dispatcher"


@dataclass(frozen=True)
class Claimed:
    """A message a dispatcher holds, decrypted for sending."""

    id: int
    reference: str
    incident_id: int
    school_id: int | None
    kind: str
    message_id: str
    attempts: int
    recipients: list[str]
    message: bytes


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed message."""

    claimed: Claimed
    error: str | None = None  # None: accepted (no addresses in it: it is stored plain)
    permanent: bool = False
    refused: dict[str, str] = field(default_factory=dict)  # address → answer; only on the sealed timeline


_DUE = sa.or_(
    sa.and_(outbox_t.c.status == "pending", outbox_t.c.next_attempt_at <= sa.bindparam("now")),
    sa.and_(outbox_t.c.status == "sending", outbox_t.c.claimed_until < sa.bindparam("now")),
)


def claim(ctx: Context, limit: int, now: datetime) -> tuple[list[Claimed], list[Outcome]]:
    """Claim up to ``limit`` due messages; those whose key is gone come back as dead outcomes."""
    query = (
        sa.select(outbox_t, incident_t.c.reference, data_key_t.c.wrapped)
        .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
        .join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id)
        .where(_DUE).order_by(outbox_t.c.id).limit(limit)
    )
    with write_transaction(ctx.engine) as conn:
        if conn.dialect.name != "sqlite":
            query = query.with_for_update(of=outbox_t, skip_locked=True)
        rows = conn.execute(query, {"now": now}).all()
        if rows:
            conn.execute(
                sa.update(outbox_t).where(outbox_t.c.id.in_([r.id for r in rows]))
                .values(status="sending", attempts=outbox_t.c.attempts + 1,
                        claimed_until=now + timedelta(seconds=ctx.settings.dispatch_lease_seconds))
            )
    claimed, unusable = [], []
    for r in rows:
        try:
            key = ctx.keys.unwrap(r.wrapped)
            item = Claimed(r.id, r.reference, r.incident_id, r.school_id, r.kind, r.message_id, r.attempts + 1,
                           crypto.open_sealed(key, r.recipients), crypto.open_bytes(key, r.sealed))
        except KeyUnavailable as exc:
            stub = Claimed(r.id, r.reference, r.incident_id, r.school_id, r.kind, r.message_id, r.attempts + 1, [], b"")
            unusable.append(Outcome(stub, error=str(exc), permanent=True))
            continue
        claimed.append(item)
    return claimed, unusable


def backoff(attempts: int, ctx: Context) -> timedelta:
    """Wait before the next try: the first retry delay, doubled per attempt, capped."""
    s = ctx.settings
    return timedelta(seconds=min(s.dispatch_retry_seconds * 2 ** (attempts - 1), s.dispatch_retry_max_seconds))


def record(ctx: Context, outcomes: list[Outcome], now: datetime) -> dict[str, int]:
    """Mark every outcome and put it on its incident's timeline, in one transaction."""
    counts = {"sent": 0, "retry": 0, "dead": 0}
    if not outcomes:
        return counts
    events: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    sent, retry, dead = [], [], []
    max_attempts = ctx.settings.dispatch_max_attempts
    for o in outcomes:
        c = o.claimed
        entry = {"message_id": c.message_id, "kind": c.kind, "attempt": c.attempts}
        if o.refused:
            entry["refused"] = o.refused
        if o.error is None:
            sent.append({"b_id": c.id, "last_error": _refusals(o.refused)})
            events[c.reference]["notices_sent"].append(entry)
        elif o.permanent or c.attempts >= max_attempts:
            dead.append({"b_id": c.id, "last_error": o.error[:1000]})
            events[c.reference]["notices_dead"].append(entry | {"error": o.error})
        else:
            next_at = now + backoff(c.attempts, ctx)
            retry.append({"b_id": c.id, "last_error": o.error[:1000], "next_attempt_at": next_at})
            events[c.reference]["notices_failed"].append(entry | {"error": o.error, "next_attempt_at": next_at.isoformat()})
    by_id = outbox_t.c.id == sa.bindparam("b_id")
    with write_transaction(ctx.engine) as conn:
        if sent:
            conn.execute(sa.update(outbox_t).where(by_id).values(status="sent", sent_at=now, claimed_until=None), sent)
        if retry:
            conn.execute(sa.update(outbox_t).where(by_id).values(status="pending", claimed_until=None), retry)
        if dead:
            conn.execute(sa.update(outbox_t).where(by_id).values(status="dead", claimed_until=None), dead)
        service.mark_informed(conn, [
            (o.claimed.incident_id, o.claimed.school_id, o.claimed.kind == MessageKind.school_responsible)
            for o in outcomes if o.error is None and o.claimed.school_id is not None
        ], now, via="email")
        for reference, kinds in events.items():
            service.append_notes(conn, ctx, reference, ACTOR,
                                 [Note(kind, {"messages": items}) for kind, items in kinds.items()], now)
    counts.update(sent=len(sent), retry=len(retry), dead=len(dead))
    return counts


def _refusals(refused: dict[str, str]) -> str | None:
    """What ``outbox list`` shows of refused recipients: how many and why; the addresses are on the timeline."""
    if not refused:
        return None
    reasons = "; ".join(sorted(set(refused.values())))
    return f"{len(refused)} recipient(s) refused ({reasons}); see the incident's timeline"


@dataclass(frozen=True)
class Row:
    """An outbox row as the operator sees it."""

    id: int
    reference: str
    school: str | None
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    message_id: str


def list_messages(ctx: Context, *, status: str | None = "dead", reference: str | None = None) -> list[Row]:
    """Outbox rows (default: the dead letters), oldest first; optionally of one incident."""
    query = (
        sa.select(outbox_t, incident_t.c.reference, school_t.c.brin)
        .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
        .outerjoin(school_t, school_t.c.id == outbox_t.c.school_id)
        .order_by(outbox_t.c.id)
    )
    if status is not None:
        query = query.where(outbox_t.c.status == status)
    if reference is not None:
        query = query.where(incident_t.c.reference == reference)
    with read_transaction(ctx.engine) as conn:
        return [Row(r.id, r.reference, r.brin, r.kind, r.status, r.attempts, r.next_attempt_at, r.last_error,
                    r.message_id) for r in conn.execute(query)]


def requeue(ctx: Context, *, ids: list[int] | None, actor: str, now: datetime) -> int:
    """Put dead letters (the given ids, or all) back in the queue, on their incidents' timelines."""
    query = sa.select(outbox_t.c.id, outbox_t.c.message_id, incident_t.c.reference).join(
        incident_t, incident_t.c.id == outbox_t.c.incident_id).where(outbox_t.c.status == "dead")
    if ids is not None:
        query = query.where(outbox_t.c.id.in_(ids))
    with write_transaction(ctx.engine) as conn:
        rows = conn.execute(query).all()
        if ids is not None and len(rows) != len(set(ids)):
            missing = sorted(set(ids) - {r.id for r in rows})
            raise NotFound(f"no dead letter with id {', '.join(map(str, missing))}")
        if not rows:
            return 0
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_([r.id for r in rows]))
                     .values(status="pending", attempts=0, next_attempt_at=now, last_error=None))
        by_incident: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            by_incident[r.reference].append(r.message_id)
        for reference, message_ids in by_incident.items():
            service.append_notes(conn, ctx, reference, actor, [Note("notices_requeued", {"messages": message_ids})], now)
    return len(rows)

