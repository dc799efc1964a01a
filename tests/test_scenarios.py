"""Scenarios: real incidents walked through the lifecycle, with the timeline they leave."""

from __future__ import annotations

import pytest
from conftest import AP_FORM, CONFIRM, CONTAIN, EVALUATE, REMEDIATE, RESTORE, VERIFY, add_school, reported
from reading import all_incidents, whole_timeline

from breachflow.workflow import audit, queries, service
from breachflow.workflow.errors import InvalidInput
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
