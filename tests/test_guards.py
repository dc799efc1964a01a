"""Guards: each names every missing field; no trigger gets past its guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import CONFIRM, CONTAIN, EVALUATE, REMEDIATE, add_school, hours_ago, reported
from reading import whole_timeline

from breachflow.workflow import lifecycle, queries, service
from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.errors import GuardFailed, InvalidInput, TriggerNotAllowed
from breachflow.workflow.incident import Action, ActionStatus, AffectedSchool, ApKind, ApNotification, Incident
from breachflow.workflow.lifecycle import GUARDS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def incident(state: str = "triage", schools=(), ap=(), actions=(), **fields) -> Incident:
    return Incident(1, "DL-2026-00001", state, 1, "school", NOW, Disclosure(**fields), list(schools), list(ap),
                    actions=list(actions))


def school(**kwargs) -> AffectedSchool:
    return AffectedSchool(**({"school_id": 7, "brin": "12AB", "name": "De Regenboog"} | kwargs))


def fields_of(problems) -> list[str]:
    return [p.field for p in problems]


def test_dismiss_needs_a_reason():
    assert fields_of(GUARDS["dismiss"](incident())) == ["dismissal_reason"]


def test_confirm_lists_every_missing_field():
    assert fields_of(GUARDS["confirm"](incident())) == [
        "discovered_at", "summary", "nature_how", "nature_actions", "affected_systems", "cause_category", "schools",
    ]


def test_confirm_accepts_an_unknown_cause():
    ready = incident(schools=[school()], discovered_at=NOW, **CONFIRM)
    assert GUARDS["confirm"](ready) == []


def test_contained_needs_measures():
    assert fields_of(GUARDS["contained"](incident("containment"))) == ["measures"]


def test_remediated_needs_a_known_cause_a_tested_fix_and_the_data_loss_answer():
    problems = GUARDS["remediated"](incident("remediation", cause_category="unknown", fix_tested=False))
    assert fields_of(problems) == [
        "cause_description", "cause_category", "fix_description", "fix_tested", "data_lost_or_altered",
    ]
    assert "not 'unknown'" in problems[1].problem


def test_restored_needs_the_backup_and_its_check():
    assert fields_of(GUARDS["restored"](incident("backup_restore", backup_checked=False))) == [
        "backup_description", "backup_checked",
    ]


def test_verified_needs_fix_applied_and_system_verified():
    assert fields_of(GUARDS["verified"](incident("verification"))) == ["fix_applied", "system_verified"]


def test_evaluated_needs_evaluation_all_of_i_to_vi_and_informed_schools():
    problems = GUARDS["evaluated"](
        incident("evaluation", schools=[school()], cause_category="user_error_admin", data_kinds=["other"])
    )
    assert fields_of(problems) == [
        "evaluation", "discovered_at", "summary", "nature_how", "nature_actions", "cause_description",
        "measures", "affected_groups", "group_size_min", "data_kinds_other", "schools.12AB", "schools.12AB",
    ]
    assert "not been informed" in problems[-2].problem
    assert "must notify the AP" in problems[-1].problem


def test_ap_notified_needs_a_final_notification_covering_every_school():
    first, second = school(), school(school_id=8, brin="34CD", name="Het Anker")
    preliminary = ApNotification(ApKind.preliminary, "AP-1", NOW, [7, 8])
    final_for_one = ApNotification(ApKind.final, "AP-1", NOW, [7])
    problems = GUARDS["ap_notified"](incident("ap_notification", [first, second], [preliminary, final_for_one]))
    assert "schools.34CD" in fields_of(problems)
    assert "schools.12AB" not in fields_of(problems)
    nothing = GUARDS["ap_notified"](incident("ap_notification", [first]))
    assert fields_of(nothing)[:1] == ["ap_notifications"]
    assert {"data_unreadable", "subjects_informed"} <= set(fields_of(nothing))


def test_a_withdrawn_final_notification_no_longer_counts():
    withdrawn = [ApNotification(ApKind.final, "AP-1", NOW, [7]), ApNotification(ApKind.withdrawal, "AP-1", NOW, [7])]
    assert fields_of(GUARDS["ap_notified"](incident("ap_notification", [school()], withdrawn)))[0] == "ap_notifications"


def test_reopen_needs_a_reason():
    assert fields_of(GUARDS["reopen"](incident("closed"))) == ["reopen_reason"]


@pytest.mark.parametrize("step", [s for s in lifecycle.STEPS if s.guarded], ids=lambda s: f"{s.trigger}->{s.dest}")
def test_no_trigger_bypasses_its_guard(step):
    """Driving the shared machine directly, an empty incident stays where it is."""
    for source in step.sources:
        bare = incident(source)
        subject = lifecycle._Subject(bare)
        assert lifecycle.machine().events[step.trigger].trigger(subject) is False
        assert subject.state == source
        with pytest.raises(GuardFailed) as failure:
            lifecycle.advance(bare, step.trigger)
        assert failure.value.fields == GUARDS[step.trigger](bare)


def test_every_trigger_except_begin_triage_has_a_guard():
    assert {s.trigger for s in lifecycle.STEPS if not s.guarded} == {"begin_triage"}


def test_an_invalid_trigger_names_the_state_and_the_valid_ones():
    with pytest.raises(TriggerNotAllowed) as failure:
        lifecycle.advance(incident("reported"), "confirm")
    assert failure.value.state == "reported"
    assert failure.value.valid == ["begin_triage"]
    assert "'confirm' cannot be fired in state 'reported'" in str(failure.value)


def test_available_lists_each_valid_trigger_with_what_it_misses():
    available = lifecycle.available(incident("triage"))
    assert list(available) == ["dismiss", "confirm"]
    assert fields_of(available["dismiss"]) == ["dismissal_reason"]


def test_branches_pick_the_destination():
    remediated = {k: v for k, v in REMEDIATE.items() if k != "data_lost_or_altered"}
    lost = incident("remediation", data_lost_or_altered=True, **remediated)
    kept = incident("remediation", data_lost_or_altered=False, **remediated)
    assert lifecycle.destination(lost, "remediated") == "backup_restore"
    assert lifecycle.destination(kept, "remediated") == "verification"
    informed = [school(informed_at=NOW, told_to_notify_ap_at=NOW)]
    complete = {"discovered_at": NOW} | CONFIRM | CONTAIN | REMEDIATE | EVALUATE
    processor = incident("evaluation", informed, **complete)
    school_caused = incident("evaluation", informed, **(complete | {"cause_category": "negligence_parent"}))
    assert lifecycle.destination(processor, "evaluated") == "ap_notification"
    assert lifecycle.destination(school_caused, "evaluated") == "closed"


def test_the_destination_of_a_trigger_whose_guard_fails_is_refused_by_the_machine():
    with pytest.raises(GuardFailed):
        lifecycle.destination(incident("remediation", data_lost_or_altered=True), "remediated")


def test_the_machine_is_built_once_per_process():
    assert lifecycle.machine() is lifecycle.machine()


def test_a_failed_guard_through_the_service_changes_nothing(ctx):
    add_school(ctx)
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    with pytest.raises(GuardFailed) as failure:
        service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields={"summary": "Lists visible"})
    assert "summary" not in fields_of(failure.value.fields)
    after = queries.get(ctx, ref)
    assert (after.state, after.version, after.disclosure.summary) == ("triage", 2, None)
    assert len(whole_timeline(ctx, ref)) == 2


def action(number: int, *, blocking: bool, status: str = "open") -> Action:
    return Action(number, number, f"Lesson {number}", "hanna", NOW, blocking, ActionStatus(status))


CLOSING_STEPS = [s for s in lifecycle.STEPS if s.dest == "closed"]


def test_every_step_into_closed_waits_for_the_open_blocking_actions_and_names_them():
    assert {(s.trigger, s.sources) for s in CLOSING_STEPS} == {("evaluated", ("evaluation",)),
                                                               ("ap_notified", ("ap_notification",))}
    waiting = incident("evaluation", actions=[action(1, blocking=True), action(2, blocking=False),
                                             action(3, blocking=True, status="done"),
                                             action(4, blocking=True, status="dropped"),
                                             action(5, blocking=True)])
    for step in CLOSING_STEPS:
        problems = step.guard(waiting)
        assert [p.field for p in problems if p.field.startswith("actions")] == ["actions.1", "actions.5"]
        assert "blocking follow-up action 5 (owner hanna) is still open" in str(problems[-1])


def test_an_open_non_blocking_action_does_not_keep_an_incident_open():
    informed = [school(informed_at=NOW, told_to_notify_ap_at=NOW)]
    complete = {"discovered_at": NOW} | CONFIRM | CONTAIN | REMEDIATE | EVALUATE | {"cause_category": "negligence_parent"}
    settled = [action(1, blocking=True, status="done"), action(2, blocking=False)]
    assert lifecycle.destination(incident("evaluation", informed, actions=settled, **complete), "evaluated") == "closed"
    with pytest.raises(GuardFailed) as refused:
        lifecycle.advance(incident("evaluation", informed, actions=[action(1, blocking=True)], **complete), "evaluated")
    assert [p.field for p in refused.value.fields] == ["actions.1"]


def test_blocking_actions_do_not_hold_back_a_step_that_does_not_close():
    """On the processor's branch ``evaluated`` leads to ap_notification: an open blocking action waits
    for ``ap_notified`` instead, and what ``evaluated`` misses does not name it."""
    informed = [school(informed_at=NOW)]
    complete = {"discovered_at": NOW} | CONFIRM | CONTAIN | REMEDIATE | EVALUATE
    waiting = incident("evaluation", informed, actions=[action(1, blocking=True)], **complete)
    assert lifecycle.missing(waiting, "evaluated") == []
    assert lifecycle.destination(waiting, "evaluated") == "ap_notification"


def test_a_responsible_schools_late_ap_notification_needs_its_reason(ctx):
    """The school's own 72 hours run from its notice: past them, its AP notification needs the reason."""
    add_school(ctx)
    ref = reported(ctx, discovered_hours_ago=100)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM | {
        "cause_category": "user_error_employee", "cause_description": "A teacher shared a login"})
    informed = hours_ago(80)
    service.log_contact(ctx, reference=ref, actor="hanna", brin="12AB", channel="phone", at=informed,
                        summary="Director told to notify the AP", told_must_notify_ap=True)
    record = {"reference": ref, "actor": "hanna", "kind": "preliminary", "ap_reference": "AP-12AB"}
    with pytest.raises(InvalidInput) as failure:
        service.record_ap_notification(ctx, **record)
    assert fields_of(failure.value.fields) == ["delay_reason"]
    assert f"{(informed + timedelta(hours=72)).astimezone(AMSTERDAM):%H:%M}" in failure.value.fields[0].problem
    assert queries.get(ctx, ref).ap_notifications == []
    done = service.record_ap_notification(ctx, **record, delay_reason="The director was abroad")
    assert [n.ap_reference for n in done.ap_notifications] == ["AP-12AB"]
    assert whole_timeline(ctx, ref)[-1].payload["late"] is True


