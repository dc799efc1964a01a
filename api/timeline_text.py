"""The timeline in words, for a person at a terminal: what each event did, field changes old → new,
every time in Amsterdam time (``render.when``), never a Python repr."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from breachflow.api.render import value_text, when
from breachflow.workflow.disclosure import TEXT_FIELDS, TIME_FIELDS, AffectedGroup, label
from breachflow.workflow.queries import Entry
from breachflow.workflow.timeline import EventKind

INDENT = " " * 6
MESSAGES = {"initial": "first notice", "update": "update", "school_responsible": "notice that the school must notify "
            "the AP itself", "closing": "closing notice", "reminder": "reminder"}


def entry_text(entry: Entry) -> str:
    """One event: its number, time and actor, what happened, then one line per change."""
    head = f"{entry.seq:>3}  {when(entry.at)}  {entry.actor}  "
    if entry.payload is None:
        return head + f"{entry.kind} [personal data destroyed]"
    headline, details = SAYS.get(entry.kind, _other)(entry, entry.payload)
    return "\n".join([head + headline, *(INDENT + line for line in details)])


def field_value(name: str, value: Any) -> str:
    """A disclosure field's value as the timeline stores it (JSON), in words."""
    if value is None or value == []:
        return "—"
    if name in TIME_FIELDS:
        return when(datetime.fromisoformat(value))
    if name in TEXT_FIELDS:
        return f'"{value}"'
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "; ".join(value_text(AffectedGroup.model_validate(v)) for v in value)
    return value_text(value)


def _time(text: str | None) -> str:
    return when(datetime.fromisoformat(text)) if text else "—"


def _changes(payload: dict[str, Any]) -> list[str]:
    lines = [f"{label(name)}: {field_value(name, old)} → {field_value(name, new)}"
             for name, (old, new) in (payload.get("changes") or {}).items()]
    for brin, (old, new) in (payload.get("schools") or {}).items():
        if old == "affected":
            lines.append(f"school {brin} removed")
        elif old is None:
            lines.append(f"school {brin} added, {_count(new)}")
        else:
            lines.append(f"school {brin}: {_count(old)} → {_count(new)}")
    return lines


def _count(count: int | None) -> str:
    return "number affected unknown" if count is None else f"{count} affected"


def _because(payload: dict[str, Any]) -> str:
    return f" (reason: {payload['reason']})" if payload.get("reason") else ""


def _reported(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    return f"reported as {p.get('reference')} (source: {p.get('source')})", _changes(p)


def _updated(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    return "updated" + _because(p), _changes(p)


def _transition(e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    return f"{p.get('trigger')}: {e.from_state} → {e.to_state}" + _because(p), _changes(p)


def _note(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    return f'note: "{p.get("text")}"', []


def _contact(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    told = ["told that the school must notify the AP itself"] if p.get("told_must_notify_ap") else []
    return f'contact with {p.get("school")} by {p.get("channel")} at {_time(p.get("at"))}: "{p.get("summary")}"', told


def _ap_notification(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    late = [f'late, because: "{p["delay_reason"]}"'] if p.get("delay_reason") else (["late"] if p.get("late") else [])
    return (f"AP notification ({p.get('kind')}) {p.get('ap_reference')} at {_time(p.get('notified_at'))}, "
            f"covering {', '.join(p.get('schools') or []) or '—'}"), late


def _acknowledged(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    comment = f': "{p["comment"]}"' if p.get("comment") else ""
    return f"{p.get('school')} acknowledged the notice{comment}", []


def _notice_requested(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    message = f': "{p["message"]}"' if p.get("message") else ""
    return f"update notice requested{message}", []


def _message(m: dict[str, Any]) -> str:
    to = f" to {m['school']}" if m.get("school") else " to staff"
    return MESSAGES.get(m.get("kind"), str(m.get("kind"))) + to


def _messages(headline: str, line: Callable[[dict[str, Any]], str]) -> Callable[[Entry, dict], tuple[str, list[str]]]:
    def words(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
        items = p.get("messages") or []
        return f"{headline} ({len(items)})", [line(m) for m in items]
    return words


def _refused(m: dict[str, Any]) -> str:
    return "".join(f"; {address} refused: {answer}" for address, answer in (m.get("refused") or {}).items())


def _requeued(_e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    return f"{len(p.get('messages') or [])} dead letter(s) queued again", []


def _reminder(e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    school = f" of {p['school']}" if p.get("school") else ""
    moment = "overdue" if p.get("offset") == "overdue" else f"{p.get('offset')} before"
    sent = (f"to {p.get('recipients')} handler(s) and manager(s)" if e.kind == EventKind.reminder_queued
            else "not sent: no handler or manager has an email address")
    return f"reminder, {moment}: deadline {p.get('deadline')}{school} due {_time(p.get('due_at'))}, {sent}", []


def _other(e: Entry, p: dict[str, Any]) -> tuple[str, list[str]]:
    return e.kind, [f"{key}: {value_text(value)}" for key, value in p.items() if value not in (None, {}, [], False)]


SAYS: dict[str, Callable[[Entry, dict[str, Any]], tuple[str, list[str]]]] = {
    EventKind.reported: _reported,
    EventKind.updated: _updated,
    EventKind.transition: _transition,
    EventKind.note: _note,
    EventKind.contact: _contact,
    EventKind.ap_notification: _ap_notification,
    EventKind.acknowledged: _acknowledged,
    EventKind.notice_requested: _notice_requested,
    EventKind.notices_queued: _messages("notices queued", _message),
    EventKind.notices_sent: _messages("notices sent", lambda m: f"{_message(m)}, attempt {m.get('attempt')}{_refused(m)}"),
    EventKind.notices_failed: _messages("notices failed, to be tried again", lambda m: (
        f"{_message(m)}, attempt {m.get('attempt')}: {m.get('error')}; next try {_time(m.get('next_attempt_at'))}")),
    EventKind.notices_dead: _messages("notices given up (dead letters)", lambda m: (
        f"{_message(m)}, attempt {m.get('attempt')}: {m.get('error')}")),
    EventKind.notices_requeued: _requeued,
    EventKind.reminder_queued: _reminder,
    EventKind.reminder_unsent: _reminder,
}
