"""What a notice says about an incident (seed 6c, I–VI), in the school's language.

A field that is not known yet reads "nog in onderzoek" / "still under investigation".
``facts`` is also the snapshot kept per school, so an update can say what changed since.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from breachflow.notifications.texts import LABELS, UNKNOWN, VALUES
from breachflow.workflow.deadlines import Periods, ap_deadline, local
from breachflow.workflow.disclosure import cia
from breachflow.workflow.incident import AffectedSchool, Incident


def when(moment: datetime | None, language: str) -> str | None:
    if moment is None:
        return None
    shown = local(moment)
    return f"{shown:%d-%m-%Y %H:%M} ({shown.tzname()})" if language == "nl" else f"{shown:%Y-%m-%d %H:%M} ({shown.tzname()})"


def word(value: object, language: str) -> str:
    """A code (a state, a kind of data…) or yes/no in words, in ``language``."""
    return VALUES[language].get(value, str(value)) if isinstance(value, (str, bool)) else str(value)


def words(values: list | None, language: str) -> str | None:
    """Codes in words, joined; ``None`` for none."""
    return ", ".join(word(getattr(v, "value", v), language) for v in values) if values else None


ACTION_STATUS = {"nl": {"open": "open", "done": "gedaan", "dropped": "vervallen"},
                 "en": {"open": "open", "done": "done", "dropped": "dropped"}}


def actions(incident: Incident, language: str) -> list[dict[str, str]]:
    """The follow-up actions as a notice lists them: number, description, owner, due (Amsterdam
    time) and status, in words."""
    return [{"number": str(a.number), "description": a.description, "owner": a.owner,
             "due": when(a.due_at, language) or "", "status": ACTION_STATUS[language][a.status.value]}
            for a in incident.actions]


def facts(incident: Incident, school: AffectedSchool, language: str) -> dict[str, str]:
    """Label → text for everything a notice shares; unknown fields say so."""
    d = incident.disclosure
    groups = None
    if d.affected_groups:
        groups = "; ".join(
            f"{word(g.group.value, language)} ({word(g.severity.value, language)}): {g.consequences}"
            for g in d.affected_groups
        )
    size = None
    if d.group_size_min is not None or d.group_size_max is not None:
        low, high = d.group_size_min, d.group_size_max
        size = str(low if low == high or high is None else f"{low or 0}–{high}")
    if school.affected_count is not None:
        own = f"{school.affected_count} bij {school.name}" if language == "nl" else f"{school.affected_count} at {school.name}"
        size = f"{size} ({own})" if size else own
    values = {
        "state": word(incident.state, language),
        "discovered_at": when(d.discovered_at, language),
        "summary": d.summary,
        "security_aspect": d.security_aspect,
        "nature_how": d.nature_how,
        "nature_actions": words(d.nature_actions, language),
        "affected_systems": words(d.affected_systems, language),
        "cause_category": word(d.cause_category.value, language) if d.cause_category else None,
        "cause_description": d.cause_description,
        "measures": d.measures,
        "affected_groups": groups,
        "group_size": size,
        "records_count": str(d.records_count) if d.records_count is not None else None,
        "data_kinds": words(d.data_kinds, language),
        "data_kinds_other": d.data_kinds_other,
    }
    return {LABELS[language][key]: value or UNKNOWN[language] for key, value in values.items()}


def ap_form(incident: Incident, language: str) -> dict[str, str]:
    """The fields of the AP's notification form, prefilled for a school that must notify."""
    d = incident.disclosure
    impact = cia(d.nature_actions)
    labels = {
        "nl": ("Begin van het lek", "Einde van het lek", "Vertrouwelijkheid geschonden", "Integriteit geschonden",
               "Beschikbaarheid geschonden", "Gegevens versleuteld of onleesbaar", "Betrokkenen geïnformeerd"),
        "en": ("Breach started", "Breach ended", "Confidentiality affected", "Integrity affected",
               "Availability affected", "Data encrypted or unreadable", "People affected informed"),
    }[language]
    values = (when(d.breach_started_at, language), when(d.breach_ended_at, language),
              word(impact["confidentiality"], language), word(impact["integrity"], language),
              word(impact["availability"], language),
              word(d.data_unreadable, language) if d.data_unreadable is not None else None,
              word(d.subjects_informed, language) if d.subjects_informed is not None else None)
    return {label: value or UNKNOWN[language] for label, value in zip(labels, values, strict=True)}


def deadlines(incident: Incident, periods: Periods, notified_at: datetime, language: str,
              *, school: AffectedSchool | None = None) -> dict[str, str | bool | None]:
    """The AP deadline the processor keeps and the school's own, as dates and times in a notice.

    The school's own clock runs from the processor's first notice to it (``informed_at``, as in
    ``workflow.deadlines``), so a later notice repeats that date; a school not informed yet is
    informed by this notice, sent at ``notified_at``. ``school_since`` is when its clock started
    (``None``: with this notice) and ``school_overdue`` whether it ended before this notice.
    Without ``school``, the earliest first notice among the incident's schools counts.
    """
    processor = ap_deadline(incident, periods)
    informed = (school.informed_at if school is not None
                else min((s.informed_at for s in incident.schools if s.informed_at is not None), default=None))
    school_due = (informed or notified_at) + periods.school_ap_notice
    return {
        "ap_due": when(processor.due_at, language) if processor else None,
        "school_due": when(school_due, language),
        "school_since": when(informed, language),
        "school_overdue": school_due < notified_at,
        "school_hours": f"{periods.school_ap_notice / timedelta(hours=1):g}",
    }


def changes(before: dict[str, str], after: dict[str, str]) -> list[dict[str, str]]:
    """What differs between the last notice's facts and now."""
    return [{"label": label, "old": before.get(label, ""), "new": value}
            for label, value in after.items() if before.get(label) != value]