# --- what a handler reads when a step is refused ------------------------------------------------

REQUIRED = {
    "dismissal_reason": "why the report is not a breach is required",
    "discovered_at": "date and time the breach was discovered is required",
    "summary": "summary of the incident is required",
    "nature_how": "how it happened is required",
    "nature_actions": "what happened to the data (read, copied, altered, deleted, stolen) is required",
    "affected_systems": "which of the processor's systems are affected is required",
    "cause_category": "category of the cause is required",
    "measures": "measures taken to prevent (further) damage is required",
    "cause_description": "the cause, described is required",
    "fix_description": "the fix for the cause is required",
    "data_lost_or_altered": "was data lost or altered is required",
    "backup_description": "which backup was restored is required",
    "evaluation": "evaluation of how the incident was handled is required",
    "affected_groups": "groups affected and consequences is required",
    "data_kinds": "kinds of personal data affected is required",
    "data_unreadable": "was the data encrypted or otherwise unreadable is required",
    "subjects_informed": "have the people affected been informed is required",
    "reopen_reason": "why the incident is reopened is required",
}
CONFIRMED = {
    "fix_tested": "the fix was tested thoroughly must be confirmed",
    "backup_checked": "the backup was checked for correctness must be confirmed",
    "fix_applied": "the fix was applied must be confirmed",
    "system_verified": "the system was verified to work must be confirmed",
}
DESCRIBED = {  # the disclosure's checks beyond a field being there
    "cause_category": "the cause must be categorised (not 'unknown')",
    "group_size_min": "the number of people affected is required",
    "data_kinds_other": "describe the other kinds of data",
    "schools": "at least one affected school is required",
    "ap_notifications": "no final AP notification with its reference is recorded",
}


