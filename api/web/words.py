"""Values in words for the pages: disclosure values and deadlines with a countdown, in the visitor's language."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from breachflow.api.render import Words
from breachflow.api.schemas import DeadlineOut
from breachflow.api.web.render import amsterdam, in_language
from breachflow.workflow.deadlines import Status


def reader(language: str, *, zone: bool = False) -> Words:
    """How a page puts values into words for a reader of ``language``: times in Amsterdam time
    (with the zone's name when ``zone``), codes in words."""
    return Words(language, time=partial(amsterdam, with_zone=zone))


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
