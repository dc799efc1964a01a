"""The lifecycle: the one definition of states and transitions, and the machine built from it.

``STEPS`` is plain data. The transitions ``Machine`` (built once per process) is the one authority
on which triggers are valid, which branch is taken and whether a guard passes; the diagram in
``diagrams/``, the API's trigger list and the page's buttons all read the same data. A trigger
with two destinations is two steps, in order, with complementary branch conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from typing import cast

from transitions import EventData, Machine, MachineError

from breachflow.workflow import guards
from breachflow.workflow.errors import FieldProblem, GuardFailed, TriggerNotAllowed
from breachflow.workflow.incident import Incident


class State(StrEnum):
    """Where an incident stands (seed 6a)."""

    reported = "reported"
    triage = "triage"
    dismissed = "dismissed"
    containment = "containment"
    remediation = "remediation"
    backup_restore = "backup_restore"
    verification = "verification"
    evaluation = "evaluation"
    ap_notification = "ap_notification"
    closed = "closed"


class Trigger(StrEnum):
    """What a handler fires to move an incident on."""

    begin_triage = "begin_triage"
    dismiss = "dismiss"
    confirm = "confirm"
    contained = "contained"
    remediated = "remediated"
    restored = "restored"
    verified = "verified"
    evaluated = "evaluated"
    ap_notified = "ap_notified"
    reopen = "reopen"


INITIAL_STATE = State.reported
FINAL_STATES = frozenset({State.dismissed, State.closed})
NOT_YET_CONFIRMED = frozenset({State.reported, State.triage, State.dismissed})
Branch = Callable[[Incident], bool]


@dataclass(frozen=True)
class Step:
    """One transition: ``trigger`` moves ``sources`` → ``dest`` when ``guard`` finds nothing missing."""

    trigger: Trigger
    sources: tuple[State, ...]
    dest: State
    help: str
    guard: guards.Guard | None = None
    when: Branch | None = None  # branch: take this step only if it holds
    unless: Branch | None = None  # branch: take this step only if it fails

    @property
    def guarded(self) -> bool:
        return self.guard is not None

    @property
    def branch(self) -> Branch | None:
        return self.when or self.unless


def _closing(step: Step) -> Step:
    """``step``, and if it leads to ``closed``, guarded also by the blocking follow-up actions: no
    way into ``closed`` passes an open one."""
    if step.dest is not State.closed:
        return step
    own = step.guard

    def guard(incident: Incident) -> list[FieldProblem]:
        return (own(incident) if own else []) + guards.blocking_actions_settled(incident)

    guard.__name__ = f"{own.__name__ if own else 'closing'}_and_blocking_actions_settled"
    return replace(step, guard=guard)


S, T = State, Trigger
STEPS: tuple[Step, ...] = tuple(_closing(step) for step in (
    Step(T.begin_triage, (S.reported,), S.triage, "start analysing the report"),
    Step(T.dismiss, (S.triage,), S.dismissed, "not a breach; it stays in the register", guards.dismiss),
    Step(T.confirm, (S.triage,), S.containment, "it is a breach: contain it", guards.confirm),
    Step(T.contained, (S.containment,), S.remediation, "it no longer spreads", guards.contained),
    Step(T.remediated, (S.remediation,), S.backup_restore,
         "the cause is fixed and tested; data was lost or altered", guards.remediated,
         when=guards.data_lost_or_altered),
    Step(T.remediated, (S.remediation,), S.verification,
         "the cause is fixed and tested; no data was lost or altered", guards.remediated,
         unless=guards.data_lost_or_altered),
    Step(T.restored, (S.backup_restore,), S.verification, "data restored from a checked backup", guards.restored),
    Step(T.verified, (S.verification,), S.evaluation, "the fix is applied and the system works", guards.verified),
    Step(T.evaluated, (S.evaluation,), S.ap_notification, "evaluated; the processor notifies the AP",
         guards.evaluated, when=guards.processor_responsible),
    Step(T.evaluated, (S.evaluation,), S.closed, "evaluated; the school notifies the AP",
         guards.evaluated, unless=guards.processor_responsible),
    Step(T.ap_notified, (S.ap_notification,), S.closed, "the final AP notification is recorded", guards.ap_notified),
    Step(T.reopen, (S.dismissed, S.closed), S.triage, "look at it again", guards.reopen),
))
GUARDS: dict[Trigger, guards.Guard] = {s.trigger: s.guard for s in STEPS if s.guard is not None}


def guard_name(trigger: str) -> str:
    """The name a guard carries in the diagram."""
    return f"has_{trigger}_fields"


def transition_dict(step: Step, guard: object, branch: object) -> dict[str, object]:
    """A step as the transitions library wants it, with the given guard and branch conditions."""
    result: dict[str, object] = {
        "trigger": step.trigger.value, "source": [s.value for s in step.sources], "dest": step.dest.value,
    }
    # a ``when`` branch is tested before the guard, so a guard runs once however the branch goes
    conditions = ([branch] if step.when else []) + ([guard] if step.guarded else [])
    if conditions:
        result["conditions"] = conditions
    if step.unless:
        result["unless"] = [branch]
    return result


class _Subject:
    """What the shared machine moves: a state and the incident its conditions read."""

    __slots__ = ("state", "incident")

    def __init__(self, incident: Incident) -> None:
        self.state = incident.state
        self.incident = incident


def _condition(name: str, test: Callable[[Incident], bool]) -> Callable[[EventData], bool]:
    def holds(event: EventData) -> bool:
        return test(cast(_Subject, event.model).incident)

    holds.__name__ = name
    return holds


def _passes(guard: guards.Guard) -> Callable[[Incident], bool]:
    """Whether ``guard`` finds nothing missing."""
    return lambda incident: not guard(incident)


@cache
def machine() -> Machine:
    """The process's one machine, built from ``STEPS`` on first use."""
    transitions = [
        transition_dict(
            step,
            _condition(guard_name(step.trigger), _passes(step.guard)) if step.guard else None,
            _condition(step.branch.__name__, step.branch) if step.branch else None,
        )
        for step in STEPS
    ]
    return Machine(model=None, states=[s.value for s in State], transitions=transitions,
                   initial=INITIAL_STATE.value, auto_transitions=False, send_event=True)


