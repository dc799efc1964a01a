"""The deadline scanner: reminders to handlers and managers before a deadline and once overdue.

For every unmet deadline of an incident in progress, a reminder is due at each configured offset
before it (``BREACHFLOW_REMINDER_OFFSETS_HOURS``, default 12 and 2 hours) and once it has passed.
A reminder is queued once per deadline, due time and offset (a follow-up action's deadline is
``follow_up:<number>``, so each action is reminded of on its own, naming its number and owner): the ``reminder`` table's unique key
holds even when scanners run at once, and a deadline moved by a correction is reminded of anew. When several are due at one scan (the scanner was down),
only the most urgent is sent and the rest are marked done. Each open ``deadline`` row says when
the scanner should next look at it (``next_look_at``: set by the command that creates or moves
the clock, moved on by the scanner), so a scan reads only what is due.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from breachflow.notifications import facts
from breachflow.notifications.models import outbox_t, reminder_t
from breachflow.notifications.notices import queue_row
from breachflow.notifications.render import MessageKind, render
from breachflow.notifications.texts import VALUES
from breachflow.workflow.accounts import Role
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.deadlines import Deadline, DeadlineKind
from breachflow.workflow.errors import DataDestroyed
from breachflow.workflow.models import action_t, deadline_t, user_t
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit
from breachflow.workflow.validation import EMAIL

log = logging.getLogger("breachflow.reminders")
ACTOR = "deadline-scanner"
OVERDUE = "overdue"
OVERDUE_AFTER = timedelta(microseconds=1)  # overdue is strictly after the due time
BATCH = 1000  # incidents per query for the reminders already sent
DEADLINE_NAMES = {
    "nl": {DeadlineKind.school_notice: "school informeren", DeadlineKind.ap_notice: "melding bij de AP",
           DeadlineKind.school_ap_notice: "melding bij de AP door de school", DeadlineKind.follow_up: "vervolgactie"},
    "en": {DeadlineKind.school_notice: "inform the school", DeadlineKind.ap_notice: "notify the AP",
           DeadlineKind.school_ap_notice: "the school notifies the AP", DeadlineKind.follow_up: "follow-up action"},
}
ACTION_NAME = {"nl": "vervolgactie {number} (eigenaar: {owner})", "en": "follow-up action {number} (owner: {owner})"}


def deadline_name(kind: DeadlineKind, language: str, *, number: int | None = None, owner: str | None = None) -> str:
    """A deadline in words; a follow-up action's names its number and owner."""
    if kind is DeadlineKind.follow_up and number is not None:
        return ACTION_NAME[language].format(number=number, owner=owner)
    return DEADLINE_NAMES[language][kind]


def due_labels(deadline: Deadline, now: datetime, offsets: list[float]) -> list[str]:
    """The reminder labels due for ``deadline`` at ``now``, most urgent first."""
    if deadline.met_at is not None and deadline.met_at <= now:
        return []
    labels = [OVERDUE] if now > deadline.due_at else []
    labels += [f"{hours:g}h" for hours in sorted(offsets)
               if deadline.due_at - timedelta(hours=hours) <= now <= deadline.due_at]
    return labels


def staff_addresses(ctx: Context) -> list[str]:
    """The addresses of the handlers and managers, to whom reminders go (one stored before addresses
    had to be bare ASCII is left out: no mail header can carry it)."""
    with read_transaction(ctx.engine) as conn:
        return sorted(address for address in conn.execute(
            sa.select(user_t.c.email).where(user_t.c.role.in_([Role.handler.value, Role.manager.value]),
                                            user_t.c.email.is_not(None))
        ).scalars() if EMAIL.fullmatch(address))


def _remaining(due: datetime, now: datetime, language: str) -> str:
    hours = max((due - now) / timedelta(hours=1), 0)
    return f"{hours:.0f} uur" if language == "nl" else f"{hours:.0f} hours"


def labelled(label: str, due_at: datetime) -> str:
    """A reminder's key in the ``reminder`` table: its offset and the due time it was for."""
    return f"{label}@{due_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def _done(stored: set[str], due_at: datetime) -> set[str]:
    """The labels already sent for ``due_at`` among a deadline's stored reminders (a bare label, from
    before reminders named their due time, counts for any)."""
    suffix = labelled("", due_at)
    return {label.removesuffix(suffix) for label in stored if label.endswith(suffix) or "@" not in label}


def next_look(due_at: datetime, done: set[str], offsets: list[float]) -> datetime | None:
    """When the reminder after the latest one in ``done`` falls due (``None``: the overdue one was
    sent). Earlier reminders than one already sent are never sent any more."""
    moments = [(due_at - timedelta(hours=hours), f"{hours:g}h") for hours in sorted(offsets, reverse=True)]
    moments.append((due_at + OVERDUE_AFTER, OVERDUE))
    after = max((n + 1 for n, (_, label) in enumerate(moments) if label in done), default=0)
    return moments[after][0] if after < len(moments) else None


_DUE = (
    sa.select(deadline_t.c.id, deadline_t.c.incident_id, deadline_t.c.kind, deadline_t.c.school_id,
              deadline_t.c.due_at, action_t.c.number, action_t.c.owner)
    .outerjoin(action_t, action_t.c.id == deadline_t.c.action_id)
    .where(deadline_t.c.next_look_at <= sa.bindparam("now"), deadline_t.c.kind.in_([k.value for k in DeadlineKind]))
    .order_by(deadline_t.c.next_look_at, deadline_t.c.id)
)
_SENT = sa.select(reminder_t.c.incident_id, reminder_t.c.deadline, reminder_t.c.school_id,
                  reminder_t.c.offset_label).where(reminder_t.c.incident_id.in_(sa.bindparam("ids", expanding=True)))
