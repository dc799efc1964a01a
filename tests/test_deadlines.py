"""Deadlines: pure functions across their boundaries, and the late-notification rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import CONFIRM, add_school, reported
from freezegun import freeze_time
from reading import whole_timeline

from breachflow.workflow import queries, service
from breachflow.workflow.config import Settings
from breachflow.workflow.deadlines import (
    AMSTERDAM,
    DeadlineKind,
    Outcome,
    Periods,
    Status,
    ap_deadline,
    deadlines,
    local,
    status_at,
)
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.errors import Conflict, InvalidInput
from breachflow.workflow.incident import Action, ActionStatus, AffectedSchool, ApKind, ApNotification, Incident

DISCOVERED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PERIODS = Periods()


def incident(cause=None, informed_at=None, ap=(), state="containment", discovered=DISCOVERED, schools=None,
             actions=()) -> Incident:
    if schools is None:
        schools = [AffectedSchool(7, "12AB", "De Regenboog", 30, informed_at=informed_at)]
    return Incident(1, "DL-2026-00001", state, 1, "school", discovered,
                    Disclosure(discovered_at=discovered, cause_category=cause), schools, list(ap),
                    actions=list(actions))


def of_kind(items, kind):
    return [d for d in items if d.kind is kind]


def ap_status(at: datetime, inc: Incident | None = None) -> Status:
    with freeze_time(at):
        (clock,) = of_kind(deadlines(inc or incident(), PERIODS), DeadlineKind.ap_notice)
        return clock.status(datetime.now(UTC), PERIODS.due_soon)


def test_ap_deadline_is_72_hours_after_discovery():
    (clock,) = of_kind(deadlines(incident(), PERIODS), DeadlineKind.ap_notice)
    assert clock.due_at == DISCOVERED + timedelta(hours=72)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(hours=59, minutes=59, seconds=59), Status.ok),
        (timedelta(hours=60), Status.due_soon),
        (timedelta(hours=72) - timedelta(seconds=1), Status.due_soon),
        (timedelta(hours=72), Status.due_soon),
        (timedelta(hours=72) + timedelta(seconds=1), Status.overdue),
    ],
    ids=["before-window", "window-opens", "one-second-before", "exactly-72h", "one-second-after"],
)
def test_ap_deadline_status_across_its_boundaries(offset, expected):
    assert ap_status(DISCOVERED + offset) is expected


def test_a_preliminary_notification_meets_the_ap_deadline():
    sent = DISCOVERED + timedelta(hours=70)
    inc = incident(ap=[ApNotification(ApKind.preliminary, "AP-1", sent, [7])])
    assert ap_status(sent - timedelta(seconds=1), inc) is Status.due_soon
    assert ap_status(sent, inc) is Status.met
    assert ap_status(DISCOVERED + timedelta(days=10), inc) is Status.met


def test_a_late_notification_is_met_late():
    inc = incident(ap=[ApNotification(ApKind.final, "AP-1", DISCOVERED + timedelta(hours=80), [7])])
    (clock,) = of_kind(deadlines(inc, PERIODS), DeadlineKind.ap_notice)
    assert clock.met_late


def test_school_notice_is_24_hours_and_met_when_informed():
    (clock,) = of_kind(deadlines(incident(), PERIODS), DeadlineKind.school_notice)
    assert clock.due_at == DISCOVERED + timedelta(hours=24)
    assert status_at(clock.due_at, None, clock.due_at + timedelta(seconds=1), PERIODS.due_soon) is Status.overdue
    informed = incident(informed_at=DISCOVERED + timedelta(hours=3))
    (met,) = of_kind(deadlines(informed, PERIODS), DeadlineKind.school_notice)
    assert met.status(DISCOVERED + timedelta(hours=30), PERIODS.due_soon) is Status.met


def test_a_school_responsible_incident_runs_the_schools_own_clock_from_its_notice():
    informed = DISCOVERED + timedelta(hours=5)
    clocks = deadlines(incident("user_error_admin", informed_at=informed), PERIODS)
    assert of_kind(clocks, DeadlineKind.ap_notice) == []
    (school_clock,) = of_kind(clocks, DeadlineKind.school_ap_notice)
    assert (school_clock.due_at, school_clock.school_id) == (informed + timedelta(hours=72), 7)


def test_an_unknown_cause_watches_both_parties_clocks():
    clocks = deadlines(incident("unknown", informed_at=DISCOVERED + timedelta(hours=1)), PERIODS)
    assert {d.kind for d in clocks} == set(DeadlineKind) - {DeadlineKind.follow_up}  # no actions recorded


def test_a_processor_responsible_incident_has_no_school_ap_clock():
    clocks = deadlines(incident("system_technical", informed_at=DISCOVERED), PERIODS)
    assert of_kind(clocks, DeadlineKind.school_ap_notice) == []


def test_a_dismissed_report_has_no_clocks():
    assert deadlines(incident(state="dismissed"), PERIODS) == []


def test_72_hours_are_elapsed_hours_across_the_end_of_summer_time():
    # Saturday 24 October 2026, 12:00 in Amsterdam (CEST); clocks go back on Sunday 25 October.
    discovered = datetime(2026, 10, 24, 12, 0, tzinfo=AMSTERDAM).astimezone(UTC)
    (clock,) = of_kind(deadlines(incident(discovered=discovered), PERIODS), DeadlineKind.ap_notice)
    assert clock.due_at - discovered == timedelta(hours=72)
    shown = local(clock.due_at)
    assert (shown.day, shown.hour, shown.tzname()) == (27, 11, "CET")
    assert ap_status(clock.due_at, incident(discovered=discovered)) is Status.due_soon
    assert ap_status(clock.due_at + timedelta(seconds=1), incident(discovered=discovered)) is Status.overdue


def test_every_period_comes_from_its_own_setting():
    periods = Periods.from_settings(Settings(school_notice_hours=5, ap_notice_hours=48, school_ap_notice_hours=36,
                                             due_soon_hours=3, reminder_offsets_hours=[4]))
    assert periods == Periods(school_notice=timedelta(hours=5), ap_notice=timedelta(hours=48),
                              school_ap_notice=timedelta(hours=36), due_soon=timedelta(hours=3), reminder_offsets=(4,))
    (clock,) = of_kind(deadlines(incident(), periods), DeadlineKind.ap_notice)
    assert clock.due_at == DISCOVERED + timedelta(hours=48)


def test_reminder_offsets_are_kept_latest_first():
    periods = Periods.from_settings(Settings(reminder_offsets_hours=[1, 24, 6]))
    assert periods.reminder_offsets == (24, 6, 1)


def test_the_first_reminder_goes_out_at_the_latest_offset_and_without_offsets_at_the_due_time():
    assert Periods(reminder_offsets=(2, 12)).reminder_lead == timedelta(hours=12)
    assert Periods(reminder_offsets=()).reminder_lead == timedelta(0)


def test_either_of_ap_deadlines_conditions_alone_excludes_the_clock():
    assert ap_deadline(incident(state="dismissed"), PERIODS) is None  # discovered, but not a breach
    assert ap_deadline(incident(discovered=None), PERIODS) is None  # watched, but no discovery to count from


def outcomes(inc: Incident) -> dict[tuple[DeadlineKind, int | None], Outcome | None]:
    return {(d.kind, d.school_id): d.outcome for d in deadlines(inc, PERIODS)}


def test_a_closed_incident_settles_a_clock_met_in_time_as_met_and_one_met_after_it_as_met_late():
    inc = incident("system_technical", informed_at=DISCOVERED + timedelta(hours=3), state="closed",
                   ap=[ApNotification(ApKind.final, "AP-1", DISCOVERED + timedelta(hours=80), [7])])
    assert outcomes(inc) == {(DeadlineKind.school_notice, 7): Outcome.met,
                             (DeadlineKind.ap_notice, None): Outcome.met_late}
    later = DISCOVERED + timedelta(days=30)
    assert {d.status(later, PERIODS.due_soon) for d in deadlines(inc, PERIODS)} == {Status.met}


def test_a_clock_met_exactly_at_its_due_time_is_met_not_late():
    inc = incident("system_technical", informed_at=DISCOVERED + PERIODS.school_notice)
    (clock,) = of_kind(deadlines(inc, PERIODS), DeadlineKind.school_notice)
    assert not clock.met_late
    inc.state = "closed"
    assert outcomes(inc)[DeadlineKind.school_notice, 7] is Outcome.met


def test_a_clock_met_in_time_or_not_yet_met_is_not_met_late():
    inc = incident("system_technical", informed_at=DISCOVERED + timedelta(hours=3))
    assert [(d.kind, d.met_late) for d in deadlines(inc, PERIODS)] == [
        (DeadlineKind.school_notice, False), (DeadlineKind.ap_notice, False)]


def test_the_first_notification_meets_a_clock_and_a_later_one_does_not_move_it():
    first, later = DISCOVERED + timedelta(hours=30), DISCOVERED + timedelta(hours=50)
    inc = incident("unknown", informed_at=DISCOVERED + timedelta(hours=2),
                   ap=[ApNotification(ApKind.final, "AP-2", later, [7]),
                       ApNotification(ApKind.preliminary, "AP-1", first, [7])])
    assert {d.kind: d.met_at for d in deadlines(inc, PERIODS) if d.kind is not DeadlineKind.school_notice} == {
        DeadlineKind.ap_notice: first, DeadlineKind.school_ap_notice: first}


def test_a_closed_incidents_unmet_clock_is_settled_not_overdue():
    inc = incident("system_technical", state="closed")
    assert outcomes(inc) == {(DeadlineKind.school_notice, 7): Outcome.unmet,
                             (DeadlineKind.ap_notice, None): Outcome.unmet}
    later = DISCOVERED + timedelta(days=30)
    assert {d.status(later, PERIODS.due_soon) for d in deadlines(inc, PERIODS)} == {Status.settled}


def test_a_closed_incidents_school_ap_clock_is_left_to_the_school_only_when_it_was_told_to_notify():
    informed = DISCOVERED + timedelta(hours=2)
    told = AffectedSchool(7, "12AB", "De Regenboog", 30, informed_at=informed, told_to_notify_ap_at=informed)
    not_told = AffectedSchool(8, "34CD", "Het Anker", 12, informed_at=informed)
    settled = outcomes(incident("user_error_admin", state="closed", schools=[told, not_told]))
    assert (settled[DeadlineKind.school_ap_notice, 7], settled[DeadlineKind.school_ap_notice, 8]) == (
        Outcome.school_told, Outcome.unmet)


def test_only_the_schools_own_ap_clock_is_left_to_it_not_the_processors_notice_to_it():
    # told by phone to notify the AP, then uninformed because its notice bounced: no clock of its own runs
    bounced = AffectedSchool(7, "12AB", "De Regenboog", 30, told_to_notify_ap_at=DISCOVERED + timedelta(hours=2))
    assert outcomes(incident("unknown", state="closed", schools=[bounced])) == {
        (DeadlineKind.school_notice, 7): Outcome.unmet, (DeadlineKind.ap_notice, None): Outcome.unmet}


def test_a_follow_up_is_met_when_done_and_settled_as_dropped_when_dropped():
    due = DISCOVERED + timedelta(days=14)
    done_at = due - timedelta(days=1)
    actions = [Action(11, 1, "Rotate keys", "ops", due, blocking=True),
               Action(12, 2, "Train staff", "hr", due, blocking=False, status=ActionStatus.done, settled_at=done_at),
               Action(13, 3, "Audit logs", "ops", due, blocking=False, status=ActionStatus.dropped, settled_at=done_at)]
    clocks = of_kind(deadlines(incident(actions=actions), PERIODS), DeadlineKind.follow_up)
    later = due + timedelta(days=1)
    assert [(d.action_id, d.action_number, d.met_at, d.outcome, d.status(later, PERIODS.due_soon)) for d in clocks] == [
        (11, 1, None, None, Status.overdue),
        (12, 2, done_at, None, Status.met),
        (13, 3, None, Outcome.dropped, Status.settled),
    ]


def confirmed(ctx, discovered_hours_ago: float) -> str:
    add_school(ctx)
    ref = reported(ctx, discovered_hours_ago=discovered_hours_ago)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    return ref


def test_recording_an_ap_notification_after_the_deadline_needs_the_reason(ctx):
    ref = confirmed(ctx, discovered_hours_ago=80)
    with pytest.raises(InvalidInput) as failure:
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-9")
    assert [f.field for f in failure.value.fields] == ["delay_reason"]
    assert queries.get(ctx, ref).ap_notifications == []

    done = service.record_ap_notification(
        ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-9",
        delay_reason="The report reached us on a public holiday",
    )
    assert [n.ap_reference for n in done.ap_notifications] == ["AP-9"]
    event = whole_timeline(ctx, ref)[-1]
    assert event.payload["late"] is True and event.payload["delay_reason"].startswith("The report")


def test_an_ap_notification_in_time_needs_no_reason_and_stops_the_clock(ctx):
    ref = confirmed(ctx, discovered_hours_ago=10)
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-10")
    assert [d.deadline.kind for d in queries.open_deadline_page(ctx).items] == [DeadlineKind.school_notice]


def test_a_supplement_needs_an_earlier_reference(ctx):
    ref = confirmed(ctx, discovered_hours_ago=10)
    with pytest.raises(InvalidInput) as failure:
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="supplement", ap_reference="AP-404")
    assert [f.field for f in failure.value.fields] == ["ap_reference"]


def test_the_ap_is_not_notified_before_a_breach_is_confirmed(ctx):
    add_school(ctx)
    ref = reported(ctx)
    with pytest.raises(Conflict, match="confirmed breaches"):
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-1")


@pytest.mark.parametrize("kind", [ApKind.preliminary, ApKind.final])
def test_a_schools_own_ap_clock_is_met_by_a_preliminary_or_final_notification_that_covers_it(kind):
    informed = DISCOVERED + timedelta(hours=2)
    sent = informed + timedelta(hours=10)
    schools = [AffectedSchool(7, "12AB", "De Regenboog", 30, informed_at=informed),
               AffectedSchool(8, "34CD", "Het Anker", 12, informed_at=informed)]
    inc = incident("user_error_admin", schools=schools, ap=[ApNotification(kind, "AP-1", sent, [7])])
    clocks = of_kind(deadlines(inc, PERIODS), DeadlineKind.school_ap_notice)
    assert [(d.school_id, d.met_at) for d in clocks] == [(7, sent), (8, None)]


def test_a_school_not_yet_informed_has_no_ap_clock_of_its_own_and_does_not_stop_the_next_schools():
    schools = [AffectedSchool(7, "12AB", "De Regenboog", 30),
               AffectedSchool(8, "34CD", "Het Anker", 12, informed_at=DISCOVERED + timedelta(hours=2))]
    clocks = of_kind(deadlines(incident("user_error_admin", schools=schools), PERIODS), DeadlineKind.school_ap_notice)
    assert [d.school_id for d in clocks] == [8]


def test_clocks_due_together_are_listed_by_school_then_by_action_number_whatever_order_the_incident_holds():
    schools = [AffectedSchool(8, "11AA", "Het Anker", 12), AffectedSchool(7, "22BB", "De Regenboog", 30)]
    due = DISCOVERED + timedelta(days=14)
    actions = [Action(12, 2, "Train staff", "hr", due, blocking=False), Action(11, 1, "Rotate keys", "ops", due, True)]
    clocks = deadlines(incident("system_technical", schools=schools, actions=actions), PERIODS)
    assert [d.school_id for d in of_kind(clocks, DeadlineKind.school_notice)] == [7, 8]
    assert [d.action_number for d in of_kind(clocks, DeadlineKind.follow_up)] == [1, 2]