def said(problems) -> dict[str, str]:
    return {p.field: p.problem for p in problems}


@pytest.mark.parametrize("trigger", list(GUARDS))
def test_each_missing_field_is_named_in_words_a_handler_understands(trigger):
    told = said(GUARDS[trigger](incident(data_kinds=["other"])))
    assert told, trigger
    for field, words in told.items():
        # confirm accepts an unknown cause: there the category is only required
        checked = field in DESCRIBED and not (trigger == "confirm" and field == "cause_category")
        assert words == (DESCRIBED[field] if checked else REQUIRED.get(field, CONFIRMED.get(field))), (trigger, field)


def test_the_kinds_of_data_are_required_before_the_evaluation():
    assert said(GUARDS["evaluated"](incident("evaluation")))["data_kinds"] == REQUIRED["data_kinds"]


def test_a_school_not_yet_informed_or_not_covered_by_the_final_ap_notification_is_named():
    regenboog = school(informed_at=None)
    assert said(GUARDS["evaluated"](incident("evaluation", schools=[regenboog])))["schools.12AB"] == \
        "De Regenboog has not been informed (notice or contact)"
    covering_another = [ApNotification(ApKind.final, "AP-1", NOW, [8])]
    assert said(GUARDS["ap_notified"](incident("ap_notification", schools=[regenboog], ap=covering_another)))[
        "schools.12AB"] == "De Regenboog is not covered by a final AP notification"