def triggers_from(state: str) -> list[Trigger]:
    """The triggers valid in ``state``, in definition order (as the machine knows them)."""
    valid = set(machine().get_triggers(state))
    return [t for t in Trigger if t.value in valid]


def _taken(step: Step, incident: Incident) -> bool:
    return (step.when is None or step.when(incident)) and (step.unless is None or not step.unless(incident))


def missing(incident: Incident, trigger: str) -> list[FieldProblem]:
    """What ``trigger`` still misses on ``incident`` (empty: it may fire), on the branch it would take."""
    step = next((s for s in STEPS if s.trigger == trigger and _taken(s, incident)), None)
    return step.guard(incident) if step and step.guard else []


def available(incident: Incident) -> dict[Trigger, list[FieldProblem]]:
    """Every trigger valid in the incident's state, with what each still misses."""
    return {trigger: missing(incident, trigger) for trigger in triggers_from(incident.state)}


def advance(incident: Incident, trigger: str) -> State:
    """Fire ``trigger`` through the machine; return the new state or raise why it cannot.

    The machine decides validity, branch and guard; the guard's list of missing fields is only
    computed to explain a refusal.
    """
    subject = _Subject(incident)
    try:
        moved = machine().events[trigger].trigger(subject)
    except (KeyError, MachineError):
        raise TriggerNotAllowed(trigger, incident.state, triggers_from(incident.state)) from None
    if not moved:
        raise GuardFailed(trigger, missing(incident, trigger))
    return State(subject.state)


def destination(incident: Incident, trigger: str) -> State:
    """Where ``trigger`` would take the incident now, branches resolved (nothing is stored)."""
    return advance(incident, trigger)
