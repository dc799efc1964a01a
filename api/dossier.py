"""The AP dossier for the API and the page: who may read it, and its answers in words.

Handlers and managers read the dossier of any incident, for any of its schools. A school reads
only its own incident (another's is the same 404 as a missing one), only its own chapter, and only
where it notifies the AP itself (the cause is a user error or negligence at the school): else the
processor notifies, and the school gets 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from breachflow.api import schemas, views
from breachflow.api.errors import Forbidden
from breachflow.api.routes.incidents import seen_by
from breachflow.api.web.render import amsterdam, in_language
from breachflow.notifications.texts import VALUES
from breachflow.workflow import dossier, queries
from breachflow.workflow.accounts import Account
from breachflow.workflow.context import Context
from breachflow.workflow.errors import NotFound
from breachflow.workflow.incident import AffectedSchool, Incident
from breachflow.workflow.responsibility import Responsibility

# answers whose values (or list items) are enum values, said in words
ENUM_ANSWERS = frozenset({"notification.kind", "controller.sector", "nature.nature_actions", "personal_data.data_kinds",
                          "personal_data.special_categories", "people.affected_groups", "consequences.severity",
                          "follow_up.high_risk"})
NONE = ("geen", "none")
NOT_YET = {"timeline.notified_at": ("nog niet gemeld", "not notified yet"),
           "timeline.delay_reason": ("geen vertraging", "no delay")}
MISSING = ("nog te verzamelen", "still to collect")


def school_for(account: Account, incident: Incident, brin: str | None, language: str) -> AffectedSchool | None:
    """The affected school whose dossier ``account`` asks for (``brin``, or the only one or its own);
    a refusal is worded in ``language``."""
    if not views.is_school(account):
        return dossier.school_of(incident, brin)
    if brin is not None and brin.strip().upper() != account.school_brin:
        raise NotFound(f"incident {incident.reference} does not exist")  # another school's part: as if absent
    if incident.responsibility is not Responsibility.school:
        raise Forbidden(in_language(language, (
            "De verwerker meldt dit datalek bij de AP (de oorzaak ligt niet bij de school); het AP-dossier is van "
            "de verwerker."), "The processor notifies the AP of this breach (its cause is not at the school); the "
                               "AP dossier is the processor's."))
    return next(s for s in incident.schools if s.school_id == account.school_id)


def load(ctx: Context, account: Account, reference: str, brin: str | None, *, language: str,
         now: datetime) -> tuple[Incident, dossier.Dossier]:
    """The incident and its dossier as ``account`` may read it."""
    incident = seen_by(account, queries.get(ctx, reference))
    affected = school_for(account, incident, brin, language)
    return incident, dossier.read(ctx, incident, affected, now=now, language=language)


def load_or_choose(ctx: Context, account: Account, reference: str, brin: str | None, *, language: str,
                   now: datetime) -> tuple[Incident, dossier.Dossier | None]:
    """As ``load``, but a staff member who names no school of an incident with several gets no
    dossier (``None``) but the incident, to choose."""
    incident = seen_by(account, queries.get(ctx, reference))
    if brin is None and not views.is_school(account) and len(incident.schools) > 1:
        return incident, None
    affected = school_for(account, incident, brin, language)
    return incident, dossier.read(ctx, incident, affected, now=now, language=language)


def _word(value: Any, language: str) -> str:
    return VALUES[language].get(value, value) if isinstance(value, str) else str(value)


def words(answer: dossier.Answer, language: str) -> str:
    """An answer's value as a person reads it, in ``language``."""
    value, pick = answer.value, lambda pair: in_language(language, *pair)
    if answer.mark is dossier.Mark.missing:
        return pick(MISSING)
    if value is None or value == []:
        return pick(NOT_YET.get(answer.key, NONE))
    return _text(answer.key, value, language)


def _text(key: str, value: Any, language: str) -> str:
    if isinstance(value, bool):
        return VALUES[language][value]
    if isinstance(value, datetime):
        return amsterdam(value, with_zone=True)
    if isinstance(value, list):
        return "; ".join(_text(key, item, language) for item in value)
    if isinstance(value, dict):
        return _dict_text(value, language)
    return _word(value, language) if key in ENUM_ANSWERS else str(value)


def _dict_text(value: dict[str, Any], language: str) -> str:
    if "ap_reference" in value:  # an earlier notification
        return f"{_word(value['kind'], language)} {value['ap_reference']} ({amsterdam(value['notified_at'], True)})"
    if "consequences" in value:  # a group and what it may suffer
        return f"{_word(value['group'], language)} ({_word(value['severity'], language)}): {value['consequences']}"
    if "min" in value:  # a count
        low, high = value["min"], value["max"]
        return str(low if low == high or high is None else f"{'?' if low is None else low} – {high}")
    if "informed" in value:  # the school's record of informing the people affected
        said = VALUES[language][bool(value["informed"])]
        if value["informed"]:
            said += f", {amsterdam(value['at'], True)} ({_word(value['via'], language)})"
            said += f", {value['count']}" if value.get("count") is not None else ""
        return said + (f": {value['note']}" if value.get("note") else "")
    if "confidentiality" in value:
        return "; ".join(f"{_word(k, language)}: {VALUES[language][bool(v)]}" for k, v in value.items())
    return ", ".join(str(v) for v in value.values() if v)  # the contact person: name, phone, email


def answer_out(answer: dossier.Answer, language: str) -> schemas.DossierAnswerOut:
    return schemas.DossierAnswerOut(key=answer.key, label=answer.label, value=answer.value,
                                    text=words(answer, language), mark=answer.mark.value,
                                    derived_from=answer.derived_from)


def dossier_out(found: dossier.Dossier) -> schemas.DossierOut:
    """The dossier for the API (and the page): every answer with its words."""
    language = found.language
    return schemas.DossierOut(
        reference=found.reference, state=found.state, school=found.brin, school_name=found.school_name,
        responsibility=found.responsibility.value, language=language,
        still_to_collect=[answer_out(a, language) for a in found.still_to_collect],
        chapters=[schemas.DossierChapterOut(key=c.key, title=c.title,
                                            answers=[answer_out(a, language) for a in c.answers])
                  for c in found.chapters],
    )