@pytest.mark.parametrize("given", [{"group_size_min": 28}, {"group_size_max": 30}])
def test_either_bound_of_the_number_of_people_is_enough(given):
    assert "group_size_min" not in said(GUARDS["evaluated"](incident("evaluation", **given)))


@pytest.mark.parametrize(("fewest", "most"), [(30, 29), (1, 0)])
def test_the_most_people_affected_is_never_fewer_than_the_fewest(fewest, most):
    with pytest.raises(ValueError, match="group_size_max"):
        Disclosure(group_size_min=fewest, group_size_max=most)
    assert Disclosure(group_size_min=fewest, group_size_max=fewest).group_size_max == fewest
    assert Disclosure(group_size_max=most).group_size_max == most, "without the fewest, any number"


def test_people_informed_need_how_and_how_many_besides_the_rest_of_the_form():
    told = said(GUARDS["ap_notified"](incident("ap_notification", subjects_informed=True)))
    assert {"data_unreadable", "subjects_informed_how", "subjects_informed_count"} <= set(told)
    assert "subjects_not_informed_reason" not in told


def test_people_not_informed_need_the_reason_besides_the_rest_of_the_form():
    told = said(GUARDS["ap_notified"](incident("ap_notification", subjects_informed=False)))
    assert {"data_unreadable", "subjects_not_informed_reason"} <= set(told)
    assert not {"subjects_informed_how", "subjects_informed_count"} & set(told)
