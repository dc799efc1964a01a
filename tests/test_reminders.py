"""Deadline reminders to handlers and managers: at each offset, when overdue, never twice."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from conftest import AP_FORM, CONFIRM, EVALUATE, add_school, evaluating
from freezegun import freeze_time
from notify_support import drain, smtp_context
from reading import whole_timeline
from smtp_server import SmtpServer

from breachflow.notifications import outbox, reminders
from breachflow.notifications.models import reminder_t
from breachflow.notifications.worker import notifications_context
from breachflow.workflow import accounts, actions, service
from breachflow.workflow.deadlines import Deadline, DeadlineKind

DISCOVERED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SCHOOL_DUE = DISCOVERED + timedelta(hours=24)
AP_DUE = DISCOVERED + timedelta(hours=72)


@pytest.mark.parametrize(
    ("at", "labels"),
    [
        (SCHOOL_DUE - timedelta(hours=12, seconds=1), []),
        (SCHOOL_DUE - timedelta(hours=12), ["12h"]),
        (SCHOOL_DUE - timedelta(hours=2), ["2h", "12h"]),
        (SCHOOL_DUE, ["2h", "12h"]),
        (SCHOOL_DUE + timedelta(seconds=1), ["overdue"]),
    ],
    ids=["before", "12h", "2h", "at-due", "overdue"],
)
def test_labels_due_at_each_offset(at, labels):
    deadline = Deadline(DeadlineKind.school_notice, SCHOOL_DUE)
    assert reminders.due_labels(deadline, at, [12, 2]) == labels


def test_a_met_deadline_needs_no_reminder():
    deadline = Deadline(DeadlineKind.ap_notice, AP_DUE, met_at=AP_DUE - timedelta(hours=1))
    assert reminders.due_labels(deadline, AP_DUE + timedelta(hours=5), [12, 2]) == []


@pytest.fixture
def watched(ctx):
    """A confirmed incident discovered at DISCOVERED; a handler and a manager with addresses."""
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.nl")
    accounts.add_user(ctx, username="max", role="manager", email="max@basisonline.nl")
    accounts.add_user(ctx, username="no-mail", role="handler")
    with freeze_time(DISCOVERED + timedelta(minutes=30)):
        ref = service.report(ctx, actor="hanna", source="monitoring", schools={"12AB": 5},
                             fields={"discovered_at": DISCOVERED}).reference
        service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
        service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    return ref


def reminders_on(ctx, ref):
    return [e.payload for e in whole_timeline(ctx, ref) if e.kind == "reminder_queued"]


def scan_at(ctx, moment) -> int:
    with freeze_time(moment):
        return reminders.scan(ctx, datetime.now(UTC))


def test_reminders_at_each_offset_and_overdue_never_twice(ctx, watched):
    assert scan_at(ctx, SCHOOL_DUE - timedelta(hours=13)) == 0
    assert scan_at(ctx, SCHOOL_DUE - timedelta(hours=12)) == 1
    assert scan_at(ctx, SCHOOL_DUE - timedelta(hours=11)) == 0  # the same offset: not again
    assert scan_at(ctx, SCHOOL_DUE - timedelta(hours=2)) == 1
    assert scan_at(ctx, SCHOOL_DUE - timedelta(hours=1)) == 0
    assert scan_at(ctx, SCHOOL_DUE + timedelta(minutes=1)) == 1
    assert scan_at(ctx, SCHOOL_DUE + timedelta(hours=5)) == 0
    sent = [(r["deadline"], r["offset"]) for r in reminders_on(ctx, watched)]
    assert sent == [("school_notice", "12h"), ("school_notice", "2h"), ("school_notice", "overdue")]

    rows = outbox.list_messages(ctx, status="pending").items
    assert [r.kind for r in rows] == ["reminder"] * 3  # no notifier in this context: only reminders


def test_a_scanner_that_was_down_sends_only_the_most_urgent(ctx, watched):
    assert scan_at(ctx, AP_DUE + timedelta(hours=1)) == 2  # school notice and AP, both overdue
    assert [(r["deadline"], r["offset"]) for r in reminders_on(ctx, watched)] == [
        ("school_notice", "overdue"), ("ap_notice", "overdue")]
    assert scan_at(ctx, AP_DUE + timedelta(hours=2)) == 0


def test_reminder_mail_goes_to_handlers_and_managers_with_an_address(ctx, watched):
    scan_at(ctx, AP_DUE - timedelta(hours=2))  # the school notice is overdue, the AP is 2 hours away
    claimed, _ = outbox.claim(ctx, 10, datetime.now(UTC) + timedelta(days=60))
    subjects = {}
    for item in claimed:
        assert item.recipients == ["hanna@basisonline.nl", "max@basisonline.nl"]
        subjects[item.id] = message_from_bytes(item.message, policy=policy.default)["Subject"]
    assert sorted(subjects.values()) == [f"Herinnering: melding bij de AP voor {watched}",
                                         f"VERLOPEN: school informeren voor {watched} (De Regenboog)"]


def test_scanners_running_at_once_queue_one_reminder(ctx, watched):
    moment = SCHOOL_DUE - timedelta(hours=12)
    start = threading.Barrier(3)

    def scanner() -> int:
        start.wait(timeout=10)
        return reminders.scan(ctx, moment)

    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(lambda _: scanner(), range(3)))
    assert sum(counts) == 1
    assert [(r["deadline"], r["offset"]) for r in reminders_on(ctx, watched)] == [("school_notice", "12h")]


def test_no_staff_address_is_on_the_timeline_not_silent(ctx):
    add_school(ctx)
    with freeze_time(DISCOVERED):
        ref = service.report(ctx, actor="hanna", source="monitoring", schools={"12AB": 5},
                             fields={"discovered_at": DISCOVERED}).reference
    scan_at(ctx, SCHOOL_DUE + timedelta(minutes=1))
    unsent = [e for e in whole_timeline(ctx, ref) if e.kind == "reminder_unsent"]
    assert [e.payload["offset"] for e in unsent] == ["overdue"]


def test_the_scanner_ignores_closed_and_dismissed_incidents(ctx):
    add_school(ctx)
    with freeze_time(DISCOVERED):
        ref = service.report(notifications_context(ctx), actor="hanna", source="monitoring", schools={"12AB": 5},
                             fields={"discovered_at": DISCOVERED}).reference
        service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
        service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna", fields={"dismissal_reason": "test"})
    assert scan_at(ctx, AP_DUE + timedelta(days=1)) == 0


def test_a_reminder_arrives_at_the_smtp_server(ctx, watched):
    server = SmtpServer()
    server.start()
    try:
        scan_at(ctx, SCHOOL_DUE - timedelta(hours=12))
        assert drain(smtp_context(ctx, server.port))["sent"] == 1
        (reminder,) = server.received
        assert sorted(reminder.recipients) == ["hanna@basisonline.nl", "max@basisonline.nl"]
        assert reminder.message["Subject"] == f"Herinnering: school informeren voor {watched} (De Regenboog)"
        assert "verloopt op 03-11-2026 10:00 (CET) (nog 12 uur)" in reminder.part("plain")
    finally:
        server.stop()


def test_a_scan_over_many_incidents_not_yet_due_is_one_query_and_writes_nothing(ctx, monkeypatch):
    """The scan reads what is due from an index and opens no write transaction when nothing is."""
    from conftest import reported
    from reading import statements

    add_school(ctx)
    writes: list[object] = []
    real = reminders.write_transaction
    monkeypatch.setattr(reminders, "write_transaction", lambda engine: writes.append(engine) or real(engine))
    cost = {}
    for more, total in ((5, 5), (35, 40)):
        for _ in range(more):
            reported(ctx, discovered_hours_ago=0.5)  # the first reminder falls due 11.5 hours from now
        with statements(ctx) as seen:
            assert reminders.scan(ctx, datetime.now(UTC)) == 0
        cost[total] = len(seen)
    assert writes == []
    assert cost == {5: 1, 40: 1}
    assert reminders.scan(ctx, datetime.now(UTC) + timedelta(hours=12)) == 40  # each school notice falls due


def test_a_deadline_moved_by_a_correction_is_reminded_of_again(ctx):
    """Reminders are kept per due time: after the overdue reminder, a later discovery time gives the
    deadline a new due time, and its reminders come again at 12 h, 2 h and when it is overdue."""
    from conftest import hours_ago, reported

    add_school(ctx)
    ref = reported(ctx, discovered_hours_ago=30)  # the school notice was due 6 hours ago
    now = datetime.now(UTC)
    assert reminders.scan(ctx, now) == 1
    service.update(ctx, reference=ref, actor="hanna", fields={"discovered_at": hours_ago(1)})  # due in 23 hours
    offsets = [e.payload["offset"] for e in whole_timeline(ctx, ref) if e.kind in ("reminder_queued",
                                                                                  "reminder_unsent")]
    assert offsets == ["overdue"]
    for later, label in ((11.5, "12h"), (21.5, "2h"), (23.5, "overdue")):
        assert reminders.scan(ctx, now + timedelta(hours=later)) == 1, label
        assert reminders.scan(ctx, now + timedelta(hours=later)) == 0  # once each
    offsets = [e.payload["offset"] for e in whole_timeline(ctx, ref) if e.kind in ("reminder_queued",
                                                                                  "reminder_unsent")]
    assert offsets == ["overdue", "12h", "2h", "overdue"]


def test_an_overdue_follow_up_action_is_reminded_of_once_each_even_after_the_closing(ctx):
    """Each open action is a deadline of its own (``follow_up:<number>``), reminded of by number and
    owner, also once the incident is closed (it is still work to do); a done one is not."""
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.nl")
    accounts.add_user(ctx, username="max", role="manager", email="max@basisonline.nl")
    start = datetime.now(UTC).replace(microsecond=0)
    due = start + timedelta(days=3)
    lesson = {"description": "Review every class page", "due": due.isoformat()}
    with freeze_time(start):
        ref = evaluating(ctx)
        service.fire(ctx, reference=ref, trigger="evaluated", actor="hanna", fields=EVALUATE, actions=[
            lesson | {"owner": "hanna"}, lesson | {"owner": "max"}, lesson | {"owner": "max", "blocking": True}])
        actions.settle(ctx, reference=ref, actor="hanna", number=3, status="done")
        service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="final", ap_reference="AP-1")
        assert service.fire(ctx, reference=ref, trigger="ap_notified", actor="hanna", fields=AP_FORM).state == "closed"

    assert scan_at(ctx, due - timedelta(hours=12, seconds=1)) == 0
    assert scan_at(ctx, due + timedelta(seconds=1)) == 2  # overdue: one per open action
    assert scan_at(ctx, due + timedelta(hours=1)) == 0  # never twice
    assert [(r["deadline"], r["action"], r["offset"]) for r in reminders_on(ctx, ref)] == [
        ("follow_up", 1, "overdue"), ("follow_up", 2, "overdue")]
    with ctx.engine.connect() as conn:
        keys = sorted(conn.execute(sa.select(reminder_t.c.deadline, reminder_t.c.offset_label)).all())
    assert [k for k, _ in keys] == ["follow_up:1", "follow_up:2"]
    claimed, _ = outbox.claim(ctx, 10, datetime.now(UTC) + timedelta(days=60))
    subjects = sorted(message_from_bytes(item.message, policy=policy.default)["Subject"] for item in claimed
                      if item.school_id is None)
    assert subjects == [f"VERLOPEN: vervolgactie 1 (eigenaar: hanna) voor {ref}",
                        f"VERLOPEN: vervolgactie 2 (eigenaar: max) voor {ref}"]

    actions.settle(ctx, reference=ref, actor="max", number=2, status="dropped")
    assert scan_at(ctx, due + timedelta(days=30)) == 0
