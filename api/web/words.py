"""Values in words for the school's pages (link, portal): disclosure values and deadlines with a
countdown, in the visitor's language."""

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


def span(length: timedelta, language: str) -> str:
    """A length of time as people say it: ``2 d 5 u`` / ``2 d 5 h``, ``3 u 20 min``, ``45 min``."""
    minutes = max(0, int(length.total_seconds() // 60))
    days, hours, minutes = minutes // (24 * 60), minutes // 60 % 24, minutes % 60
    hour = in_language(language, "u", "h")
    if days:
        return f"{days} d {hours} {hour}"
    return f"{hours} {hour} {minutes} min" if hours else f"{minutes} min"


def deadline_words(deadline: DeadlineOut, *, now: datetime, language: str) -> str:
    """Where a deadline stands: met, settled, or the time left (or how late it is) as a countdown."""
    if deadline.status == Status.met:
        late = in_language(language, " (te laat)", " (late)") if deadline.met_late else ""
        return in_language(language, "gehaald", "met") + late
    if deadline.status == Status.settled:
        return in_language(language, "afgesloten zonder melding", "closed without a notification")
    left = deadline.due_at - now
    if left < timedelta(0):
        return in_language(language, f"{span(-left, language)} te laat", f"{span(-left, language)} overdue")
    return in_language(language, f"nog {span(left, language)}", f"{span(left, language)} left")
