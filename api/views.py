"""What each role may see of an incident: the engine's objects turned into response models.

A school sees what ``workflow.visibility`` lets a school see (only itself among the affected schools,
not the reporter's details, of the timeline only what concerns it); handlers and managers see
everything.
"""

from __future__ import annotations

from datetime import datetime

from breachflow.api import schemas
from breachflow.workflow import lifecycle, visibility
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.deadlines import Deadline, DeadlineKind, Periods, Status, deadlines, local
from breachflow.workflow.disclosure import cia
from breachflow.workflow.incident import Action, AffectedSchool, ApKind, Incident
from breachflow.workflow.informing import high_risk
from breachflow.workflow.queries import Entry, OpenDeadline
from breachflow.workflow.register import History

URGENCY = [Status.overdue, Status.due_soon, Status.ok, Status.settled]


def is_school(account: Account) -> bool:
    return account.role is Role.school


def own_brin(account: Account) -> str:
    """A school user's BRIN code: every school user belongs to a school."""
    if account.school_brin is None:
        raise TypeError(f"school user {account.username} has no school")
    return account.school_brin


def can_see(account: Account, incident: Incident) -> bool:
    """Whether ``account`` may know that ``incident`` exists."""
    return not is_school(account) or visibility.affects(incident, account.school_id)


def _visible_schools(account: Account, incident: Incident) -> list[AffectedSchool]:
    return visibility.own_schools(incident, account.school_id) if is_school(account) else incident.schools


def visible_deadlines(account: Account, incident: Incident, periods: Periods) -> list[Deadline]:
    """The clocks ``account`` sees: a school its own and the processor's AP clock, not the processor's
    follow-up actions (it reads those in the incident and the closing notice)."""
    if not is_school(account):
        return deadlines(incident, periods)
    own = {s.school_id for s in _visible_schools(account, incident)}
    return [d for d in deadlines(incident, periods)
            if d.kind is not DeadlineKind.follow_up and (d.school_id is None or d.school_id in own)]


def deadline_out(d: Deadline, now: datetime, periods: Periods, *, reference: str, school: str | None,
                 moved_at: datetime | None, moved_by: str | None, owner: str | None = None) -> schemas.DeadlineOut:
    """One deadline for the API."""
    return schemas.DeadlineOut(
        reference=reference, kind=d.kind.value, school=school, action=d.action_number, owner=owner, due_at=d.due_at,
        due_at_local=f"{local(d.due_at):%Y-%m-%d %H:%M %Z}", status=d.status(now, periods.due_soon).value,
        met_at=d.met_at, met_late=d.met_late, outcome=d.outcome.value if d.outcome else None,
        clock_moved_at=moved_at, clock_moved_by=moved_by,
    )


def incident_deadlines_out(account: Account, incident: Incident, now: datetime,
                           periods: Periods) -> list[schemas.DeadlineOut]:
    """The incident's clocks that ``account`` sees, settled ones included."""
    brins: dict[int | None, str] = {s.school_id: s.brin for s in incident.schools}
    owners: dict[int | None, str] = {a.id: a.owner for a in incident.actions}
    return [deadline_out(d, now, periods, reference=incident.reference, school=brins.get(d.school_id),
                         moved_at=incident.clock_moved_at, moved_by=incident.clock_moved_by,
                         owner=owners.get(d.action_id))
            for d in visible_deadlines(account, incident, periods)]


def action_out(action: Action) -> schemas.ActionOut:
    """One follow-up action for the API."""
    return schemas.ActionOut(
        number=action.number, description=action.description, owner=action.owner, due_at=action.due_at,
        due_at_local=f"{local(action.due_at):%Y-%m-%d %H:%M %Z}", blocking=action.blocking,
        status=action.status.value, created_at=action.created_at, created_by=action.created_by,
        settled_at=action.settled_at, settled_by=action.settled_by)


def open_deadline_out(o: OpenDeadline, now: datetime, periods: Periods) -> schemas.DeadlineOut:
    """A deadline of the deadlines view."""
    return deadline_out(o.deadline, now, periods, reference=o.reference, school=o.brin,
                        moved_at=o.clock_moved_at, moved_by=o.clock_moved_by, owner=o.owner)


def deadline_status(account: Account, incident: Incident, now: datetime, periods: Periods) -> str | None:
    """The most urgent status among the incident's clocks (``met`` when all are met; ``settled``
    when it was closed with one unmet). ``queries.incident_page`` filters by the same rule."""
    statuses = {d.status(now, periods.due_soon) for d in visible_deadlines(account, incident, periods)}
    if not statuses:
        return None
    return next((s.value for s in URGENCY if s in statuses), Status.met.value)


