"""The deadline scanner: reminders to handlers and managers before a deadline and once overdue.

For every unmet deadline of an incident in progress, a reminder is due at each configured offset
before it (``BREACHFLOW_REMINDER_OFFSETS_HOURS``, default 12 and 2 hours) and once it has passed.
A reminder is queued once per deadline and offset, ever: the ``reminder`` table's unique key
holds even when scanners run at once. When several are due at one scan (the scanner was down),
only the most urgent is sent and the rest are marked done.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from breachflow.notifications import facts
from breachflow.notifications.models import outbox_t, reminder_t
from breachflow.notifications.notices import queue_row
from breachflow.notifications.render import MessageKind, render
from breachflow.notifications.texts import VALUES
from breachflow.workflow import queries
from breachflow.workflow.accounts import Role
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.deadlines import Deadline, DeadlineKind
from breachflow.workflow.incident import Incident
from breachflow.workflow.models import user_t
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit

log = logging.getLogger("breachflow.reminders")
ACTOR = "deadline-scanner"
OVERDUE = "overdue"
DEADLINE_NAMES = {
    "nl": {DeadlineKind.school_notice: "school informeren", DeadlineKind.ap_notice: "melding bij de AP",
           DeadlineKind.school_ap_notice: "melding bij de AP door de school"},
    "en": {DeadlineKind.school_notice: "inform the school", DeadlineKind.ap_notice: "notify the AP",
           DeadlineKind.school_ap_notice: "the school notifies the AP"},
}


def due_labels(deadline: Deadline, now: datetime, offsets: list[float]) -> list[str]:
    """The reminder labels due for ``deadline`` at ``now``, most urgent first."""
    if deadline.met_at is not None and deadline.met_at <= now:
        return []
    labels = [OVERDUE] if now > deadline.due_at else []
    labels += [f"{hours:g}h" for hours in sorted(offsets)
               if deadline.due_at - timedelta(hours=hours) <= now <= deadline.due_at]
    return labels


def _staff_addresses(ctx: Context) -> list[str]:
    with read_transaction(ctx.engine) as conn:
        return sorted(conn.execute(
            sa.select(user_t.c.email).where(user_t.c.role.in_([Role.handler.value, Role.manager.value]),
                                            user_t.c.email.is_not(None))
        ).scalars())


def _remaining(due: datetime, now: datetime, language: str) -> str:
    hours = max((due - now) / timedelta(hours=1), 0)
    return f"{hours:.0f} uur" if language == "nl" else f"{hours:.0f} hours"


def scan(ctx: Context, now: datetime) -> int:
    """Queue every reminder due at ``now``; return how many were queued."""
    staff = _staff_addresses(ctx)
    queued = 0
    for incident in queries.get_many(ctx, queries.find_in_progress(ctx)):  # unreadable ones are logged there
        for deadline in queries.deadlines_of(ctx, incident):
            labels = due_labels(deadline, now, ctx.settings.reminder_offsets_hours)
            try:
                if labels and _queue(ctx, incident, deadline, labels, staff, now):
                    queued += 1
            except sa.exc.IntegrityError:  # another scanner queued this reminder first
                continue
            except Exception:  # one incident's failure must not stop the reminders of the others
                log.exception("reminder for %s (%s) failed; the scan goes on", incident.reference, deadline.kind)
    return queued


def _queue(ctx: Context, incident: Incident, deadline: Deadline, labels: list[str], staff: list[str],
           now: datetime) -> bool:
    language = ctx.settings.staff_language
    school = next((s for s in incident.schools if s.school_id == deadline.school_id), None)
    with write_transaction(ctx.engine) as conn:
        unit = Unit.open(conn, ctx, incident.id, ACTOR, system=True, now=now)  # the incident first
        done = set(conn.execute(
            sa.select(reminder_t.c.offset_label).where(
                reminder_t.c.incident_id == incident.id, reminder_t.c.deadline == deadline.kind.value,
                reminder_t.c.school_id == (deadline.school_id or 0))
        ).scalars())
        if labels[0] in done:
            return False
        conn.execute(sa.insert(reminder_t), [
            {"incident_id": incident.id, "deadline": deadline.kind.value, "school_id": deadline.school_id or 0,
             "offset_label": label, "created_at": now} for label in labels if label not in done])
        payload = {"deadline": deadline.kind.value, "school": school.brin if school else None,
                   "offset": labels[0], "due_at": deadline.due_at.isoformat(), "recipients": len(staff)}
        if staff:
            subject, text, html = render(MessageKind.reminder, language, {
                "reference": incident.reference, "deadline": DEADLINE_NAMES[language][deadline.kind],
                "school_name": school.name if school else None, "due": facts.when(deadline.due_at, language),
                "overdue": labels[0] == OVERDUE, "remaining": _remaining(deadline.due_at, now, language),
                "state": VALUES[language].get(incident.state, incident.state),
                "url": f"{ctx.settings.public_url}/api/v1/incidents/{incident.reference}",
            })
            conn.execute(sa.insert(outbox_t), [queue_row(
                ctx.settings, unit.data_key, incident_id=incident.id, school_id=None, kind=MessageKind.reminder,
                reference=incident.reference, recipients=staff, subject=subject, text=text, html=html, now=now)])
        # unsent: no handler or manager has an email address
        unit.record(EventKind.reminder_queued if staff else EventKind.reminder_unsent, payload)
        unit.finish()
    return True