_STILL_DUE = sa.select(deadline_t.c.id).where(
    deadline_t.c.id == sa.bindparam("b_id"), deadline_t.c.due_at == sa.bindparam("b_due"), deadline_t.c.is_open == sa.true())
_LOOK_AGAIN = sa.update(deadline_t).where(
    deadline_t.c.id == sa.bindparam("b_id"), deadline_t.c.due_at == sa.bindparam("b_due"),
    deadline_t.c.is_open == sa.true()).values(next_look_at=sa.bindparam("b_next"))


def _key(row: Any) -> tuple[int, str, int]:
    """A deadline's key in the ``reminder`` table: a follow-up action's deadline names its number."""
    deadline = f"{row.kind}:{row.number}" if row.kind == DeadlineKind.follow_up else row.kind
    return row.incident_id, deadline, row.school_id or 0


def scan(ctx: Context, now: datetime) -> int:
    """Queue every reminder due at ``now``; return how many were queued.

    One indexed query finds the deadlines whose next reminder is due (``deadline.next_look_at``);
    when there are none, the scan writes nothing. Each reminder is queued in its own transaction
    with its incident locked; a deadline whose reminders were all sent already only moves its
    ``next_look_at`` on, all of them in one transaction.
    """
    with read_transaction(ctx.engine) as conn:
        due = conn.execute(_DUE, {"now": now}).all()
        if not due:
            return 0
        sent: dict[tuple[int, str, int], set[str]] = {}
        for batch in range(0, len(due), BATCH):
            ids = sorted({r.incident_id for r in due[batch:batch + BATCH]})
            for r in conn.execute(_SENT, {"ids": ids}):
                sent.setdefault((r.incident_id, r.deadline, r.school_id), set()).add(r.offset_label)
    offsets = ctx.settings.reminder_offsets_hours
    staff, queued, moved = None, 0, []
    for row in due:
        done = _done(sent.get(_key(row), set()), row.due_at)
        labels = due_labels(Deadline(DeadlineKind(row.kind), row.due_at, school_id=row.school_id), now, offsets)
        if not labels or labels[0] in done:  # nothing new: look again when the next one falls due
            moved.append({"b_id": row.id, "b_due": row.due_at, "b_next": next_look(row.due_at, done | set(labels),
                                                                                     offsets)})
            continue
        staff = staff_addresses(ctx) if staff is None else staff
        try:
            if _queue(ctx, row, labels, staff, now):
                queued += 1
        except sa.exc.IntegrityError:  # another scanner queued this reminder first
            continue
        except DataDestroyed:  # retention destroyed the incident's key: no reminder can be sealed, stop looking
            log.info("incident #%s's personal data was destroyed: its %s clock is no longer reminded of",
                     row.incident_id, row.kind)
            moved.append({"b_id": row.id, "b_due": row.due_at, "b_next": None})
        except Exception:  # one incident's failure must not stop the reminders of the others
            log.exception("reminder for incident #%s (%s) failed; the scan goes on", row.incident_id, row.kind)
    if moved:
        with write_transaction(ctx.engine) as conn:
            conn.execute(_LOOK_AGAIN, moved)
    return queued


def _queue(ctx: Context, row: Any, labels: list[str], staff: list[str], now: datetime) -> bool:
    language = ctx.settings.staff_language
    with write_transaction(ctx.engine) as conn:
        unit = Unit.open(conn, ctx, row.incident_id, ACTOR, system=True, now=now)  # the incident first
        if conn.execute(_STILL_DUE, {"b_id": row.id, "b_due": row.due_at}).first() is None:
            return False  # a command moved or met it since the scan looked
        incident = unit.incident
        key = _key(row)
        done = _done(set(conn.execute(
            sa.select(reminder_t.c.offset_label).where(
                reminder_t.c.incident_id == key[0], reminder_t.c.deadline == key[1], reminder_t.c.school_id == key[2])
        ).scalars()), row.due_at)
        conn.execute(_LOOK_AGAIN, {"b_id": row.id, "b_due": row.due_at,
                                   "b_next": next_look(row.due_at, done | set(labels), ctx.settings.reminder_offsets_hours)})
        if labels[0] in done:
            return False
        conn.execute(sa.insert(reminder_t), [
            {"incident_id": key[0], "deadline": key[1], "school_id": key[2],
             "offset_label": labelled(label, row.due_at), "created_at": now}
            for label in labels if label not in done])
        kind = DeadlineKind(row.kind)
        school = next((s for s in incident.schools if s.school_id == row.school_id), None)
        payload = {"deadline": kind.value, "school": school.brin if school else None, "action": row.number,
                   "offset": labels[0], "due_at": row.due_at.isoformat(), "recipients": len(staff)}
        if staff:
            subject, text, html = render(MessageKind.reminder, language, {
                "reference": incident.reference,
                "deadline": deadline_name(kind, language, number=row.number, owner=row.owner),
                "school_name": school.name if school else None, "due": facts.when(row.due_at, language),
                "overdue": labels[0] == OVERDUE, "remaining": _remaining(row.due_at, now, language),
                "state": VALUES[language].get(incident.state, incident.state),
                "url": f"{ctx.settings.public_url}/api/v1/incidents/{incident.reference}",
            })
            conn.execute(sa.insert(outbox_t), [queue_row(
                ctx.settings, (unit.data_key_id, unit.data_key), incident_id=incident.id, school_id=None, kind=MessageKind.reminder,
                reference=incident.reference, recipients=staff, subject=subject, text=text, html=html, now=now,
                language=language)])
        # unsent: no handler or manager has an email address
        unit.record(EventKind.reminder_queued if staff else EventKind.reminder_unsent, payload)
        unit.finish()
    return True
