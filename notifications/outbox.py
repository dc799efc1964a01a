"""The outbox: claiming due messages, recording what became of them, listing (for the operator, and
for a school its own notices: ``notices_to``), requeueing and measuring what waits (``backlog``,
for readiness and metrics).

A message is ``pending`` until a dispatcher claims it (``sending``, with a lease). The moment the
server accepts it, it is marked ``accepted`` (``accept``), so a dispatcher that dies re-sends at
most what was in flight; its outcome reaches the timeline with the batch (``record``), which makes
it ``sent``, or back to ``pending`` with a later ``next_attempt_at`` (temporary failure,
exponential backoff with jitter: ``backoff``), or ``dead`` (permanent failure, too many tries, or
its incident's key destroyed). A dispatcher that dies leaves its claims to expire: ``sending`` ones
are sent again (same Message-ID), ``accepted`` ones are recorded by the next round without being
sent again. A dispatcher that stops (SIGTERM) gives back what it did not send (``release``): due at
once for the next dispatcher, without waiting for the lease.
On PostgreSQL several dispatchers claim with ``FOR UPDATE SKIP LOCKED`` and never share a row.
Recording locks each incident before its outbox and school rows, the order every command keeps.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser, BytesParser

import sqlalchemy as sa

from breachflow.notifications.mime import readdressed
from breachflow.notifications.models import OutboxStatus, outbox_t
from breachflow.notifications.render import MessageKind
from breachflow.workflow import crypto, pages, service
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.errors import Conflict, DataDamaged, DataDestroyed, NotFound
from breachflow.workflow.hooks import HeldNotice
from breachflow.workflow.models import affected_t, data_key_t, incident_t, school_t
from breachflow.workflow.redaction import without_addresses
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit
from breachflow.workflow.validation import EMAIL

ACTOR = "dispatcher"


@dataclass(frozen=True)
class Claimed:
    """A message a dispatcher holds, decrypted for sending."""

    id: int
    reference: str
    incident_id: int
    school_id: int | None
    school: str | None  # its BRIN code, on the timeline: the audit replays who was informed when
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


_EARLIER = outbox_t.alias("earlier")
_DUE = sa.and_(
    sa.or_(
        sa.and_(outbox_t.c.status == OutboxStatus.pending, outbox_t.c.next_attempt_at <= sa.bindparam("now")),
        sa.and_(outbox_t.c.status.in_([OutboxStatus.sending, OutboxStatus.accepted]),
                outbox_t.c.claimed_until < sa.bindparam("now")),
    ),
    # a school reads its messages about an incident in order: none overtakes an earlier one still
    # waiting (out its backoff, or in another dispatcher's hands), so no update precedes its first notice
    outbox_t.c.school_id.is_(None) | ~sa.exists().where(
        _EARLIER.c.incident_id == outbox_t.c.incident_id, _EARLIER.c.school_id == outbox_t.c.school_id,
        _EARLIER.c.id < outbox_t.c.id, _EARLIER.c.status.in_([OutboxStatus.pending, OutboxStatus.sending])),
)


def claim(ctx: Context, limit: int, now: datetime) -> tuple[list[Claimed], list[Outcome]]:
    """Claim up to ``limit`` due messages; return those to send, and outcomes already known:
    dead ones whose key is gone, and ones a dead dispatcher had delivered but not recorded."""
    query = (
        sa.select(outbox_t, incident_t.c.reference, data_key_t.c.wrapped, school_t.c.brin)
        .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
        .outerjoin(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)  # no key: unreadable
        .outerjoin(school_t, school_t.c.id == outbox_t.c.school_id)
        .where(_DUE).order_by(outbox_t.c.id).limit(limit)
    )
    with write_transaction(ctx.engine) as conn:
        if conn.dialect.name != "sqlite":
            query = query.with_for_update(of=outbox_t, skip_locked=True)
        rows = conn.execute(query, {"now": now}).all()
        lease = now + timedelta(seconds=ctx.settings.dispatch_lease_seconds)
        accepted = [r for r in rows if r.status == OutboxStatus.accepted]
        to_send = [r for r in rows if r.status != OutboxStatus.accepted]
        if to_send:
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_([r.id for r in to_send]))
                         .values(status=OutboxStatus.sending, attempts=outbox_t.c.attempts + 1, claimed_until=lease))
        if accepted:
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_([r.id for r in accepted]))
                         .values(claimed_until=lease))
    claimed: list[Claimed] = []
    known = [Outcome(Claimed(r.id, r.reference, r.incident_id, r.school_id, r.brin, r.kind, r.message_id, r.attempts, [], b""))
             for r in accepted]
    for r in to_send:
        try:
            key = ctx.keys.unwrap(r.wrapped)
            item = Claimed(r.id, r.reference, r.incident_id, r.school_id, r.brin, r.kind, r.message_id, r.attempts + 1,
                           crypto.open_sealed(key, r.recipients), crypto.open_bytes(key, r.sealed))
        except (DataDestroyed, DataDamaged) as exc:  # a missing master key is not the message's fault: it waits
            stub = Claimed(r.id, r.reference, r.incident_id, r.school_id, r.brin, r.kind, r.message_id, r.attempts + 1, [], b"")
            known.append(Outcome(stub, error=str(exc), permanent=True))
            continue
        claimed.append(item)
    return claimed, known


def accept(ctx: Context, ids: list[int], now: datetime) -> None:
    """Mark messages the server accepted, at once: a crash after this sends them no second time."""
    with write_transaction(ctx.engine) as conn:
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_(ids), outbox_t.c.status == OutboxStatus.sending)
                     .values(status=OutboxStatus.accepted, sent_at=now))


def release(ctx: Context, ids: list[int]) -> None:
    """Give back claims a stopping dispatcher did not send: pending and due again, the try not counted."""
    with write_transaction(ctx.engine) as conn:
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_(ids), outbox_t.c.status == OutboxStatus.sending)
                     .values(status=OutboxStatus.pending, attempts=outbox_t.c.attempts - 1, claimed_until=None))


def backoff(attempts: int, ctx: Context) -> timedelta:
    """Wait before the next try: ``d``, the first retry delay doubled per attempt and capped, made
    random ("equal jitter"): drawn uniformly from ``[d/2, d]``. Messages that failed together (a
    platform-wide notice that met an outage) so come back spread over half the delay instead of all
    at once, yet none sooner than half of it, and the longest wait stays the cap."""
    s = ctx.settings
    delay = min(s.dispatch_retry_seconds * 2 ** min(attempts - 1, 40), s.dispatch_retry_max_seconds)  # 2**40: past any cap
    return timedelta(seconds=random.uniform(delay / 2, delay))  # noqa: S311 jitter, not a secret


def record(ctx: Context, outcomes: list[Outcome], now: datetime) -> dict[str, int]:
    """Mark every outcome and put it on its incident's timeline, in one transaction."""
    counts = {"sent": 0, "retry": 0, "dead": 0}
    by_incident: dict[int, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_incident[o.claimed.incident_id].append(o)
    with write_transaction(ctx.engine) as conn:
        for incident_id in sorted(by_incident):  # incidents first, in one order: no deadlock with commands
            unit = Unit.open(conn, ctx, incident_id, ACTOR, system=True, now=now)
            for kind, n in _record_incident(ctx, unit, by_incident[incident_id]).items():
                counts[kind] += n
            unit.finish()
    return counts


_BY_ID = outbox_t.c.id == sa.bindparam("b_id")


def _record_incident(ctx: Context, unit: Unit, outcomes: list[Outcome]) -> dict[str, int]:
    events: dict[EventKind, list] = defaultdict(list)
    sent, retry, dead = [], [], []
    for o in outcomes:
        c = o.claimed
        entry = {"message_id": c.message_id, "kind": c.kind, "attempt": c.attempts, "school": c.school}
        if o.refused:
            entry["refused"] = o.refused
        if o.error is None:
            sent.append({"b_id": c.id, "last_error": _refusals(o.refused)})
            events[EventKind.notices_sent].append(entry)
        elif o.permanent or c.attempts >= ctx.settings.dispatch_max_attempts:
            dead.append({"b_id": c.id, "last_error": without_addresses(o.error)[:1000]})
            events[EventKind.notices_dead].append(entry | {"error": o.error})
        else:
            next_at = unit.now + backoff(c.attempts, ctx)
            retry.append({"b_id": c.id, "last_error": without_addresses(o.error)[:1000], "next_attempt_at": next_at})
            events[EventKind.notices_failed].append(entry | {"error": o.error, "next_attempt_at": next_at.isoformat()})
    conn = unit.conn
    if sent:
        conn.execute(sa.update(outbox_t).where(_BY_ID).values(
            status=OutboxStatus.sent, sent_at=sa.func.coalesce(outbox_t.c.sent_at, unit.now), claimed_until=None), sent)
    if retry:
        conn.execute(sa.update(outbox_t).where(_BY_ID).values(status=OutboxStatus.pending, claimed_until=None), retry)
    if dead:
        conn.execute(sa.update(outbox_t).where(_BY_ID).values(status=OutboxStatus.dead, claimed_until=None), dead)
    service.mark_informed(unit, [(o.claimed.school_id, o.claimed.kind == MessageKind.school_responsible)
                                 for o in outcomes if o.error is None and o.claimed.school_id is not None])
    for kind, items in events.items():
        unit.record(kind, {"messages": items})
    return {"sent": len(sent), "retry": len(retry), "dead": len(dead)}


def _refusals(refused: dict[str, str]) -> str | None:
    """What ``outbox list`` shows of refused recipients: how many and why; the addresses are on the timeline."""
    if not refused:
        return None
    reasons = "; ".join(sorted({without_addresses(reason) for reason in refused.values()}))
    return f"{len(refused)} recipient(s) refused ({reasons}); see the incident's timeline"


@dataclass(frozen=True)
class Backlog:
    """What waits in the outbox: messages per status (``sent`` is not counted: it only grows), how
    long the longest-due pending message has waited, and claims held past their lease."""

    by_status: dict[str, int]
    oldest_due_seconds: float
    expired_claims: int


WAITING = [s.value for s in OutboxStatus if s is not OutboxStatus.sent]
_OLDEST_DUE = sa.select(sa.func.min(outbox_t.c.next_attempt_at)).where(
    outbox_t.c.status == OutboxStatus.pending, outbox_t.c.next_attempt_at <= sa.bindparam("now"))
_EXPIRED = sa.select(sa.func.count()).where(
    outbox_t.c.status.in_([OutboxStatus.sending, OutboxStatus.accepted]), outbox_t.c.claimed_until < sa.bindparam("now"))


def backlog(conn: sa.Connection, now: datetime) -> Backlog:
    """The outbox's ``Backlog`` at ``now`` (three indexed queries)."""
    found: dict[str, int] = dict(conn.execute(
        sa.select(outbox_t.c.status, sa.func.count()).where(outbox_t.c.status.in_(WAITING))
        .group_by(outbox_t.c.status)).all())
    oldest = conn.execute(_OLDEST_DUE, {"now": now}).scalar()
    return Backlog({status: found.get(status, 0) for status in WAITING},
                   (now - oldest).total_seconds() if oldest is not None else 0.0,
                   conn.execute(_EXPIRED, {"now": now}).scalar_one())


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
    bounced_at: datetime | None  # a bounce was read for it (the addresses are on the timeline)


def list_messages(ctx: Context, *, status: str | None = OutboxStatus.dead, reference: str | None = None,
                  limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None) -> pages.Page[Row]:
    """A page of outbox rows (default: the dead letters), oldest first; optionally of one incident."""
    query = (
        sa.select(outbox_t, incident_t.c.reference, school_t.c.brin)
        .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
        .outerjoin(school_t, school_t.c.id == outbox_t.c.school_id)
        .order_by(outbox_t.c.id)
        .limit(limit + 1)
    )
    after = pages.decode(cursor, pages.strict_int)
    if after is not None:
        query = query.where(outbox_t.c.id > after[0])
    if status is not None:
        query = query.where(outbox_t.c.status == status)
    if reference is not None:
        query = query.where(incident_t.c.reference == reference)
    with read_transaction(ctx.engine) as conn:
        rows, next_cursor = pages.cut(conn.execute(query).all(), limit, lambda r: (r.id,))
    return pages.Page([Row(r.id, r.reference, r.brin, r.kind, r.status, r.attempts, r.next_attempt_at,
                           r.last_error, r.message_id, r.bounced_at) for r in rows], next_cursor)


@dataclass(frozen=True)
class Delivery:
    """Where one message stands now, as the incident page shows it beside its notice."""

    status: str
    attempts: int
    sent_at: datetime | None
    next_attempt_at: datetime


def deliveries(ctx: Context, message_ids: list[str]) -> dict[str, Delivery]:
    """The delivery status of each of ``message_ids`` (as the timeline names them), by Message-ID."""
    if not message_ids:
        return {}
    with read_transaction(ctx.engine) as conn:
        rows = conn.execute(sa.select(outbox_t.c.message_id, outbox_t.c.status, outbox_t.c.attempts,
                                      outbox_t.c.sent_at, outbox_t.c.next_attempt_at)
                            .where(outbox_t.c.message_id.in_(message_ids))).all()
    return {r.message_id: Delivery(r.status, r.attempts, r.sent_at, r.next_attempt_at) for r in rows}


def count_waiting(ctx: Context, reference: str) -> int:
    """How many messages about incident ``reference`` wait to be sent."""
    with read_transaction(ctx.engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox_t)
                            .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
                            .where(incident_t.c.reference == reference,
                                   outbox_t.c.status == OutboxStatus.pending)).scalar_one()


