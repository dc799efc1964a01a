"""Scenarios: real incidents walked through the lifecycle, with the timeline they leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import AP_FORM, CONFIRM, CONTAIN, EVALUATE, REMEDIATE, RESTORE, VERIFY, add_school, evaluating, reported
from notify_support import drain, smtp_context
from reading import all_incidents, whole_timeline

from breachflow.notifications import facts
from breachflow.workflow import accounts, actions, audit, queries, schools, service
from breachflow.workflow.deadlines import AMSTERDAM, local
from breachflow.workflow.errors import Conflict, GuardFailed, InvalidInput
from breachflow.workflow.responsibility import Responsibility


def transitions_of(ctx, reference):
    return [
        (e.payload["trigger"], e.from_state, e.to_state)
        for e in whole_timeline(ctx, reference)
        if e.kind == "transition"
    ]


def test_processor_caused_breach_with_data_lost_runs_the_whole_way(ctx):
    add_school(ctx)
    ref = reported(ctx)
    fire = lambda trigger, **fields: service.fire(ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)

    fire("begin_triage")
    fire("confirm", **CONFIRM)
    fire("contained", **CONTAIN)
    after_remediation = fire("remediated", **(REMEDIATE | {"data_lost_or_altered": True}))
    assert after_remediation.state == "backup_restore"
    assert after_remediation.responsibility is Responsibility.processor
    fire("restored", **RESTORE)
    fire("verified", **VERIFY)
    service.log_contact(ctx, reference=ref, actor="hanna", brin="12AB", channel="phone",
                        summary="Director informed of the cause and the fix")
    assert fire("evaluated", **EVALUATE).state == "ap_notification"
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="final", ap_reference="AP-2026-1234")
    closed = fire("ap_notified", **AP_FORM)

    assert closed.state == "closed"
    assert transitions_of(ctx, ref) == [
        ("begin_triage", "reported", "triage"),
        ("confirm", "triage", "containment"),
        ("contained", "containment", "remediation"),
        ("remediated", "remediation", "backup_restore"),
        ("restored", "backup_restore", "verification"),
        ("verified", "verification", "evaluation"),
        ("evaluated", "evaluation", "ap_notification"),
        ("ap_notified", "ap_notification", "closed"),
    ]
    events = whole_timeline(ctx, ref)
    assert [e.kind for e in events] == [
        "reported", "transition", "transition", "transition", "transition", "transition",
        "transition", "contact", "transition", "ap_notification", "transition",
    ]
    assert [e.seq for e in events] == list(range(1, 12))
    assert all(e.actor == "hanna" for e in events[1:])
    confirm_event = events[2]
    assert confirm_event.payload["changes"]["summary"] == [None, CONFIRM["summary"]]
    assert events[9].payload["ap_reference"] == "AP-2026-1234"
    report = audit.verify(ctx)
    assert (report.events, report.findings) == (11, [])


def test_school_caused_breach_skips_ap_notification_and_restore(ctx):
    add_school(ctx)
    ref = reported(ctx)
    fire = lambda trigger, **fields: service.fire(ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)

    fire("begin_triage")
    fire("confirm", **CONFIRM)
    fire("contained", **CONTAIN)
    remediated = fire("remediated", **(REMEDIATE | {"cause_category": "user_error_employee",
                                                   "cause_description": "A teacher shared a login"}))
    assert remediated.state == "verification"
    assert remediated.responsibility is Responsibility.school
    fire("verified", **VERIFY)
    service.log_contact(ctx, reference=ref, actor="hanna", brin="12AB", channel="email",
                        summary="Explained the cause", told_must_notify_ap=True)
    closed = fire("evaluated", **EVALUATE)

    assert closed.state == "closed"
    assert transitions_of(ctx, ref) == [
        ("begin_triage", "reported", "triage"),
        ("confirm", "triage", "containment"),
        ("contained", "containment", "remediation"),
        ("remediated", "remediation", "verification"),
        ("verified", "verification", "evaluation"),
        ("evaluated", "evaluation", "closed"),
    ]
    contact = next(e for e in whole_timeline(ctx, ref) if e.kind == "contact")
    assert contact.payload["told_must_notify_ap"] is True


def test_dismissed_report_stays_in_the_register_and_can_be_reopened(ctx):
    add_school(ctx)
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    dismissed = service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna",
                             fields={"dismissal_reason": "Test account of the school; no real pupils"})

    assert dismissed.state == "dismissed"
    assert [i.reference for i in all_incidents(ctx, state="dismissed")] == [ref]
    events = whole_timeline(ctx, ref)
    assert [(e.kind, e.from_state, e.to_state) for e in events] == [
        ("reported", None, "reported"),
        ("transition", "reported", "triage"),
        ("transition", "triage", "dismissed"),
    ]
    assert events[2].payload["changes"]["dismissal_reason"][1].startswith("Test account")

    reopened = service.reopen(ctx, reference=ref, actor="manon", reason="The school found real pupil data")
    assert reopened.state == "triage"
    assert whole_timeline(ctx, ref)[-1].actor == "manon"


def test_every_reopening_needs_its_own_reason(ctx):
    add_school(ctx)
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna", fields={"dismissal_reason": "A test mail"})
    service.reopen(ctx, reference=ref, actor="hanna", reason="The same mail reached real parents")
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna", fields={"dismissal_reason": "Only staff"})
    with pytest.raises(InvalidInput) as refused:
        service.fire(ctx, reference=ref, trigger="reopen", actor="hanna")  # the old reason is not this one's
    assert [f.field for f in refused.value.fields] == ["reopen_reason"]
    assert queries.get(ctx, ref).state == "dismissed"
    service.reopen(ctx, reference=ref, actor="hanna", reason="A parent forwarded it after all")


# --- follow-up actions of the evaluation (seed 6a) --------------------------------------------


def in_days(days: int) -> str:
    """A due date (a date alone: the end of that day in Amsterdam) ``days`` from now."""
    return (datetime.now(UTC) + timedelta(days=days)).astimezone(AMSTERDAM).date().isoformat()


LESSONS = [
    {"description": "Add the group check to the release checklist", "owner": "hanna", "due": in_days(14),
     "blocking": True},
    {"description": "Train the portal team on permission reviews", "owner": "max", "due": in_days(60)},
]


@pytest.fixture
def staff(ctx):
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.nl")
    accounts.add_user(ctx, username="max", role="manager")


def test_evaluated_records_the_actions_and_closed_waits_for_the_blocking_one(ctx, smtp, staff):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["directie@regenboog.nl"])
    schools.add(ctx, brin="34CD", name="Het Anker", contacts=["info@anker.nl"], language="en")
    ref = evaluating(ctx, brins=("12AB", "34CD"))
    mail = smtp_context(ctx, smtp.port)
    fire = lambda trigger, **kw: service.fire(mail, reference=ref, trigger=trigger, actor="hanna", **kw)

    evaluated = fire("evaluated", fields=EVALUATE, actions=LESSONS)
    assert evaluated.state == "ap_notification"
    assert [(a.number, a.owner, a.blocking, a.status) for a in evaluated.actions] == [
        (1, "hanna", True, "open"), (2, "max", False, "open")]
    assert local(evaluated.actions[0].due_at).strftime("%H:%M:%S") == "23:59:59"  # a date: the end of that day
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="final", ap_reference="AP-2026-1234")

    with pytest.raises(GuardFailed) as refused:  # the blocking action is open
        fire("ap_notified", fields=AP_FORM)
    assert [p.field for p in refused.value.fields] == ["actions.1"]
    assert "blocking follow-up action 1 (owner hanna) is still open" in refused.value.fields[0].problem
    assert queries.get(ctx, ref).state == "ap_notification"

    actions.settle(ctx, reference=ref, actor="hanna", number=1, status="done", note="Checklist item 14")
    closed = fire("ap_notified", fields=AP_FORM)  # the open non-blocking one does not block
    assert closed.state == "closed"

    kinds = [e.kind for e in whole_timeline(ctx, ref)]
    assert kinds.index("actions_recorded") < kinds.index("action_settled") < len(kinds) - 2
    recorded = next(e for e in whole_timeline(ctx, ref) if e.kind == "actions_recorded")
    assert [a["description"] for a in recorded.payload["actions"]] == [a["description"] for a in LESSONS]
    settled = next(e for e in whole_timeline(ctx, ref) if e.kind == "action_settled")
    assert settled.payload == {"number": 1, "status": "done", "note": "Checklist item 14"}

    # the closing notice lists every action, in each school's language
    drain(mail)
    closing = {m.recipients[0]: m for m in smtp.received
               if m.part("plain").splitlines()[0] in (f"Datalek {ref} is afgesloten", f"Data breach {ref} is closed")}
    dutch, english = closing["directie@regenboog.nl"].part("plain"), closing["info@anker.nl"].part("plain")
    due = facts.when(closed.actions[1].due_at, "nl")
    assert "1. Add the group check to the release checklist (eigenaar: hanna, uiterlijk" in dutch
    assert f"2. Train the portal team on permission reviews (eigenaar: max, uiterlijk {due}, status: open)" in dutch
    assert "status: gedaan" in dutch
    assert "1. Add the group check to the release checklist (owner: hanna, due" in english
    assert "status: done" in english and "status: open" in english
    assert "<li>2. Train the portal team" in closing["info@anker.nl"].part("html")

    # the open non-blocking action is still open work: a deadline after the closing
    open_ones = queries.open_deadline_page(ctx).items
    assert [(d.reference, d.deadline.kind, d.deadline.action_number, d.owner) for d in open_ones] == [
        (ref, "follow_up", 2, "max")]
    actions.settle(ctx, reference=ref, actor="hanna", number=2, status="dropped", note="Covered by the yearly training")
    assert queries.open_deadline_page(ctx).items == []
    reopened = service.reopen(ctx, reference=ref, actor="hanna", reason="Another class page found")
    assert [(a.number, a.status) for a in reopened.actions] == [(1, "done"), (2, "dropped")]  # kept


def test_a_school_caused_breach_settles_its_blocking_actions_before_evaluated(ctx, staff):
    add_school(ctx)
    ref = evaluating(ctx, school_caused=True)
    fire = lambda **kw: service.fire(ctx, reference=ref, trigger="evaluated", actor="hanna", fields=EVALUATE, **kw)

    with pytest.raises(GuardFailed) as refused:  # evaluated goes straight to closed
        fire(actions=LESSONS[:1])
    assert [p.field for p in refused.value.fields] == ["actions.1"]
    assert queries.get(ctx, ref).actions == []  # nothing of the refused command is stored

    actions.add(ctx, reference=ref, actor="hanna", actions=LESSONS[:1])
    with pytest.raises(GuardFailed):
        fire()
    actions.settle(ctx, reference=ref, actor="hanna", number=1, status="done")
    closed = fire(actions=LESSONS[1:])
    assert closed.state == "closed"
    assert [(a.number, a.status) for a in closed.actions] == [(1, "done"), (2, "open")]
    with pytest.raises(Conflict):  # added from evaluation until it is closed
        actions.add(ctx, reference=ref, actor="hanna", actions=LESSONS[1:])
