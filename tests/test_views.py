"""What the API shows each reader of one incident (``api/views.py``): staff read it whole; a school
reads its own part of it, every fact of that part, and nothing of another school's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from breachflow.api.views import incident_out, register_entry, summary_out, timeline_out
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.deadlines import Periods
from breachflow.workflow.disclosure import CauseCategory, Disclosure
from breachflow.workflow.incident import (
    Action,
    AffectedSchool,
    ApKind,
    ApNotification,
    Incident,
    InformedVia,
    PeopleInformed,
)
from breachflow.workflow.queries import Entry
from breachflow.workflow.register import History
from breachflow.workflow.timeline import EventKind

A, B = "12AB", "34CD"
DISCOVERED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = DISCOVERED + timedelta(hours=30)
PERIODS = Periods()
HANDLER = Account(1, "hanna", Role.handler)
SCHOOL_A = Account(2, "regenboog", Role.school, school_id=7, school_brin=A)
SCHOOL_B = Account(3, "anker", Role.school, school_id=8, school_brin=B)
MOVED = DISCOVERED + timedelta(hours=3)


def hours(n: float) -> datetime:
    return DISCOVERED + timedelta(hours=n)


def incident(cause: CauseCategory = CauseCategory.user_error_admin, ap: tuple = ()) -> Incident:
    """Two schools, each informed, A also told to notify the AP and its people's informing
    recorded; a follow-up action; the clock moved once by a correction."""
    people = PeopleInformed(informed=True, recorded_at=hours(20), at=hours(19), via=InformedVia.email, count=30)
    schools = [
        AffectedSchool(7, A, "De Regenboog", 30, informed_at=hours(4), informed_via="email",
                       told_to_notify_ap_at=hours(4), acknowledged_at=hours(5), people=people),
        AffectedSchool(8, B, "Het Anker", 12, informed_at=hours(6), informed_via="phone"),
    ]
    action = Action(41, 1, "Rotate the portal's keys", "piet", hours(200), blocking=True)
    return Incident(1, "DL-2026-00001", "remediation", 3, "school", hours(1),
                    Disclosure(discovered_at=DISCOVERED, summary="Gradebook export mailed to the wrong parent",
                               cause_category=cause),
                    schools, list(ap), confirmed_at=hours(2), clock_moved_at=MOVED, clock_moved_by="hanna",
                    actions=[action])


def test_a_school_reads_every_fact_of_its_own_part():
    (own,) = incident_out(SCHOOL_A, incident(), NOW, PERIODS).schools
    assert (own.brin, own.name, own.affected_count, own.informed_at, own.informed_via) == \
        (A, "De Regenboog", 30, hours(4), "email")
    assert (own.told_to_notify_ap_at, own.acknowledged_at) == (hours(4), hours(5))
    people = own.people_informed
    assert people is not None and (people.informed, people.at, people.via, people.count, people.recorded_at) == \
        (True, hours(19), "email", 30, hours(20))
    assert incident_out(SCHOOL_B, incident(), NOW, PERIODS).schools[0].people_informed is None, "not recorded"


def test_an_ap_notification_is_shown_to_the_schools_it_covers_and_to_staff():
    covering_a = ApNotification(ApKind.final, "AP-1", hours(10), [7])
    covering_both = ApNotification(ApKind.preliminary, "AP-2", hours(8), [7, 8])
    shown = incident(ap=(covering_a, covering_both))

    def seen(account):
        return [(n.ap_reference, n.schools) for n in incident_out(account, shown, NOW, PERIODS).ap_notifications]

    assert seen(HANDLER) == [("AP-1", [A]), ("AP-2", [A, B])]
    assert seen(SCHOOL_A) == [("AP-1", [A]), ("AP-2", [A])]
    assert seen(SCHOOL_B) == [("AP-2", [B])], "one covering another school only is not its business"


def test_the_high_risk_flag_reaches_the_reader():
    assert incident_out(HANDLER, incident(), NOW, PERIODS).high_risk == []
    risky = incident()
    risky.disclosure = risky.disclosure.model_copy(update={"special_categories": True})
    assert incident_out(HANDLER, risky, NOW, PERIODS).high_risk == ["special_categories"]


def clocks(account: Account, shown: Incident | None = None):
    out = incident_out(account, shown or incident(), NOW, PERIODS).deadlines
    return {(d.kind, d.school): d for d in out}


def test_each_clock_names_its_school_its_owner_and_the_last_correction():
    staff = clocks(HANDLER)
    assert set(staff) == {("school_notice", A), ("school_notice", B), ("school_ap_notice", A),
                          ("school_ap_notice", B), ("follow_up", None)}
    assert staff[("follow_up", None)].owner == "piet" and staff[("school_notice", A)].owner is None
    assert {(d.clock_moved_at, d.clock_moved_by) for d in staff.values()} == {(MOVED, "hanna")}


def test_a_school_sees_its_own_clocks_and_the_processors_ap_clock_but_no_follow_up():
    assert set(clocks(SCHOOL_A)) == {("school_notice", A), ("school_ap_notice", A)}
    processor_caused = incident(cause=CauseCategory.system_technical)
    assert set(clocks(SCHOOL_B, processor_caused)) == {("school_notice", B), ("ap_notice", None)}


def test_a_list_item_carries_the_discovery_the_summary_and_the_urgency():
    item = summary_out(SCHOOL_A, incident(), NOW, PERIODS)
    assert (item.discovered_at, item.summary, item.schools) == \
        (DISCOVERED, "Gradebook export mailed to the wrong parent", [A])
    assert item.deadline_status == "ok"


@pytest.mark.parametrize("kind", [ApKind.preliminary, ApKind.final])
def test_the_register_dates_the_first_ap_notification_of_either_kind(kind):
    notified = incident(cause=CauseCategory.system_technical, ap=(ApNotification(kind, "AP-1", hours(20), [7, 8]),))
    assert register_entry(HANDLER, notified, History(), NOW, PERIODS).first_ap_notification_at == hours(20)


def entry(seq: int, kind: EventKind, payload: dict | None, from_state=None, to_state=None) -> Entry:
    return Entry(seq, hours(seq), "hanna", kind.value, from_state, to_state, payload, f"h{seq}")


TIMELINE = [
    entry(1, EventKind.transition, {"trigger": "confirm", "fields": {"summary": "x"}}, "triage", "containment"),
    entry(2, EventKind.contact, {"school": B, "channel": "phone", "summary": "Director of B informed"}),
    entry(3, EventKind.contact, {"school": A, "channel": "phone", "summary": "Director of A informed"}),
    entry(4, EventKind.transition, {"trigger": "contain"}, "containment", "remediation"),
]


def test_staff_read_each_event_whole():
    read = timeline_out(HANDLER, TIMELINE)
    assert [(e.seq, e.at, e.actor, e.kind, e.from_state, e.to_state, e.details, e.hash) for e in read] == \
        [(e.seq, e.at, e.actor, e.kind, e.from_state, e.to_state, e.payload, e.hash) for e in TIMELINE]


def test_a_school_reads_its_own_events_past_another_schools_and_only_what_it_may():
    read = timeline_out(SCHOOL_A, TIMELINE)
    assert [e.seq for e in read] == [1, 3, 4], "another school's contact is left out, not the rest after it"
    assert (read[0].from_state, read[0].to_state, read[0].details) == ("triage", "containment", {"trigger": "confirm"})
    assert read[1].details == TIMELINE[2].payload
    assert [e.hash for e in read] == ["h1", "h3", "h4"], "each link as stored, for the school to verify"
    assert [e.seq for e in timeline_out(SCHOOL_B, TIMELINE)] == [1, 2, 4]
