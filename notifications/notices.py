"""The notices a command calls for, written into the outbox inside that command's transaction.

- ``confirm``: the first notice to every affected school (the school-responsible notice when the
  cause already points at the school); a school added to a confirmed incident gets its first
  notice at once;
- ``contained``, ``remediated``, ``verified`` and a handler's request: an update saying what
  changed since the last notice to that school; ``remediated`` with a school-caused breach sends
  the school-responsible notice instead;
- reaching ``closed``: the closing notice with the evaluation.
A school that never had a notice gets a first notice whatever the occasion; one that had a notice
gets an update when an incident is confirmed again after a reopen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from notifications import facts as fact_texts
from notifications.render import MessageKind, mime, new_message_id, render
from workflow import crypto
from workflow.config import Settings
from workflow.deadlines import Periods
from workflow.hooks import SCHOOLS_ADDED, Change, Note
from workflow.incident import AffectedSchool, Incident
from workflow.models import affected_t, data_key_t, outbox_t, school_t
from workflow.responsibility import Responsibility

UPDATE_TRIGGERS = frozenset({"contained", "remediated", "verified"})


def occasion(change: Change) -> MessageKind | None:
    """Which notice a change calls for, before looking at each school."""
    after = change.after
    if change.trigger is None:
        return MessageKind.update
    if after.state == "closed":
        return MessageKind.closing
    if change.trigger in ("confirm", SCHOOLS_ADDED):
        return MessageKind.initial
    if change.trigger == "remediated" and after.responsibility is Responsibility.school:
        return MessageKind.school_responsible
    if change.trigger in UPDATE_TRIGGERS:
        return MessageKind.update
    return None


@dataclass(frozen=True)
class _School:
    affected: AffectedSchool
    language: str
    contacts: list[str]
    snapshot: dict[str, str] | None


class NoticeWriter:
    """The ``Notifier`` that queues notices to schools (see the module's docstring)."""

    def __init__(self, settings: Settings, keys: crypto.KeyRing, periods: Periods) -> None:
        self.settings, self.keys, self.periods = settings, keys, periods

    def after_change(self, conn: Connection, change: Change) -> list[Note]:
        kind = occasion(change)
        if kind is None:
            return []
        incident = change.after
        schools = self._schools(conn, incident, change.data_key)
        if kind is MessageKind.update:  # updates go to schools that had a first notice
            schools = [s for s in schools if s.snapshot is not None]
        if change.trigger == SCHOOLS_ADDED:  # only the newcomers
            schools = [s for s in schools if s.snapshot is None]
        rows, snapshots, queued = [], [], []
        for school in schools:
            school_kind = kind
            if school.snapshot is None and kind is not MessageKind.closing:
                school_kind = (MessageKind.school_responsible if incident.responsibility is Responsibility.school
                               else MessageKind.initial)
            elif school.snapshot is not None and kind is MessageKind.initial:  # confirmed again after a reopen
                school_kind = MessageKind.update
            row, now_facts = self._message(incident, school, school_kind, change)
            rows.append(row)
            snapshots.append({"b_incident": incident.id, "b_school": school.affected.school_id,
                              "notice_snapshot": crypto.seal(change.data_key, now_facts)})
            queued.append({"school": school.affected.brin, "kind": school_kind.value,
                           "message_id": row["message_id"]})
        if not rows:
            return []
        conn.execute(sa.insert(outbox_t), rows)
        conn.execute(
            sa.update(affected_t).where(affected_t.c.incident_id == sa.bindparam("b_incident"),
                                        affected_t.c.school_id == sa.bindparam("b_school")),
            snapshots,
        )
        return [Note("notices_queued", {"messages": queued})]

    def _schools(self, conn: Connection, incident: Incident, data_key: bytes) -> list[_School]:
        rows = conn.execute(
            sa.select(affected_t.c.school_id, affected_t.c.notice_snapshot, school_t.c.language,
                      school_t.c.contacts, data_key_t.c.wrapped)
            .join(school_t, school_t.c.id == affected_t.c.school_id)
            .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
            .where(affected_t.c.incident_id == incident.id)
        ).all()
        by_id = {s.school_id: s for s in incident.schools}
        return [
            _School(
                by_id[r.school_id], r.language,
                crypto.open_sealed(self.keys.unwrap(r.wrapped), r.contacts),
                crypto.open_sealed(data_key, r.notice_snapshot) if r.notice_snapshot is not None else None,
            )
            for r in rows if r.school_id in by_id
        ]

    def _message(self, incident: Incident, school: _School, kind: MessageKind,
                 change: Change) -> tuple[dict[str, Any], dict[str, str]]:
        language = school.language
        now_facts = fact_texts.facts(incident, school.affected, language)
        variables = {
            "reference": incident.reference,
            "school_name": school.affected.name,
            "facts": now_facts,
            "changes": fact_texts.changes(school.snapshot or {}, now_facts) if school.snapshot else [],
            "message": change.message,
            "responsibility": incident.responsibility.value,
            "ap_form": fact_texts.ap_form(incident, language),
            "evaluation": incident.disclosure.evaluation or "",
            "contact": self.settings.processor_contact,
            "handler": change.actor,
            "acknowledge_url": f"{self.settings.public_url}/api/v1/incidents/{incident.reference}/acknowledgements",
            **fact_texts.deadlines(incident, self.periods, change.now, language),
        }
        subject, text, html = render(kind, language, variables)
        return queue_row(
            self.settings, change.data_key, incident_id=incident.id, school_id=school.affected.school_id,
            kind=kind, reference=incident.reference, recipients=school.contacts,
            subject=subject, text=text, html=html, now=change.now,
        ), now_facts


def queue_row(settings: Settings, data_key: bytes, *, incident_id: int, school_id: int | None, kind: MessageKind,
              reference: str, recipients: list[str], subject: str, text: str, html: str,
              now: datetime) -> dict[str, Any]:
    """An outbox row: the serialised message and its recipients, sealed with the incident's key."""
    message_id = new_message_id(reference, settings.mail_from)
    message = mime(sender=settings.mail_from, recipients=recipients, subject=subject, text=text, html=html,
                   message_id=message_id, date=now)
    return {
        "incident_id": incident_id, "school_id": school_id, "kind": kind.value, "message_id": message_id,
        "recipients": crypto.seal(data_key, recipients), "sealed": crypto.seal_bytes(data_key, message),
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
    }
