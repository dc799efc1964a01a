"""How the machine is built from the one lifecycle definition (``workflow/lifecycle.py``).

The process builds its machine once; these tests build the pieces afresh, so each rule of the
building is stated on its own: every way into ``closed`` waits for the blocking actions, a branch
is tested before the guard, the machine knows exactly the steps' triggers.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from transitions import Machine

from breachflow.workflow import guards, lifecycle
from breachflow.workflow.errors import FieldProblem
from breachflow.workflow.lifecycle import State, Step, Trigger

OWN = FieldProblem("evaluation", "missing")
BLOCKING = FieldProblem("actions.1", "still open")


asked: list[tuple[str, object]] = []  # which guard was asked about which incident


@pytest.fixture
def blocking(monkeypatch) -> None:
    asked.clear()
    monkeypatch.setattr(guards, "blocking_actions_settled", lambda incident: asked.append(("blocking", incident))
                        or [BLOCKING])


def own_guard(incident) -> list[FieldProblem]:
    asked.append(("own", incident))
    return [OWN]


def test_a_step_into_closed_also_waits_for_the_blocking_actions_after_its_own_guard(blocking):
    step = lifecycle._closing(Step(Trigger.ap_notified, (State.ap_notification,), State.closed, "x", own_guard))
    incident = object()
    assert step.guard(incident) == [OWN, BLOCKING]
    assert asked == [("own", incident), ("blocking", incident)]  # both about the incident in hand
    assert step.guard.__name__ == "own_guard_and_blocking_actions_settled"
    assert (step.trigger, step.sources, step.dest) == (Trigger.ap_notified, (State.ap_notification,), State.closed)


def test_an_unguarded_step_into_closed_waits_for_the_blocking_actions_alone(blocking):
    step = lifecycle._closing(Step(Trigger.ap_notified, (State.ap_notification,), State.closed, "x"))
    assert step.guard(object()) == [BLOCKING]
    assert step.guard.__name__ == "closing_and_blocking_actions_settled"


def test_a_step_elsewhere_keeps_its_own_guard_only(blocking):
    step = Step(Trigger.verified, (State.verification,), State.evaluation, "x", own_guard)
    assert lifecycle._closing(step) is step


def test_every_defined_way_into_closed_waits_for_the_blocking_actions():
    into_closed = [s for s in lifecycle.STEPS if s.dest is State.closed]
    assert {s.trigger for s in into_closed} == {Trigger.evaluated, Trigger.ap_notified}
    assert all(s.guard.__name__.endswith("_and_blocking_actions_settled") for s in into_closed)


def test_a_when_branch_is_a_condition_before_the_guard():
    step = Step(Trigger.remediated, (State.remediation,), State.backup_restore, "x", own_guard, when=bool)
    assert lifecycle.transition_dict(step, "guard", "branch") == {
        "trigger": "remediated", "source": ["remediation"], "dest": "backup_restore",
        "conditions": ["branch", "guard"]}


def test_an_unless_branch_is_the_transitions_unless():
    step = Step(Trigger.remediated, (State.remediation,), State.verification, "x", own_guard, unless=bool)
    assert lifecycle.transition_dict(step, "guard", "branch") == {
        "trigger": "remediated", "source": ["remediation"], "dest": "verification",
        "conditions": ["guard"], "unless": ["branch"]}


def test_an_unguarded_step_has_no_conditions():
    step = Step(Trigger.reopen, (State.dismissed, State.closed), State.triage, "x")
    assert lifecycle.transition_dict(step, None, None) == {
        "trigger": "reopen", "source": ["dismissed", "closed"], "dest": "triage"}


def test_a_condition_reads_the_incident_the_machine_moves_and_carries_its_name():
    seen = []
    holds = lifecycle._condition("has_x_fields", lambda incident: seen.append(incident) or True)
    assert holds(SimpleNamespace(model=SimpleNamespace(incident="the incident"))) is True
    assert seen == ["the incident"] and holds.__name__ == "has_x_fields"


def test_the_machine_knows_exactly_the_steps_triggers_from_each_state():
    built: Machine = lifecycle.machine.__wrapped__()  # built afresh, as a new process would
    assert built.initial == State.reported.value
    for state in State:
        expected = {s.trigger.value for s in lifecycle.STEPS if state in s.sources}
        assert set(built.get_triggers(state.value)) == expected, state


def test_the_guard_names_in_the_diagram_are_the_triggers():
    assert lifecycle.guard_name("confirm") == "has_confirm_fields"


def test_a_refused_trigger_says_which_trigger_needs_what():
    from breachflow.workflow.disclosure import Disclosure
    from breachflow.workflow.errors import GuardFailed
    from breachflow.workflow.incident import Incident

    waiting = Incident(1, "DL-2026-00001", "containment", 1, "school", None, Disclosure(), [], [])
    with pytest.raises(GuardFailed) as refused:
        lifecycle.advance(waiting, "contained")
    assert refused.value.trigger == "contained" and refused.value.message == "'contained' needs 1 more field(s)"
    assert [p.field for p in refused.value.fields] == ["measures"]


def test_an_unguarded_or_unknown_trigger_misses_nothing():
    from breachflow.workflow.disclosure import Disclosure
    from breachflow.workflow.incident import Incident

    reported = Incident(1, "DL-2026-00001", "reported", 1, "school", None, Disclosure(), [], [])
    assert lifecycle.missing(reported, "begin_triage") == []
    assert lifecycle.missing(reported, "no_such_trigger") == []


def test_a_guards_condition_passes_exactly_when_the_guard_finds_nothing_missing():
    seen = []

    def guard(incident):
        seen.append(incident)
        return incident

    passes = lifecycle._passes(guard)
    assert passes([]) is True and passes([OWN]) is False
    assert seen == [[], [OWN]]
