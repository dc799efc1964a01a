"""Informing the people affected (GDPR art. 34) on the pages: when the breach is likely a high risk
to them, the draft message for them in every language (the reader's first); the school's record of
whether and how it informed them; and the record form read back into the command's arguments, under
the same bounds as the API's request (``schemas.PeopleInformedIn``)."""

from __future__ import annotations

from typing import Any

from breachflow.api import schemas
from breachflow.api.web.forms import NO, YES, checked, typed_time, whole_number
from breachflow.notifications.facts import word
from breachflow.notifications.people import drafts
from breachflow.workflow.config import Settings
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.incident import AffectedSchool, Incident, InformedVia
from breachflow.workflow.informing import high_risk

FIELDS = ("informed", "at", "via", "count", "note")  # the record form's inputs


def section(incident: Incident, school: AffectedSchool | None, language: str, settings: Settings) -> dict[str, Any]:
    """What a page shows of informing the people affected at ``school`` (its own part of ``incident``)."""
    reasons = high_risk(incident.disclosure)
    shown = drafts(incident, school_name=school.name, first=language, contact=settings.processor_contact,
                   processor=settings.processor_name) if reasons and school is not None else []
    return {"reasons": [r.value for r in reasons], "drafts": shown, "record": school.people if school else None,
            "vias": [v.value for v in InformedVia], "via_words": {v.value: word(v.value, language) for v in InformedVia}}


def parsed(raw: dict[str, list[str]]) -> dict[str, Any]:
    """The record form as ``service.record_people_informed``'s arguments; ``InvalidInput`` names each
    field it refuses."""
    typed = {name: (raw.get(name) or [""])[0].strip() for name in FIELDS}
    problems = []
    if typed["informed"] not in (YES, NO):
        problems.append(FieldProblem("informed", "choose yes or no"))
    at = typed_time(typed["at"])
    if isinstance(at, str):
        problems.append(FieldProblem("at", "give a date and time"))
    count = whole_number(typed["count"]) if typed["count"] else None
    if typed["count"] and count is None:
        problems.append(FieldProblem("count", "give a whole number, 0 or more"))
    if problems:
        raise InvalidInput("invalid input", problems)
    given = checked(schemas.PeopleInformedIn, {
        "informed": typed["informed"] == YES, "at": at, "via": typed["via"] or None, "count": count,
        "note": typed["note"] or None})
    return {"informed": given.informed, "at": given.at, "via": given.via.value if given.via else None,
            "count": given.count, "note": given.note}