def requeue(ctx: Context, *, ids: list[int] | None, actor: str, now: datetime) -> int:
    """Put dead letters (the given ids, or all) back in the queue, on their incidents' timelines.
    A notice to a school goes to the school's contacts as they are now (corrected after a bounce,
    say). A dead letter whose content retention destroyed cannot be sent again: all of them leave it
    out, naming it by id is ``Conflict``."""
    query = (sa.select(outbox_t.c.id, outbox_t.c.message_id, outbox_t.c.incident_id,
                       (outbox_t.c.sealed.is_not(None) & data_key_t.c.wrapped.is_not(None)).label("sendable"))
             .outerjoin(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)
             .where(outbox_t.c.status == OutboxStatus.dead))
    if ids is not None:
        query = query.where(outbox_t.c.id.in_(ids))
    with write_transaction(ctx.engine) as conn:
        candidates = conn.execute(query).all()
        if ids is not None and len(candidates) != len(set(ids)):
            missing = sorted(set(ids) - {r.id for r in candidates})
            raise NotFound(f"no dead letter with id {', '.join(map(str, missing))}")
        if ids is not None and not all(r.sendable for r in candidates):
            gone = ", ".join(str(r.id) for r in candidates if not r.sendable)
            raise Conflict(f"dead letter {gone}: its content was destroyed (retention), it cannot be sent again")
        by_incident: dict[int, list[int]] = defaultdict(list)
        for r in candidates:
            if r.sendable:
                by_incident[r.incident_id].append(r.id)
        requeued = 0
        for incident_id in sorted(by_incident):  # lock each incident before its outbox rows
            unit = Unit.open(conn, ctx, incident_id, actor, system=True, now=now)
            rows = conn.execute(query.where(outbox_t.c.id.in_(by_incident[incident_id]))).all()
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_([r.id for r in rows]))
                         .values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now, last_error=None))
            changed = _readdress(ctx, conn, [r.id for r in rows])
            unit.record(EventKind.notices_requeued, {"messages": [r.message_id for r in rows]}
                        | ({"readdressed": changed} if changed else {}))
            unit.finish()
            requeued += len(rows)
    return requeued


