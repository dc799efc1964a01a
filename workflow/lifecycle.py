"""The lifecycle: the one definition of states and transitions, and the machine built from it.

``STEPS`` is plain data. The transitions ``Machine`` (built once per process), the guards'
wiring, the diagram in ``diagrams/``, the API's trigger list and the page's buttons all read it.
A trigger with two destinations is two steps, in order, with complementary branch conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from transitions import EventData, Machine

from workflow.errors import FieldProblem, GuardFailed, TriggerNotAllowed
from workflow.guards import BRANCHES, GUARDS
from workflow.incident import Incident

STATES: tuple[str, ...] = (
    "reported",
    "triage",
    "dismissed",
    "containment",
    "remediation",
    "backup_restore",
    "verification",
    "evaluation",
    "ap_notification",
    "closed",
)
INITIAL_STATE = "reported"
FINAL_STATES = frozenset({"dismissed", "closed"})


@dataclass(frozen=True)
class Step:
    """One transition: ``trigger`` moves ``sources`` → ``dest`` when its guard passes."""

    trigger: str
    sources: tuple[str, ...]
    dest: str
    help: str
    when: str | None = None  # branch: take this step only if BRANCHES[when] holds
    unless: str | None = None  # branch: take this step only if BRANCHES[unless] fails

    @property
    def guarded(self) -> bool:
        return self.trigger in GUARDS


STEPS: tuple[Step, ...] = (
    Step("begin_triage", ("reported",), "triage", "start analysing the report"),
    Step("dismiss", ("triage",), "dismissed", "not a breach; it stays in the register"),
    Step("confirm", ("triage",), "containment", "it is a breach: contain it"),
    Step("contained", ("containment",), "remediation", "it no longer spreads"),
    Step(
        "remediated",
        ("remediation",),
        "backup_restore",
        "the cause is fixed and tested; data was lost or altered",
        when="data_lost_or_altered",
    ),
    Step(
        "remediated",
        ("remediation",),
        "verification",
        "the cause is fixed and tested; no data was lost or altered",
        unless="data_lost_or_altered",
    ),
    Step("restored", ("backup_restore",), "verification", "data restored from a checked backup"),
    Step("verified", ("verification",), "evaluation", "the fix is applied and the system works"),
    Step(
        "evaluated",
        ("evaluation",),
        "ap_notification",
        "evaluated; the processor notifies the AP",
        when="processor_responsible",
    ),
    Step(
        "evaluated",
        ("evaluation",),
        "closed",
        "evaluated; the school notifies the AP",
        unless="processor_responsible",
    ),
    Step("ap_notified", ("ap_notification",), "closed", "the final AP notification is recorded"),
    Step("reopen", ("dismissed", "closed"), "triage", "look at it again"),
)
TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(step.trigger for step in STEPS))


def guard_name(trigger: str) -> str:
    """The name a guard carries in the diagram."""
    return f"has_{trigger}_fields"


def transition_dicts(step: Step, guard: object, branch: object) -> dict[str, object]:
    """A step as the transitions library wants it, with the given guard and branch callables."""
    conditions = [guard] if step.guarded else []
    unless = []
    if step.when:
        conditions.append(branch)
    if step.unless:
        unless.append(branch)
    result: dict[str, object] = {
        "trigger": step.trigger,
        "source": list(step.sources),
        "dest": step.dest,
    }
    if conditions:
        result["conditions"] = conditions
    if unless:
        result["unless"] = unless
    return result


class _Subject:
    """What the shared machine moves: a state and the incident its conditions read."""

    __slots__ = ("state", "incident")

    def __init__(self, incident: Incident) -> None:
        self.state = incident.state
        self.incident = incident


def _guard_condition(trigger: str):
    guard = GUARDS[trigger]

    def passes(event: EventData) -> bool:
        return not guard(event.model.incident)

    passes.__name__ = guard_name(trigger)
    return passes


def _branch_condition(name: str):
    predicate = BRANCHES[name]

    def holds(event: EventData) -> bool:
        return predicate(event.model.incident)

    holds.__name__ = name
    return holds


@cache
def machine() -> Machine:
    """The process's one machine, built from ``STEPS`` on first use."""
    transitions = [
        transition_dicts(
            step,
            _guard_condition(step.trigger) if step.guarded else None,
            _branch_condition(step.when or step.unless) if (step.when or step.unless) else None,
        )
        for step in STEPS
    ]
    return Machine(
        model=None,
        states=list(STATES),
        transitions=transitions,
        initial=INITIAL_STATE,
        auto_transitions=False,
        send_event=True,
    )


def triggers_from(state: str) -> list[str]:
    """The triggers valid in ``state``, in definition order."""
    return list(dict.fromkeys(s.trigger for s in STEPS if state in s.sources))


def missing(incident: Incident, trigger: str) -> list[FieldProblem]:
    """What ``trigger`` still misses on ``incident`` (empty: it may fire)."""
    guard = GUARDS.get(trigger)
    return guard(incident) if guard else []


def available(incident: Incident) -> dict[str, list[FieldProblem]]:
    """Every trigger valid in the incident's state, with what each still misses."""
    return {trigger: missing(incident, trigger) for trigger in triggers_from(incident.state)}


def destination(incident: Incident, trigger: str) -> str:
    """Where ``trigger`` would take the incident now, branches resolved."""
    for step in STEPS:
        if step.trigger != trigger or incident.state not in step.sources:
            continue
        if step.when and not BRANCHES[step.when](incident):
            continue
        if step.unless and BRANCHES[step.unless](incident):
            continue
        return step.dest
    raise TriggerNotAllowed(trigger, incident.state, triggers_from(incident.state))


def advance(incident: Incident, trigger: str) -> str:
    """Fire ``trigger`` through the machine; return the new state or raise why it cannot."""
    valid = triggers_from(incident.state)
    if trigger not in valid:
        raise TriggerNotAllowed(trigger, incident.state, valid)
    problems = missing(incident, trigger)
    if problems:
        raise GuardFailed(trigger, problems)
    subject = _Subject(incident)
    if not machine().events[trigger].trigger(subject):
        raise GuardFailed(trigger, [FieldProblem(trigger, "the machine refused the transition")])
    return subject.state
