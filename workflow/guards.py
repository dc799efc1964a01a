"""Guards: for each trigger, what the incident still misses. An empty list means it may fire.

Each guard returns every missing field, never just the first, in words a handler understands;
the same function feeds the machine's condition, the error, and the list of available triggers.
"""

from __future__ import annotations

from collections.abc import Callable

from breachflow.workflow.disclosure import CauseCategory, DataKind, label
from breachflow.workflow.errors import FieldProblem
from breachflow.workflow.incident import ApKind, Incident
from breachflow.workflow.responsibility import Responsibility

Guard = Callable[[Incident], list[FieldProblem]]


def _required(incident: Incident, *fields: str) -> list[FieldProblem]:
    d = incident.disclosure
    return [FieldProblem(f, f"{label(f)} is required") for f in fields if getattr(d, f) in (None, [])]


def _confirmed_true(incident: Incident, *fields: str) -> list[FieldProblem]:
    d = incident.disclosure
    return [FieldProblem(f, f"{label(f)} must be confirmed") for f in fields if getattr(d, f) is not True]


def _characteristics(incident: Incident) -> list[FieldProblem]:
    """Seed 6c-I: discovery, summary, nature."""
    return _required(incident, "discovered_at", "summary", "nature_how", "nature_actions")


def _cause_known(incident: Incident) -> list[FieldProblem]:
    """Seed 6c-II: the cause, categorised so that responsibility is known."""
    problems = _required(incident, "cause_description")
    if incident.disclosure.cause_category in (None, CauseCategory.unknown):
        problems.append(
            FieldProblem("cause_category", "the cause must be categorised (not 'unknown')")
        )
    return problems


def _disclosure_complete(incident: Incident) -> list[FieldProblem]:
    """Seed 6c, I–VI: everything that must be shared about every incident."""
    d = incident.disclosure
    problems = _characteristics(incident) + _cause_known(incident)
    problems += _required(incident, "measures", "affected_groups", "data_kinds")
    if d.group_size_min is None and d.group_size_max is None:
        problems.append(FieldProblem("group_size_min", "the number of people affected is required"))
    if d.data_kinds and DataKind.other in d.data_kinds and not d.data_kinds_other:
        problems.append(FieldProblem("data_kinds_other", "describe the other kinds of data"))
    return problems


def _schools_informed(incident: Incident) -> list[FieldProblem]:
    problems = [
        FieldProblem(f"schools.{s.brin}", f"{s.name} has not been informed (notice or contact)")
        for s in incident.schools
        if s.informed_at is None
    ]
    if incident.responsibility is Responsibility.school:
        problems += [
            FieldProblem(f"schools.{s.brin}", f"{s.name} has not been told it must notify the AP")
            for s in incident.schools
            if s.told_to_notify_ap_at is None
        ]
    return problems


def _ap_form(incident: Incident) -> list[FieldProblem]:
    """What the AP's form asks beyond I–VI."""
    d = incident.disclosure
    problems = _required(incident, "data_unreadable", "subjects_informed")
    if d.subjects_informed is True:
        problems += _required(incident, "subjects_informed_how", "subjects_informed_count")
    if d.subjects_informed is False:
        problems += _required(incident, "subjects_not_informed_reason")
    return problems


def _final_ap_coverage(incident: Incident) -> list[FieldProblem]:
    finals = incident.ap_notifications_in_force(ApKind.final)
    if not finals:
        return [FieldProblem("ap_notifications", "no final AP notification with its reference is recorded")]
    covered = {sid for n in finals for sid in n.school_ids}
    return [
        FieldProblem(f"schools.{s.brin}", f"{s.name} is not covered by a final AP notification")
        for s in incident.schools
        if s.school_id not in covered
    ]


def blocking_actions_settled(incident: Incident) -> list[FieldProblem]:
    """Seed 6a: an incident is closed only once every blocking follow-up action is done or dropped;
    each open one is named (a non-blocking one may stay open after closing)."""
    return [FieldProblem(f"actions.{a.number}", f"blocking follow-up action {a.number} (owner {a.owner}) is still "
                                                 "open: settle it (done or dropped) first")
            for a in incident.open_blocking_actions()]


def dismiss(incident: Incident) -> list[FieldProblem]:
    return _required(incident, "dismissal_reason")


def confirm(incident: Incident) -> list[FieldProblem]:
    problems = _characteristics(incident) + _required(incident, "affected_systems", "cause_category")
    if not incident.schools:
        problems.append(FieldProblem("schools", "at least one affected school is required"))
    return problems


def contained(incident: Incident) -> list[FieldProblem]:
    return _required(incident, "measures")


def remediated(incident: Incident) -> list[FieldProblem]:
    return (
        _cause_known(incident)
        + _required(incident, "fix_description")
        + _confirmed_true(incident, "fix_tested")
        + _required(incident, "data_lost_or_altered")
    )


def restored(incident: Incident) -> list[FieldProblem]:
    return _required(incident, "backup_description") + _confirmed_true(incident, "backup_checked")


def verified(incident: Incident) -> list[FieldProblem]:
    return _confirmed_true(incident, "fix_applied", "system_verified")


def evaluated(incident: Incident) -> list[FieldProblem]:
    return (
        _required(incident, "evaluation")
        + _disclosure_complete(incident)
        + _schools_informed(incident)
    )


def ap_notified(incident: Incident) -> list[FieldProblem]:
    return _final_ap_coverage(incident) + _disclosure_complete(incident) + _ap_form(incident)


def reopen(incident: Incident) -> list[FieldProblem]:
    return _required(incident, "reopen_reason")


def data_lost_or_altered(incident: Incident) -> bool:
    """Branch of ``remediated``: restore from a backup only when data was lost or altered."""
    return incident.disclosure.data_lost_or_altered is True


def processor_responsible(incident: Incident) -> bool:
    """Branch of ``evaluated``: the processor notifies the AP itself (seed 6d)."""
    return incident.responsibility is Responsibility.processor