def _readdress(ctx: Context, conn: sa.Connection, ids: list[int]) -> list[dict[str, object]]:
    """Address the notices to schools among ``ids`` to their school's usable contacts as they are
    now; return, for the (sealed) timeline, each one whose recipients changed, with old and new."""
    school_key = data_key_t.alias("school_key")
    rows = conn.execute(
        sa.select(outbox_t.c.id, outbox_t.c.message_id, outbox_t.c.recipients, outbox_t.c.sealed,
                  data_key_t.c.wrapped, school_t.c.contacts, school_key.c.wrapped.label("school_wrapped"))
        .join(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)
        .join(school_t, school_t.c.id == outbox_t.c.school_id)
        .join(school_key, school_key.c.id == school_t.c.data_key_id)
        .where(outbox_t.c.id.in_(ids), school_key.c.wrapped.is_not(None))).all()
    changed = []
    for r in rows:
        key = ctx.keys.unwrap(r.wrapped)
        before = crypto.open_sealed(key, r.recipients)
        now = [c for c in crypto.open_sealed(ctx.keys.unwrap(r.school_wrapped), r.contacts) if EMAIL.fullmatch(c)]
        if now == before or not now:
            continue
        message = readdressed(crypto.open_bytes(key, r.sealed), now)
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == r.id).values(
            recipients=crypto.seal(key, now), sealed=crypto.seal_bytes(key, message)))
        changed.append({"message_id": r.message_id, "before": before, "after": now})
    return changed


