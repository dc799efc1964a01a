"""Deadlines as pure functions of an incident, the configured periods and a moment.

* ``school_notice``: the processor informs each affected school (default 24 h from discovery).
* ``ap_notice``: the processor notifies the AP (default 72 h from discovery, GDPR art. 33(1));
  watched while the processor is responsible or responsibility is not yet known. A preliminary
  notification meets it.
* ``school_ap_notice``: a school notifies the AP itself (default 72 h from the processor's first
  notice to it); watched while the school is responsible or responsibility is not yet known.
* ``follow_up``: each follow-up action of the evaluation, due when its owner was given; met when it
  is done, settled (``dropped``) when dropped. An open action's clock runs on after the incident is
  closed or dismissed: it is still work to do, shown and reminded of until it is settled.

A closed incident's notification clocks are settled (``Outcome``): met, met late, left to the school that was
told to notify the AP, or unmet. They leave the open views and stay on the incident and in the
register. A dismissed incident (not a breach) has no clocks.

Periods are elapsed time: 72 hours are 72 real hours, also across a daylight-saving change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from breachflow.workflow.config import Settings
from breachflow.workflow.incident import ActionStatus, ApKind, Incident
from breachflow.workflow.lifecycle import State
from breachflow.workflow.responsibility import Responsibility

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WATCHED_STATES_EXCLUDED = frozenset({State.dismissed})


class DeadlineKind(StrEnum):
    school_notice = "school_notice"
    ap_notice = "ap_notice"
    school_ap_notice = "school_ap_notice"
    follow_up = "follow_up"


class Status(StrEnum):
    ok = "ok"
    due_soon = "due_soon"
    overdue = "overdue"
    met = "met"
    settled = "settled"  # the incident was closed without this clock being met (see ``Outcome``)


class Outcome(StrEnum):
    """How a clock of a closed incident ended."""

    met = "met"
    met_late = "met_late"
    school_told = "school_told"  # the school's own AP clock; the processor told it to notify
    unmet = "unmet"
    dropped = "dropped"  # a follow-up action dropped without being done


@dataclass(frozen=True)
class Periods:
    """The configured deadline periods."""

    school_notice: timedelta = timedelta(hours=24)
    ap_notice: timedelta = timedelta(hours=72)
    school_ap_notice: timedelta = timedelta(hours=72)
    due_soon: timedelta = timedelta(hours=12)
    reminder_offsets: tuple[float, ...] = (12.0, 2.0)  # hours before a deadline that a reminder goes out

    @property
    def reminder_lead(self) -> timedelta:
        """How long before a deadline its first reminder goes out."""
        return timedelta(hours=max(self.reminder_offsets, default=0))

    @classmethod
    def from_settings(cls, settings: Settings) -> Periods:
        return cls(
            school_notice=timedelta(hours=settings.school_notice_hours),
            ap_notice=timedelta(hours=settings.ap_notice_hours),
            school_ap_notice=timedelta(hours=settings.school_ap_notice_hours),
            due_soon=timedelta(hours=settings.due_soon_hours),
            reminder_offsets=tuple(sorted(settings.reminder_offsets_hours, reverse=True)),
        )


@dataclass(frozen=True)
class Deadline:
    """One clock of one incident; ``school_id`` is set for the per-school clocks, ``action_id`` (the
    row) and ``action_number`` for a follow-up action's."""

    kind: DeadlineKind
    due_at: datetime
    met_at: datetime | None = None
    school_id: int | None = None
    outcome: Outcome | None = None  # set once the incident is closed, or a follow-up action dropped
    action_id: int | None = None
    action_number: int | None = None

    def status(self, now: datetime, due_soon: timedelta) -> Status:
        if self.outcome is not None and self.met_at is None:
            return Status.settled
        return status_at(self.due_at, self.met_at, now, due_soon)

    @property
    def is_open(self) -> bool:
        """Whether the clock still runs: neither met nor settled."""
        return self.met_at is None and self.outcome is None

    @property
    def met_late(self) -> bool:
        return self.met_at is not None and self.met_at > self.due_at


def status_at(due_at: datetime, met_at: datetime | None, now: datetime, due_soon: timedelta) -> Status:
    """``met`` once met; else ``overdue`` strictly after ``due_at``; ``due_soon`` within the window."""
    if met_at is not None and met_at <= now:
        return Status.met
    if now > due_at:
        return Status.overdue
    if due_at - now <= due_soon:
        return Status.due_soon
    return Status.ok


def _first(times: list[datetime]) -> datetime | None:
    return min(times) if times else None


def ap_deadline(incident: Incident, periods: Periods) -> Deadline | None:
    """The processor's AP clock, or ``None`` when it does not run."""
    if incident.state in WATCHED_STATES_EXCLUDED or incident.disclosure.discovered_at is None:
        return None
    if incident.responsibility is Responsibility.school:
        return None
    notified = incident.ap_notifications_in_force(ApKind.preliminary, ApKind.final)
    return Deadline(
        DeadlineKind.ap_notice,
        incident.disclosure.discovered_at + periods.ap_notice,
        _first([n.notified_at for n in notified]),
    )


def follow_ups(incident: Incident) -> list[Deadline]:
    """The clock of each follow-up action (see the module's docstring)."""
    return [Deadline(DeadlineKind.follow_up, a.due_at, a.settled_at if a.status is ActionStatus.done else None,
                     outcome=Outcome.dropped if a.status is ActionStatus.dropped else None, action_id=a.id,
                     action_number=a.number)
            for a in incident.actions]


def deadlines(incident: Incident, periods: Periods) -> list[Deadline]:
    """Every clock of ``incident``, soonest first; settled ones once it is closed."""
    return sorted(_notification_clocks(incident, periods) + follow_ups(incident),
                  key=lambda d: (d.due_at, d.kind, d.school_id or 0, d.action_number or 0))


def _notification_clocks(incident: Incident, periods: Periods) -> list[Deadline]:
    discovered = incident.disclosure.discovered_at
    if incident.state in WATCHED_STATES_EXCLUDED or discovered is None:
        return []
    result = [
        Deadline(DeadlineKind.school_notice, discovered + periods.school_notice, s.informed_at, s.school_id)
        for s in incident.schools
    ]
    processor_ap = ap_deadline(incident, periods)
    if processor_ap is not None:
        result.append(processor_ap)
    if incident.responsibility is not Responsibility.processor:
        notified = incident.ap_notifications_in_force(ApKind.preliminary, ApKind.final)
        for school in incident.schools:
            if school.informed_at is None:
                continue
            covering = [n.notified_at for n in notified if school.school_id in n.school_ids]
            result.append(
                Deadline(
                    DeadlineKind.school_ap_notice,
                    school.informed_at + periods.school_ap_notice,
                    _first(covering),
                    school.school_id,
                )
            )
    if incident.state == State.closed:
        result = [replace(d, outcome=_outcome(incident, d)) for d in result]
    return result


def _outcome(incident: Incident, deadline: Deadline) -> Outcome:
    if deadline.met_at is not None:
        return Outcome.met if deadline.met_at <= deadline.due_at else Outcome.met_late
    if deadline.kind is DeadlineKind.school_ap_notice and any(
            s.school_id == deadline.school_id and s.told_to_notify_ap_at is not None for s in incident.schools):
        return Outcome.school_told
    return Outcome.unmet


def local(moment: datetime) -> datetime:
    """A stored UTC time as shown to people: Europe/Amsterdam."""
    return moment.astimezone(AMSTERDAM)
