"""Recording a bounce against the message it is about, in one transaction with its incident locked.

Hard-bounced addresses join the message's ``outbox.bounced`` (sealed like its recipients). Once
every recipient the server had accepted (not refused at sending) bounced hard, the message is a dead
letter. A school informed by email whose every notice about the incident that was sent has now
bounced for every address no longer counts as informed (``informed_at`` cleared), nor as told to
notify the AP itself unless a logged contact told it: its 24 h clock is open again and reminded
of. The bounce goes on the timeline (``notice_bounced``) and, when hard and the message was to a
school, the handlers and managers get a ``bounce`` message. An address already in
``outbox.bounced``, or a bounce whose Message-ID the timeline holds already, changes nothing, so
reading a bounce again (a crash before it was marked seen) is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import sqlalchemy as sa

from breachflow.notifications.bounces import Bounce
from breachflow.notifications.models import OutboxStatus, outbox_t
from breachflow.notifications.notices import queue_row
from breachflow.notifications.render import MessageKind, render
from breachflow.workflow import crypto
from breachflow.workflow.context import Context
from breachflow.workflow.db import write_transaction
from breachflow.workflow.errors import DataDestroyed
from breachflow.workflow.incident import ContactChannel
from breachflow.workflow.models import affected_t, data_key_t, event_t, school_t
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit

log = logging.getLogger("breachflow.bounces")
ACTOR = "bounce-reader"
_REACHING = (OutboxStatus.sent.value, OutboxStatus.accepted.value)


@dataclass(frozen=True)
class Recorded:
    """What a bounce changed: its message, and whether it became dead and its school uninformed."""

    reference: str
    school: str | None
    kind: str
    message_id: str
    hard: int
    soft: int
    dead: bool
    uninformed: bool


def _find(conn: sa.Connection, bounce: Bounce) -> Any:
    query = sa.select(outbox_t.c.id, outbox_t.c.incident_id)
    for message_id in bounce.message_ids:
        row = conn.execute(query.where(outbox_t.c.message_id == message_id)).first()
        if row is not None:
            return row
    if bounce.token is not None:  # a hex token: nothing in it to escape
        return conn.execute(query.where(outbox_t.c.message_id.like(f"<{bounce.token}.%"))).first()
    return None


UNCHANGED: Final = "unchanged"
LATER: Final = "later"


def record(ctx: Context, bounce: Bounce, staff: list[str],
           now: datetime) -> Recorded | Literal["unchanged", "later"] | None:
    """Record ``bounce``; ``None`` when it is about no message of ours or names none of its recipients
    (for a person to look at), ``UNCHANGED`` when it changes nothing (read before, or retention destroyed
    what it is about), ``LATER`` when its message's sending is not recorded yet (read it again then)."""
    with write_transaction(ctx.engine) as conn:
        found = _find(conn, bounce)
        if found is None:
            return None
        try:
            unit = Unit.open(conn, ctx, found.incident_id, ACTOR, system=True, now=now)  # the incident first
        except DataDestroyed:  # retention destroyed the incident's data: nothing left to record it with
            return UNCHANGED
        row = conn.execute(sa.select(outbox_t, data_key_t.c.wrapped, school_t.c.brin)
                           .outerjoin(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)
                           .outerjoin(school_t, school_t.c.id == outbox_t.c.school_id)
                           .where(outbox_t.c.id == found.id)).one()
        try:
            key = ctx.keys.unwrap(row.wrapped)
        except DataDestroyed:
            return UNCHANGED
        if row.recipients is None:  # retention destroyed it
            return UNCHANGED
        if row.status in (OutboxStatus.sending, OutboxStatus.accepted):  # its record would mark the school informed
            return LATER
        history = _history(conn, unit)
        if bounce.bounce_id is not None and (row.message_id, bounce.bounce_id) in history.bounces:
            return UNCHANGED
        recipients = {a.lower(): a for a in crypto.open_sealed(key, row.recipients)}
        failures = [f for f in bounce.failures if f.address in recipients]
        if not failures:  # about our message, yet naming none of its recipients (a forwarded address?)
            return None
        bounced = set(crypto.open_sealed(key, row.bounced)) if row.bounced is not None else set()
        hard = sorted({recipients[f.address] for f in failures if f.hard} - bounced)
        soft = [f for f in failures if not f.hard and recipients[f.address] not in bounced]
        if not hard and not soft:
            return UNCHANGED
        dead = uninformed = untold = False
        status = next((f.status for f in failures if f.hard and f.status), None)
        if hard:
            bounced |= set(hard)
            accepted = set(recipients.values()) - history.refused.get(row.message_id, set())
            dead = row.status == OutboxStatus.sent and accepted <= bounced
            values: dict[str, Any] = {"bounced": crypto.seal(key, sorted(bounced)), "bounced_at": now}
            if dead:
                values |= {"status": OutboxStatus.dead.value,
                           "last_error": f"bounced ({status or '5.0.0'}) for every recipient the server had accepted"}
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id == row.id).values(**values))
            if row.school_id is not None:
                uninformed, untold = _uninform(ctx, unit, row.school_id, row.brin, history)
        payload = {"message_id": row.message_id, "kind": row.kind, "school": row.brin, "bounce": bounce.bounce_id,
                   "failures": [{"address": recipients[f.address], "status": f.status, "hard": f.hard}
                                for f in failures if not f.hard or recipients[f.address] in hard],
                   "dead": dead, "uninformed": uninformed, "untold": untold}
        if hard and row.school_id is not None:
            payload["reminded"] = len(staff)
            if staff:
                _remind(ctx, unit, row.brin, staff, status=status, count=len(hard), dead=dead, uninformed=uninformed)
        unit.record(EventKind.notice_bounced, payload)
        unit.finish()
    return Recorded(unit.loaded.reference, row.brin, row.kind, row.message_id, len(hard), len(soft), dead, uninformed)


