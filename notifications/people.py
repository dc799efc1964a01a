"""The draft of the message a school sends to the people affected by a breach (GDPR art. 34).

breachflow writes it from the incident's facts, in plain language (B1: short sentences, no jargon),
in Dutch and English: what happened, which data, what was done, what the people can do (advice per
kind of data), and whom to ask. A fact not known yet is left out, never shown as a placeholder.
Templates: ``templates/people/<lang>/draft.j2`` with blocks ``subject``, ``text`` and ``html``
(escaped), the advice in ``_advice.j2``; the school adapts the draft and sends it itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from breachflow.notifications.facts import word
from breachflow.notifications.texts import LANGUAGES
from breachflow.templates import loader
from breachflow.workflow.deadlines import local
from breachflow.workflow.disclosure import Action, DataKind
from breachflow.workflow.incident import Incident

MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
AND = {"nl": "en", "en": "and"}
NAMED_KINDS = (DataKind.contact, DataKind.learning_performance, DataKind.citizen_service_number,
               DataKind.financial, DataKind.access_identification)  # the kinds a draft names in words


@dataclass(frozen=True)
class Draft:
    """The draft in one language: a subject, plain text and HTML (escaped)."""

    language: str
    subject: str
    text: str
    html: Markup


def day(moment: datetime | None, language: str) -> str | None:
    """The day of ``moment`` as people write it: ``3 maart 2026`` / ``3 March 2026`` (Amsterdam)."""
    if moment is None:
        return None
    shown = local(moment)
    return f"{shown.day} {MONTHS[language][shown.month - 1]} {shown.year}"


def joined(items: list[str], language: str) -> str | None:
    """``a, b and c``; ``None`` for no items."""
    if not items:
        return None
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {AND[language]} {items[-1]}"


def facts(incident: Incident, language: str) -> dict[str, Any]:
    """What the draft says about ``incident``: only what is known, in words of ``language``."""
    d = incident.disclosure
    kinds = set(d.data_kinds or ())
    special = [word(c.value, language) for c in d.special_categories or ()]
    data = [word(k.value, language) for k in NAMED_KINDS if k in kinds]
    if DataKind.other in kinds and d.data_kinds_other:
        data.append(d.data_kinds_other)
    return {
        "discovered": day(d.discovered_at, language),
        "summary": d.summary,
        "actions": joined([word(a.value, language) for a in Action if a in (d.nature_actions or ())], language),
        "data": data,
        "special": joined(special, language),
        "special_kind": DataKind.special_categories in kinds or bool(special),
        "unreadable": d.data_unreadable is True,
        "measures": d.measures,
        "advice": {k.value for k in kinds} | ({DataKind.special_categories.value} if special else set()),
    }


@cache
def _environment(html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(loader=loader("people"), autoescape=html, undefined=StrictUndefined,
                                trim_blocks=True, lstrip_blocks=True)


def _block(html: bool, language: str, block: str, variables: dict[str, Any]) -> str:
    environment = _environment(html)
    template = environment.get_template(f"{language}/draft.j2")
    parts = environment.get_template(f"{language}/_advice.j2").module
    return "".join(template.blocks[block](template.new_context(variables | {"parts": parts}))).strip()


def draft(incident: Incident, *, school_name: str, language: str, contact: str | None,
          processor: str | None = None) -> Draft:
    """The draft for the people affected at ``school_name``, in ``language``. ``contact``: how to
    reach the processor (``Settings.processor_contact``), ``processor``: its name, if known."""
    variables = facts(incident, language) | {"school_name": school_name, "contact": contact, "processor": processor}
    subject = " ".join(_block(False, language, "subject", variables).split())
    return Draft(language, subject, _block(False, language, "text", variables) + "\n",
                 Markup(_block(True, language, "html", variables)))  # noqa: S704 rendered with autoescape


def drafts(incident: Incident, *, school_name: str, first: str, contact: str | None,
           processor: str | None = None) -> list[Draft]:
    """The draft in every language, ``first`` (the reader's) first."""
    order = sorted(LANGUAGES, key=lambda language: language != first)
    return [draft(incident, school_name=school_name, language=language, contact=contact, processor=processor)
            for language in order]
