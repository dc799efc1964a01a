"""What a school reads of each timeline event (``workflow/visibility.py``), the one rule behind the
API's timeline, the pages and data-subject requests: the kinds that concern schools, those about one
school only for that school, and of each only what it may read."""

from __future__ import annotations

import pytest

from breachflow.workflow.timeline import EventKind
from breachflow.workflow.visibility import SCHOOL_EVENT_KINDS, event_for_school

A, B = "12AB", "34CD"
AP = {"kind": "final", "ap_reference": "AP-2026-1", "notified_at": "2026-11-29T12:00:00+00:00",
      "schools": [A], "delay_reason": "sealed reason", "actor_note": "internal"}
SENT = {"messages": [
    {"kind": "initial", "attempt": 1, "message_id": "<a@x>", "school": A, "recipients": ["directie@12ab.nl"]},
    {"kind": "initial", "attempt": 2, "message_id": "<b@x>", "school": B, "recipients": ["info@34cd.nl"]},
]}


def test_a_transition_shows_only_its_trigger():
    assert event_for_school(EventKind.transition, {"trigger": "confirm", "fields": {"summary": "x"}}, A) == \
        (True, {"trigger": "confirm"})


@pytest.mark.parametrize("kind", [EventKind.contact, EventKind.acknowledged])
def test_a_contact_or_acknowledgement_is_seen_whole_by_its_school_only(kind):
    payload = {"school": A, "channel": "phone", "summary": "Director informed"}
    assert event_for_school(kind, payload, A) == (True, payload)
    assert event_for_school(kind, payload, B) == (False, None)


def test_an_ap_notification_shows_its_kind_reference_and_time_to_the_schools_it_covers_only():
    assert event_for_school(EventKind.ap_notification, AP, A) == (
        True, {"kind": "final", "ap_reference": "AP-2026-1", "notified_at": "2026-11-29T12:00:00+00:00"})
    assert event_for_school(EventKind.ap_notification, AP, B) == (False, None)
    assert event_for_school(EventKind.ap_notification, {"kind": "final"}, A) == (False, None)  # covers nobody


def test_notices_sent_show_a_school_the_facts_of_its_own_messages_only():
    assert event_for_school(EventKind.notices_sent, SENT, A) == (
        True, {"messages": [{"kind": "initial", "attempt": 1, "message_id": "<a@x>", "school": A}]})
    assert event_for_school(EventKind.notices_sent, SENT, B) == (
        True, {"messages": [{"kind": "initial", "attempt": 2, "message_id": "<b@x>", "school": B}]})
    assert event_for_school(EventKind.notices_sent, SENT, "56EF") == (False, None)
    assert event_for_school(EventKind.notices_sent, {}, A) == (False, None)


def test_a_report_is_seen_without_its_payload():
    assert event_for_school(EventKind.reported, {"fields": {"reporter_name": "J. Jansen"}}, A) == (True, None)
    assert event_for_school(EventKind.reported, None, A) == (True, None)


@pytest.mark.parametrize("kind", sorted(set(EventKind) - SCHOOL_EVENT_KINDS))
def test_every_other_kind_is_the_processors_own(kind):
    assert event_for_school(kind, {"school": A, "schools": [A], "messages": [{"school": A}]}, A) == (False, None)


# --- the status a reader sees on a list: the most urgent of the clocks it may see -------------------


def test_a_list_shows_the_most_urgent_status_of_the_clocks_its_reader_sees():
    from datetime import UTC, datetime, timedelta

    from breachflow.api.views import deadline_status
    from breachflow.workflow.accounts import Account
    from breachflow.workflow.deadlines import Periods
    from breachflow.workflow.disclosure import Disclosure
    from breachflow.workflow.incident import AffectedSchool, ApKind, ApNotification, Incident

    discovered = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    handler = Account(1, "hanna", "handler")

    def at(state: str, informed_at=None, ap=()) -> Incident:
        schools = [AffectedSchool(7, A, "De Regenboog", 30, informed_at=informed_at)]
        return Incident(1, "DL-2026-00001", state, 1, "school", discovered, Disclosure(discovered_at=discovered),
                        schools, list(ap))

    periods = Periods()
    assert deadline_status(handler, at("containment"), discovered + timedelta(hours=1), periods) == "ok"
    assert deadline_status(handler, at("containment"), discovered + timedelta(hours=30), periods) == "overdue"
    assert deadline_status(handler, at("dismissed"), discovered + timedelta(hours=1), periods) is None  # no clock
    informed = at("containment", informed_at=discovered + timedelta(hours=1))
    assert deadline_status(handler, informed, discovered + timedelta(hours=2), periods) == "ok"  # the AP's still runs
    notified = at("containment", informed_at=discovered + timedelta(hours=1),
                  ap=[ApNotification(ApKind.final, "AP-1", discovered + timedelta(hours=2), [7])])
    assert deadline_status(handler, notified, discovered + timedelta(hours=90), periods) == "met"