@dataclass(frozen=True)
class _History:
    refused: dict[str, set[str]]  # Message-ID → the addresses the server refused when it was sent
    bounces: set[tuple[str, str]]  # (Message-ID, the bounce's Message-ID) already on the timeline
    told_by_contact: set[str]  # schools a logged contact told to notify the AP themselves
    contacted: set[str]  # schools a handler logged a contact with (by phone or email): informed whatever bounced


def _history(conn: sa.Connection, unit: Unit) -> _History:
    """What the incident's timeline says of its messages: who refused them, which bounces were read."""
    refused: dict[str, set[str]] = {}
    bounces, told, contacted = set(), set(), set()
    kinds = [EventKind.notices_sent.value, EventKind.notice_bounced.value, EventKind.contact.value]
    for kind, sealed in conn.execute(sa.select(event_t.c.kind, event_t.c.payload).where(
            event_t.c.incident_id == unit.loaded.id, event_t.c.kind.in_(kinds))):
        payload = crypto.open_sealed(unit.data_key, sealed)
        if kind == EventKind.notice_bounced:
            bounces.add((payload["message_id"], payload.get("bounce")))
        elif kind == EventKind.contact:
            contacted.add(payload["school"])
            if payload.get("told_must_notify_ap"):
                told.add(payload["school"])
        else:
            for m in payload["messages"]:
                refused.setdefault(m["message_id"], set()).update(m.get("refused") or {})
    return _History(refused, bounces, told, contacted)


def _uninform(ctx: Context, unit: Unit, school_id: int, brin: str, history: _History) -> tuple[bool, bool]:
    """Take back "informed" when no notice to the school about the incident reached an address, and
    "told to notify the AP" unless a logged contact told it; return which were taken back."""
    conn = unit.conn
    where = (affected_t.c.incident_id == unit.loaded.id) & (affected_t.c.school_id == school_id)
    affected = conn.execute(sa.select(affected_t.c.informed_via, affected_t.c.told_to_notify_ap_at,
                                      affected_t.c.acknowledged_at).where(where)).one()
    if affected.informed_via != ContactChannel.email.value:  # not informed, or by another channel than this mail
        return False, False
    if affected.acknowledged_at is not None or brin in history.contacted:  # it confirmed, or a handler reached it
        return False, False
    refused = history.refused
    notices = conn.execute(
        sa.select(outbox_t.c.message_id, outbox_t.c.recipients, outbox_t.c.bounced, data_key_t.c.wrapped)
        .join(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)
        .where(outbox_t.c.incident_id == unit.loaded.id, outbox_t.c.school_id == school_id,
               outbox_t.c.status.in_(_REACHING), outbox_t.c.recipients.is_not(None))).all()
    for n in notices:
        key = ctx.keys.unwrap(n.wrapped)
        bounced = set(crypto.open_sealed(key, n.bounced)) if n.bounced is not None else set()
        if set(crypto.open_sealed(key, n.recipients)) - refused.get(n.message_id, set()) - bounced:
            return False, False
    untold = affected.told_to_notify_ap_at is not None and brin not in history.told_by_contact
    values: dict[str, Any] = {"informed_at": None, "informed_via": None}
    if untold:  # only a notice that did not arrive told it
        values["told_to_notify_ap_at"] = None
    conn.execute(sa.update(affected_t).where(where).values(**values))
    unit.schools_changed()  # the school_notice clock opens again, and its reminders come
    return True, untold


def _remind(ctx: Context, unit: Unit, brin: str, staff: list[str], *, status: str | None, count: int,
            dead: bool, uninformed: bool) -> None:
    """Queue the ``bounce`` message to the handlers and managers, sealed with the incident's key."""
    incident = unit.incident
    school = next((s for s in incident.schools if s.brin == brin), None)
    subject, text, html = render(MessageKind.bounce, ctx.settings.staff_language, {
        "reference": incident.reference, "school_name": school.name if school else brin, "brin": brin,
        "status": status or "", "count": count, "dead": dead, "uninformed": uninformed,
        "url": f"{ctx.settings.public_url}/api/v1/incidents/{incident.reference}",
    })
    unit.conn.execute(sa.insert(outbox_t), [queue_row(
        ctx.settings, (unit.data_key_id, unit.data_key), incident_id=incident.id, school_id=None,
        kind=MessageKind.bounce, reference=incident.reference, recipients=staff, subject=subject, text=text,
        html=html, now=unit.now)])
