"""The notices a command calls for, written into the outbox inside that command's transaction.

- ``confirm``: the first notice to every affected school (the school-responsible notice when the
  cause already points at the school); a school added to a confirmed incident gets its first
  notice at once;
- ``contained``, ``remediated``, ``verified`` and a handler's request: an update saying what
  changed since the last notice to that school; ``remediated`` with a school-caused breach sends
  the school-responsible notice instead;
- reaching ``closed``: the closing notice with the evaluation and its follow-up actions.
When the breach is likely a high risk to the people affected (``workflow.informing.high_risk``), a
first notice and an update carry the draft of the school's message to them (GDPR art. 34), in the
school's language; the link in the notice shows it in every language.
A school that never had a notice gets a first notice whatever the occasion; one that had a notice
gets an update when an incident is confirmed again after a reopen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.notifications import facts as fact_texts
from breachflow.notifications import outbox
from breachflow.notifications.mime import mime, new_message_id
from breachflow.notifications.models import OutboxStatus, outbox_t, snapshot_t
from breachflow.notifications.people import draft
from breachflow.notifications.render import MessageKind, render
from breachflow.workflow import crypto, links
from breachflow.workflow.config import Settings
from breachflow.workflow.deadlines import Periods
from breachflow.workflow.hooks import Change, HeldNotice
from breachflow.workflow.incident import AffectedSchool, Incident
from breachflow.workflow.informing import high_risk
from breachflow.workflow.lifecycle import NOT_YET_CONFIRMED, State, Trigger
from breachflow.workflow.models import affected_t, data_key_t, school_t
from breachflow.workflow.responsibility import Responsibility
from breachflow.workflow.timeline import Event, EventKind
from breachflow.workflow.validation import EMAIL

UPDATE_TRIGGERS = frozenset({Trigger.contained, Trigger.remediated, Trigger.verified})
PEOPLE_DRAFT_KINDS = frozenset({MessageKind.initial, MessageKind.school_responsible, MessageKind.update})


@dataclass(frozen=True)
class Occasion:
    """What a change calls for: a kind of notice, and whether only schools new to it get one."""

    kind: MessageKind
    newcomers_only: bool = False
    message: str | None = None


def occasion(change: Change) -> Occasion | None:
    """Which notice the events of a change call for, before looking at each school."""
    for event in change.events:
        if event.kind is EventKind.notice_requested:
            return Occasion(MessageKind.update, message=event.payload.get("message"))
        if event.kind is EventKind.transition:
            trigger = event.payload["trigger"]
            if event.to_state == State.closed:
                return Occasion(MessageKind.closing)
            if trigger == Trigger.confirm:
                return Occasion(MessageKind.initial)
            if trigger == Trigger.remediated and change.after.responsibility is Responsibility.school:
                return Occasion(MessageKind.school_responsible)
            if trigger in UPDATE_TRIGGERS:
                return Occasion(MessageKind.update)
        if (event.kind is EventKind.updated and change.after.state not in NOT_YET_CONFIRMED
                and any(old is None for old, _new in event.payload.get("schools", {}).values())):
            return Occasion(MessageKind.initial, newcomers_only=True)  # a newly affected school hears at once
    return None


@dataclass(frozen=True)
class _School:
    affected: AffectedSchool
    language: str
    contacts: list[str]  # the usable ones: bare ASCII addresses, as ``workflow.schools`` accepts them
    unusable: int  # contacts stored before that rule, which no mail header can carry: left out
    contact_name: str | None  # the school's contact person, whom a notice greets by name
    snapshot: dict[str, str] | None
    key: bytes  # the school's data key: its notices are sealed with it, and destroyed with it
    key_id: int
    thread: str | None  # the Message-ID of its first notice about the incident, which later ones refer to


class NoticeWriter:
    """The ``Notifier`` that queues notices to schools (see the module's docstring)."""

    def __init__(self, settings: Settings, keys: crypto.KeyRing, periods: Periods, audit_key: bytes) -> None:
        self.settings, self.keys, self.periods = settings, keys, periods
        self.audit_key = audit_key  # signs the link to the incident (``workflow.links``)

    def after_change(self, conn: Connection, change: Change) -> list[Event]:
        cancelled = self._cancel_for_removed(conn, change)
        found = occasion(change)
        if found is None:
            return cancelled
        kind = found.kind
        incident = change.after
        schools = self._schools(conn, incident)
        if kind is MessageKind.update:  # updates go to schools that had a first notice
            schools = [s for s in schools if s.snapshot is not None]
        if found.newcomers_only:
            schools = [s for s in schools if s.snapshot is None]
        rows, snapshots, queued = [], [], []
        for school in schools:
            school_kind = kind
            if school.snapshot is None and kind is not MessageKind.closing:
                school_kind = (MessageKind.school_responsible if incident.responsibility is Responsibility.school
                               else MessageKind.initial)
            elif school.snapshot is not None and kind is MessageKind.initial:  # confirmed again after a reopen
                school_kind = MessageKind.update
            row, now_facts = self._message(incident, school, school_kind, change, found.message)
            rows.append(row)
            snapshots.append({"incident_id": incident.id, "school_id": school.affected.school_id,
                              "facts": crypto.seal(school.key, now_facts), "data_key_id": school.key_id,
                              "thread_id": school.thread or row["message_id"], "updated_at": change.now})
            queued.append({"school": school.affected.brin, "kind": school_kind.value,
                           "message_id": row["message_id"]} | ({"unusable": school.unusable} if school.unusable else {}))
        if not rows:
            return cancelled
        conn.execute(sa.insert(outbox_t), rows)
        conn.execute(sa.delete(snapshot_t).where(snapshot_t.c.incident_id == incident.id,
                                                 snapshot_t.c.school_id.in_([s["school_id"] for s in snapshots])))
        conn.execute(sa.insert(snapshot_t), snapshots)
        return [*cancelled, Event(EventKind.notices_queued, {"messages": queued})]

    def _cancel_for_removed(self, conn: Connection, change: Change) -> list[Event]:
        """A school removed from the incident is sent nothing more that waits for it, and what it was
        told is forgotten, so being added again brings it a first notice (and a thread of its own)."""
        remaining = {s.school_id for s in change.after.schools}
        removed = [s for s in change.before.schools if s.school_id not in remaining]
        if not removed:
            return []
        ids = [s.school_id for s in removed]
        brins = {s.school_id: s.brin for s in removed}
        which = (outbox_t.c.incident_id == change.after.id) & outbox_t.c.school_id.in_(ids)
        waiting = conn.execute(sa.select(outbox_t.c.id, outbox_t.c.school_id, outbox_t.c.kind, outbox_t.c.message_id,
                                         outbox_t.c.attempts)
                               .where(which, outbox_t.c.status == OutboxStatus.pending)).all()
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_([w.id for w in waiting]))
                     .values(status=OutboxStatus.dead, last_error=REMOVED))
        conn.execute(sa.delete(snapshot_t).where(snapshot_t.c.incident_id == change.after.id,
                                                 snapshot_t.c.school_id.in_(ids)))
        if not waiting:
            return []
        return [Event(EventKind.notices_dead, {"messages": [
            {"message_id": w.message_id, "kind": w.kind, "attempt": w.attempts, "school": brins[w.school_id],
             "error": REMOVED} for w in waiting]})]

    def _schools(self, conn: Connection, incident: Incident) -> list[_School]:
        """The incident's schools with their contacts, contact person and last snapshot; a school whose
        part retention destroyed is told nothing more."""
        snapshot_key = data_key_t.alias("snapshot_key")
        rows = conn.execute(
            sa.select(affected_t.c.school_id, snapshot_t.c.facts, snapshot_t.c.thread_id, school_t.c.language,
                      school_t.c.contacts, school_t.c.contact_person, school_t.c.data_key_id, data_key_t.c.wrapped,
                      snapshot_key.c.wrapped.label("snapshot_wrapped"))
            .join(school_t, school_t.c.id == affected_t.c.school_id)
            .outerjoin(snapshot_t, (snapshot_t.c.incident_id == affected_t.c.incident_id)
                       & (snapshot_t.c.school_id == affected_t.c.school_id))
            .outerjoin(snapshot_key, snapshot_key.c.id == snapshot_t.c.data_key_id)
            .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
            .where(affected_t.c.incident_id == incident.id, affected_t.c.destroyed_at.is_(None))
        ).all()
        by_id = {s.school_id: s for s in incident.schools}
        found = []
        for r in rows:
            if r.school_id not in by_id:
                continue
            key = self.keys.unwrap(r.wrapped)
            snapshot = None
            if r.facts is not None and r.snapshot_wrapped is not None:
                snapshot = crypto.open_sealed(self.keys.unwrap(r.snapshot_wrapped), r.facts)
            person = crypto.open_sealed(key, r.contact_person) if r.contact_person is not None else None
            contacts = crypto.open_sealed(key, r.contacts)
            usable = [c for c in contacts if EMAIL.fullmatch(c)]
            found.append(_School(by_id[r.school_id], r.language, usable, len(contacts) - len(usable),
                                 person["name"] if person else None, snapshot, key, r.data_key_id, r.thread_id))
        return found

    def _message(self, incident: Incident, school: _School, kind: MessageKind, change: Change,
                 message: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        language = school.language
        now_facts = fact_texts.facts(incident, school.affected, language)
        people = None  # a first notice or an update carries the draft for the people affected, when they must hear
        if kind in PEOPLE_DRAFT_KINDS and high_risk(incident.disclosure):
            people = draft(incident, school_name=school.affected.name, language=language,
                           contact=self.settings.processor_contact, processor=self.settings.processor_name)
        variables = {
            "reference": incident.reference,
            "school_name": school.affected.name,
            "greeting_name": school.contact_name,
            "facts": now_facts,
            "changes": fact_texts.changes(school.snapshot or {}, now_facts) if school.snapshot else [],
            "message": message,
            "responsibility": incident.responsibility.value,
            "ap_form": fact_texts.ap_form(incident, language),
            "evaluation": incident.disclosure.evaluation or "",
            "actions": fact_texts.actions(incident, language),
            "contact": self.settings.processor_contact,
            "processor": self.settings.processor_name,  # the signature's name (the templates' default: BasisOnline)
            "people": people,
            "handler": change.actor,
            "acknowledge_url": self.link(incident.reference, school.affected.brin, change.now),
            "link_until": fact_texts.when(change.now + timedelta(days=self.settings.link_days), language),
            **fact_texts.deadlines(incident, self.periods, change.now, language, school=school.affected),
        }
        subject, text, html = render(kind, language, variables)
        return queue_row(
            self.settings, (school.key_id, school.key), incident_id=incident.id, school_id=school.affected.school_id,
            kind=kind, reference=incident.reference, recipients=school.contacts,
            subject=subject, text=text, html=html, now=change.now, language=language, thread=school.thread,
        ), now_facts

    def forget(self, conn: Connection, incident_id: int, school_id: int | None) -> int:
        """See ``workflow.hooks.Notifier.forget``: retention destroys a school's part, or the incident's."""
        return forget(conn, incident_id, school_id)

    def notices_to(self, conn: Connection, school_id: int, incident_ids: list[int]) -> list[HeldNotice]:
        return outbox.held_notices(conn, self.keys, school_id, incident_ids)

    def link(self, reference: str, brin: str, now: datetime) -> str:
        """The signed link that opens ``reference`` for school ``brin`` (valid ``link_days``)."""
        token = links.make(self.audit_key, reference=reference, brin=brin,
                           valid_for=timedelta(days=self.settings.link_days), now=now)
        return f"{self.settings.public_url.rstrip('/')}/link/{token}"


def queue_row(settings: Settings, sealed_with: tuple[int, bytes], *, incident_id: int, school_id: int | None,
              kind: MessageKind, reference: str, recipients: list[str], subject: str, text: str, html: str,
              now: datetime, language: str | None = None, thread: str | None = None) -> dict[str, Any]:
    """An outbox row: the serialised message and its recipients, sealed with the data key
    ``sealed_with`` (its id and the key): a school's for notices to it, the incident's for staff.
    ``thread``: the Message-ID of the first message of the conversation this one continues."""
    key_id, data_key = sealed_with
    sender_name, sender = settings.sender
    message_id = new_message_id(reference, sender)
    message = mime(sender=sender, sender_name=sender_name,
                   recipients=recipients, subject=subject, text=text, html=html, message_id=message_id, date=now,
                   language=language, thread=thread)
    return {
        "incident_id": incident_id, "school_id": school_id, "data_key_id": key_id, "kind": kind.value,
        "message_id": message_id,
        "recipients": crypto.seal(data_key, recipients), "sealed": crypto.seal_bytes(data_key, message),
        "status": OutboxStatus.pending.value, "attempts": 0, "next_attempt_at": now, "created_at": now,
    }


DESTROYED = "destroyed by retention; not sent"
REMOVED = "the school was removed from the incident; not sent"


def forget(conn: Connection, incident_id: int, school_id: int | None) -> int:
    """Destroy the sealed recipients and message of the notices about ``incident_id`` (to
    ``school_id``, or all of them), whatever key sealed them, and what the last notice told that
    school (or every school); the ones still to send, or claimed and not yet accepted by the server,
    become dead, and the ones the server accepted but no dispatcher recorded yet are sent (a record
    would need the incident's key, which may be going too). Return how many held sealed content."""
    which = outbox_t.c.incident_id == incident_id
    told = snapshot_t.c.incident_id == incident_id
    if school_id is not None:
        which, told = which & (outbox_t.c.school_id == school_id), told & (snapshot_t.c.school_id == school_id)
    holding = conn.execute(sa.select(sa.func.count()).select_from(outbox_t).where(
        which, outbox_t.c.sealed.is_not(None) | outbox_t.c.recipients.is_not(None))).scalar_one()
    conn.execute(sa.update(outbox_t).where(which, outbox_t.c.status.in_([OutboxStatus.pending, OutboxStatus.sending]))
                 .values(status=OutboxStatus.dead, last_error=DESTROYED))
    conn.execute(sa.update(outbox_t).where(which, outbox_t.c.status == OutboxStatus.accepted)
                 .values(status=OutboxStatus.sent, claimed_until=None))
    conn.execute(sa.update(outbox_t).where(which).values(recipients=None, sealed=None))
    conn.execute(sa.update(snapshot_t).where(told).values(facts=None))
    return holding
