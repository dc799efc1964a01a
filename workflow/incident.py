"""The incident as the engine reasons about it: decrypted, with its schools and AP notifications.

Guards, deadlines and the service read these plain dataclasses; storage builds them from rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.responsibility import Responsibility, responsibility_for


class ApKind(StrEnum):
    """Kinds of notification to the AP."""

    preliminary = "preliminary"
    final = "final"
    supplement = "supplement"
    withdrawal = "withdrawal"


class ContactChannel(StrEnum):
    phone = "phone"
    email = "email"


class InformedVia(StrEnum):
    """How a school told the people affected by a breach (GDPR art. 34)."""

    letter = "letter"
    email = "email"
    school_portal = "school_portal"  # a message in the school's own portal or app
    in_person = "in_person"
    phone = "phone"
    other = "other"


@dataclass(frozen=True)
class PeopleInformed:
    """A school's record of whether and how it told the people affected (GDPR art. 34).

    ``at`` and ``via`` only when ``informed``; ``note`` says how, or why not (sealed with the
    school's data key: ``None`` once retention destroyed it)."""

    informed: bool
    recorded_at: datetime
    at: datetime | None = None
    via: InformedVia | None = None
    count: int | None = None
    note: str | None = None


@dataclass
class AffectedSchool:
    """A school (a controller of its own) affected by an incident."""

    school_id: int
    brin: str
    name: str
    affected_count: int | None = None
    informed_at: datetime | None = None
    informed_via: str | None = None
    told_to_notify_ap_at: datetime | None = None
    acknowledged_at: datetime | None = None
    people: PeopleInformed | None = None  # whether the school told the people affected; None: not recorded
    destroyed_at: datetime | None = None  # retention destroyed this school's part: the school no longer sees it


@dataclass
class ApNotification:
    """One notification to the AP as recorded by a handler."""

    kind: ApKind
    ap_reference: str
    notified_at: datetime
    school_ids: list[int]


class ActionStatus(StrEnum):
    """Where a follow-up action stands."""

    open = "open"
    done = "done"
    dropped = "dropped"


@dataclass
class Action:
    """A follow-up action that came out of the evaluation: what (decrypted), who, by when, and whether
    ``closed`` waits for it (``blocking``); numbered 1, 2, … within its incident."""

    id: int
    number: int
    description: str
    owner: str
    due_at: datetime
    blocking: bool
    status: ActionStatus = ActionStatus.open
    created_at: datetime | None = None
    created_by: str | None = None
    settled_at: datetime | None = None
    settled_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is ActionStatus.open


@dataclass
class Incident:
    """One incident with everything the guards and deadlines look at."""

    id: int
    reference: str
    state: str
    version: int
    source: str
    reported_at: datetime
    disclosure: Disclosure
    schools: list[AffectedSchool] = field(default_factory=list)
    ap_notifications: list[ApNotification] = field(default_factory=list)
    confirmed_at: datetime | None = None  # first confirmed as a breach; stays through a reopening
    clock_moved_at: datetime | None = None  # the last correction of a fact that drives the deadlines
    clock_moved_by: str | None = None
    actions: list[Action] = field(default_factory=list)  # follow-up actions, by number

    @property
    def responsibility(self) -> Responsibility:
        return responsibility_for(self.disclosure.cause_category)

    def open_blocking_actions(self) -> list[Action]:
        """The blocking follow-up actions still open: ``closed`` waits for them."""
        return [a for a in self.actions if a.blocking and a.is_open]

    def withdrawn_references(self) -> set[str]:
        """AP references that a later withdrawal took back."""
        return {n.ap_reference for n in self.ap_notifications if n.kind is ApKind.withdrawal}

    def ap_notifications_in_force(self, *kinds: ApKind) -> list[ApNotification]:
        """Notifications of the given kinds whose reference was not withdrawn."""
        withdrawn = self.withdrawn_references()
        return [
            n for n in self.ap_notifications if n.kind in kinds and n.ap_reference not in withdrawn
        ]