@dataclass(frozen=True)
class Notice:
    """A message to a school as the school may see it: what, about which incident, and where it stands."""

    id: int
    reference: str
    kind: str
    subject: str | None  # ``None`` once the incident's key is destroyed (retention)
    status: str
    queued_at: datetime
    sent_at: datetime | None


def notices_to(ctx: Context, school_id: int, *, reference: str | None = None, limit: int = pages.DEFAULT_LIMIT,
               cursor: str | None = None) -> pages.Page[Notice]:
    """A page of the messages to school ``school_id``, newest first, about incidents that still
    affect it (optionally only ``reference``). Only the page's subjects are decrypted."""
    query = (
        sa.select(outbox_t.c.id, outbox_t.c.kind, outbox_t.c.status, outbox_t.c.created_at, outbox_t.c.sent_at,
                  outbox_t.c.sealed, incident_t.c.reference, data_key_t.c.wrapped)
        .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
        .outerjoin(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)  # no key: unreadable
        .join(affected_t, (affected_t.c.incident_id == outbox_t.c.incident_id)
              & (affected_t.c.school_id == outbox_t.c.school_id))
        .where(outbox_t.c.school_id == school_id)
        .order_by(outbox_t.c.id.desc())
        .limit(limit + 1)
    )
    after = pages.decode(cursor, pages.strict_int)
    if after is not None:
        query = query.where(outbox_t.c.id < after[0])
    if reference is not None:
        query = query.where(incident_t.c.reference == reference)
    with read_transaction(ctx.engine) as conn:
        rows, next_cursor = pages.cut(conn.execute(query).all(), limit, lambda r: (r.id,))
    return pages.Page([Notice(r.id, r.reference, r.kind, _subject(ctx, r.wrapped, r.sealed), r.status,
                              r.created_at, r.sent_at) for r in rows], next_cursor)


