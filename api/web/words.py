"""Values in words for the pages: disclosure values and deadlines with a countdown, in the visitor's language."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from breachflow.api.schemas import DeadlineOut
from breachflow.api.web.render import amsterdam, in_language
from breachflow.notifications.texts import VALUES
from breachflow.workflow.deadlines import Status
from breachflow.workflow.disclosure import AffectedGroup


def shown(value: Any, language: str) -> str:
    """A disclosure value in words: times in Amsterdam time, enum values and yes/no in ``language``."""
    words = VALUES[language]
    if isinstance(value, datetime):
        return amsterdam(value, with_zone=True)
    if isinstance(value, bool):
        return words[value]
    if isinstance(value, list):
        return ", ".join(shown(v, language) for v in value)
    if isinstance(value, AffectedGroup):
        return f"{words[value.group.value]} ({words[value.severity.value]}): {value.consequences}"
    text = str(getattr(value, "value", value))
    return words.get(text, text)


def countdown(due_at: datetime, now: datetime, language: str) -> str:
    """The time left until ``due_at`` (or past it) as people say it: ``nog 5 u 12 min``, ``3 u 40 min te laat``;
    whole days once it is two days or more."""
    left = due_at - now
    minutes = int(abs(left) // timedelta(minutes=1))
    days, hours, minutes = minutes // (24 * 60), minutes // 60 % 24, minutes % 60
    if days >= 2:
        span = in_language(language, f"{days} d {hours} u", f"{days} d {hours} h")
    else:
        span = in_language(language, f"{days * 24 + hours} u {minutes} min", f"{days * 24 + hours} h {minutes} min")
    if left >= timedelta(0):
        return in_language(language, f"nog {span}", f"{span} left")
    return in_language(language, f"{span} te laat", f"{span} overdue")


def deadline_words(deadline: DeadlineOut, *, now: datetime, language: str) -> str:
    """Where a deadline stands: met, settled, or the time left (or how late it is) as a countdown."""
    if deadline.status == Status.met:
        late = in_language(language, " (te laat)", " (late)") if deadline.met_late else ""
        return in_language(language, "gehaald", "met") + late
    if deadline.status == Status.settled:
        return in_language(language, "afgesloten zonder melding", "closed without a notification")
    return countdown(deadline.due_at, now, language)