def incident_out(account: Account, incident: Incident, now: datetime, periods: Periods) -> schemas.IncidentOut:
    schools = _visible_schools(account, incident)
    brins = {s.school_id: s.brin for s in incident.schools}
    disclosure = incident.disclosure
    if is_school(account):
        disclosure = visibility.disclosure_for_school(disclosure)
    visible_ids = {s.school_id for s in schools}
    return schemas.IncidentOut(
        reference=incident.reference, state=incident.state, version=incident.version, source=incident.source,
        reported_at=incident.reported_at, responsibility=incident.responsibility.value, disclosure=disclosure,
        impact=cia(incident.disclosure.nature_actions),
        schools=[schemas.AffectedSchoolOut(
            brin=s.brin, name=s.name, affected_count=s.affected_count, informed_at=s.informed_at,
            informed_via=s.informed_via, told_to_notify_ap_at=s.told_to_notify_ap_at,
            acknowledged_at=s.acknowledged_at, people_informed=_people_out(s)) for s in schools],
        ap_notifications=[
            schemas.ApNotificationOut(kind=n.kind, ap_reference=n.ap_reference, notified_at=n.notified_at,
                                      schools=[brins[i] for i in n.school_ids if i in visible_ids])
            for n in incident.ap_notifications
            if not is_school(account) or visible_ids & set(n.school_ids)
        ],
        deadlines=incident_deadlines_out(account, incident, now, periods),
        high_risk=high_risk(incident.disclosure),
        actions=[action_out(a) for a in incident.actions],
    )


def _people_out(school: AffectedSchool) -> schemas.PeopleInformedOut | None:
    p = school.people
    return None if p is None else schemas.PeopleInformedOut(
        informed=p.informed, at=p.at, via=p.via, count=p.count, note=p.note, recorded_at=p.recorded_at)


def summary_out(account: Account, incident: Incident, now: datetime, periods: Periods) -> schemas.IncidentSummary:
    return schemas.IncidentSummary(
        reference=incident.reference, state=incident.state, version=incident.version,
        responsibility=incident.responsibility.value, reported_at=incident.reported_at,
        discovered_at=incident.disclosure.discovered_at, summary=incident.disclosure.summary,
        schools=[s.brin for s in _visible_schools(account, incident)],
        deadline_status=deadline_status(account, incident, now, periods),
    )


def timeline_out(account: Account, entries: list[Entry]) -> list[schemas.TimelineEntryOut]:
    """The timeline as ``account`` may read it."""
    result = []
    for e in entries:
        if is_school(account):
            shown, details = visibility.event_for_school(e.kind, e.payload, own_brin(account))
            if not shown:
                continue
        else:
            details = e.payload
        result.append(schemas.TimelineEntryOut(seq=e.seq, at=e.at, actor=e.actor, kind=e.kind,
                                               from_state=e.from_state, to_state=e.to_state,
                                               details=details, hash=e.hash))
    return result


def triggers_out(incident: Incident) -> list[schemas.TriggerOut]:
    result = []
    for trigger, missing in lifecycle.available(incident).items():
        result.append(schemas.TriggerOut(
            trigger=trigger, ready=not missing,
            destination=None if missing else lifecycle.destination(incident, trigger),
            missing=[schemas.FieldProblemOut(field=m.field, problem=m.problem) for m in missing],
        ))
    return result


def register_entry(account: Account, incident: Incident, history: History, now: datetime,
                   periods: Periods) -> schemas.RegisterEntry:
    """One row of the breach register.

    A school reads the reopenings and the dismissal of its own incidents with their reasons (the
    incident is its own, as in ``incident_out``), and only the late AP notifications that cover it,
    naming only itself.
    """
    d = incident.disclosure
    notified = incident.ap_notifications_in_force(ApKind.preliminary, ApKind.final)
    visible_ids = {s.school_id for s in _visible_schools(account, incident)}
    brins = {s.school_id: s.brin for s in incident.schools}
    return schemas.RegisterEntry(
        reference=incident.reference, state=incident.state, source=incident.source,
        reported_at=incident.reported_at, discovered_at=d.discovered_at, summary=d.summary,
        responsibility=incident.responsibility.value,
        cause_category=d.cause_category.value if d.cause_category else None,
        nature_actions=[a.value for a in d.nature_actions or ()], data_kinds=[k.value for k in d.data_kinds or ()],
        group_size_min=d.group_size_min, group_size_max=d.group_size_max, records_count=d.records_count,
        schools=[s.brin for s in _visible_schools(account, incident)],
        ap_references=sorted({n.ap_reference for n in incident.ap_notifications}) if not is_school(account) else [],
        first_ap_notification_at=min((n.notified_at for n in notified), default=None),
        reopen_count=len(history.reopenings),
        reopenings=[schemas.ReopeningOut(at=r.at, from_state=r.from_state, reason=r.reason)
                    for r in history.reopenings],
        dismissed_at=history.dismissed_at, dismissal_reason=history.dismissal_reason,
        ap_delays=[
            schemas.ApDelayOut(kind=a.kind, ap_reference=a.ap_reference, notified_at=a.notified_at,
                               schools=[brins[i] for i in a.school_ids if i in visible_ids], delay_reason=a.reason)
            for a in history.ap_delays
            if not is_school(account) or visible_ids & set(a.school_ids)
        ],
        deadlines=incident_deadlines_out(account, incident, now, periods),
    )
