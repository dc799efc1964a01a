"""Reports from outside the handlers' desk: the public form for third parties and the school portal.

Both register a ``reported`` incident through ``service.report``; this module says what each may
give. A third party names no school by its BRIN code (a lookup would tell which schools are
customers): what it says about a school stays in the summary, for a handler to read.
"""

from __future__ import annotations

import re
from typing import Any

from breachflow.workflow import service
from breachflow.workflow.context import Context
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.incident import Incident
from breachflow.workflow.validation import EMAIL

PUBLIC_ACTOR = "public-form"
NAME_LENGTH, CONTACT_LENGTH, SCHOOL_LENGTH = 200, 200, 200
WHAT_LENGTH = 5_000
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")


def _text(value: str | None, name: str, most: int, problems: list[FieldProblem], *, required: bool) -> str | None:
    text = (value or "").strip()
    if "\x00" in text:
        problems.append(FieldProblem(name, "must not contain NUL characters"))
    elif len(text) > most:
        problems.append(FieldProblem(name, f"at most {most} characters (this is {len(text)})"))
    elif required and not text:
        problems.append(FieldProblem(name, "is required"))
    return text or None


def public_report(ctx: Context, *, name: str | None, contact: str | None, what: str | None,
                  school: str | None = None) -> Incident:
    """A third party's report (name, an email address or phone number, what happened and, if it
    says, which school): a ``reported`` incident without schools."""
    problems: list[FieldProblem] = []
    name = _text(name, "name", NAME_LENGTH, problems, required=True)
    contact = _text(contact, "contact", CONTACT_LENGTH, problems, required=True)
    what = _text(what, "what", WHAT_LENGTH, problems, required=True)
    school = _text(school, "school", SCHOOL_LENGTH, problems, required=False)
    if contact and not (EMAIL.match(contact) or PHONE.match(contact)):
        problems.append(FieldProblem("contact", "give an email address or a phone number"))
    if problems:
        raise InvalidInput("invalid report", problems)
    summary = f"{what}\n\nSchool (according to the reporter): {school}" if school else what
    return service.report(ctx, actor=PUBLIC_ACTOR, source="third_party",
                          fields={"summary": summary, "reporter_name": name, "reporter_contact": contact})


SCHOOL_FIELDS = ("summary", "discovered_at", "nature_how", "reporter_name", "reporter_contact")


def school_report(ctx: Context, *, actor: str, brin: str, fields: dict[str, Any],
                  affected_count: int | None = None) -> Incident:
    """A school's report about itself: what happened (required), when it was discovered, how,
    who reports it and how many people are affected at that school."""
    unknown = [FieldProblem(f, "a school does not give this field when reporting") for f in fields
               if f not in SCHOOL_FIELDS]
    if not (fields.get("summary") or "").strip():
        unknown.append(FieldProblem("summary", "is required"))
    if unknown:
        raise InvalidInput("invalid report", unknown)
    return service.report(ctx, actor=actor, source="school", fields=fields, schools={brin: affected_count})