def _subject(ctx: Context, wrapped: bytes, sealed: bytes | None) -> str | None:
    try:
        key = ctx.keys.unwrap(wrapped)
    except DataDestroyed:  # retention; a missing master key is the configuration's fault: 503
        return None
    if sealed is None:
        return None
    headers = BytesHeaderParser(policy=policy.default).parsebytes(crypto.open_bytes(key, sealed))
    return str(headers["Subject"] or "")


def held_notices(conn: sa.Connection, keys: crypto.KeyRing, school_id: int, incident_ids: list[int]) -> list[HeldNotice]:
    """The notices to school ``school_id`` about ``incident_ids`` (outbox rows with its ``school_id``),
    each opened with the key its ``data_key_id`` names: its recipients, subject and text; a notice
    whose key was destroyed is left out. Nothing sent to another school, or to staff, is read."""
    rows = conn.execute(
        sa.select(outbox_t.c.incident_id, outbox_t.c.message_id, outbox_t.c.recipients, outbox_t.c.sealed,
                  data_key_t.c.wrapped)
        .join(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)
        .where(outbox_t.c.school_id == school_id, outbox_t.c.incident_id.in_(incident_ids),
               data_key_t.c.wrapped.is_not(None))
        .order_by(outbox_t.c.id)
    ).all()
    held = []
    for r in rows:
        key = keys.unwrap(r.wrapped)
        texts: dict[str, object] = {}
        if r.recipients is not None:
            texts |= {f"recipients[{i}]": address for i, address in enumerate(crypto.open_sealed(key, r.recipients))}
        if r.sealed is not None:
            message = BytesParser(policy=policy.default).parsebytes(crypto.open_bytes(key, r.sealed))
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content().replace("\r\n", "\n") if body else ""  # the canonical CRLF as newlines
            texts |= {"subject": str(message["Subject"] or ""), "body": text}
        held.append(HeldNotice(r.incident_id, r.message_id, texts))
    return held
