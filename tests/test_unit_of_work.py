"""The one door: every command goes through the unit of work, and what it leaves behind is exact."""

from __future__ import annotations

import pytest
from api_support import SCHOOL_A, build
from conftest import CONFIRM, add_school, hours_ago, reported
from notify_support import drain, smtp_context
from reading import whole_timeline

from breachflow.notifications import outbox
from breachflow.notifications.models import OutboxStatus
from breachflow.workflow import queries, service
from breachflow.workflow.lifecycle import State, Trigger
from breachflow.workflow.timeline import EventKind


def test_a_notice_sent_after_confirm_does_not_make_the_handlers_next_edit_stale(ctx, settings, smtp):
    api = build(ctx, settings)
    ref = api.report(discovered_at=hours_ago(2).isoformat())
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    confirmed = api.call("handler", "POST", f"/incidents/{ref}/triggers/confirm", json={"fields": CONFIRM}).json()
    assert drain(smtp_context(ctx, smtp.port))["sent"] == 1  # the notice goes out; the timeline records it
    assert whole_timeline(ctx, ref)[-1].kind == EventKind.notices_sent
    edited = api.call("handler", "PATCH", f"/incidents/{ref}",
                      json={"version": confirmed["version"], "fields": {"measures": "Sessions revoked"}})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == confirmed["version"] + 1


def test_a_concurrent_command_still_loses_on_the_version(ctx):
    add_school(ctx)
    ref = reported(ctx)
    first = service.fire(ctx, reference=ref, trigger="begin_triage", actor="a")
    service.add_note(ctx, reference=ref, actor="b", text="looked at it", expected_version=first.version)
    with pytest.raises(Exception, match="version"):
        service.add_note(ctx, reference=ref, actor="c", text="me too", expected_version=first.version)


def test_every_kind_and_status_written_is_one_of_the_named_ones(ctx, smtp):
    add_school(ctx)
    mail = smtp_context(ctx, smtp.port)
    ref = reported(mail)
    service.fire(mail, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(mail, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    drain(mail)
    service.send_update(mail, reference=ref, actor="hanna", message="More later")
    service.log_contact(mail, reference=ref, actor="hanna", brin=SCHOOL_A, channel="phone", summary="called")
    service.add_note(mail, reference=ref, actor="hanna", text="note")
    entries = whole_timeline(mail, ref)
    assert {e.kind for e in entries} <= set(EventKind)
    assert {e.from_state for e in entries if e.from_state} | {e.to_state for e in entries if e.to_state} <= set(State)
    assert {e.payload["trigger"] for e in entries if e.kind == EventKind.transition} <= set(Trigger)
    assert {r.status for r in outbox.list_messages(mail, status=None).items} <= set(OutboxStatus)
    requested = [e for e in entries if e.kind == EventKind.notice_requested]
    assert requested and requested[0].payload == {"message": "More later"}
    assert entries[entries.index(requested[0]) + 1].kind == EventKind.notices_queued  # the notifier answered it


def test_an_update_notice_nobody_can_receive_is_refused_and_leaves_nothing(ctx, smtp):
    add_school(ctx)
    mail = smtp_context(ctx, smtp.port)
    ref = reported(mail)
    service.fire(mail, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)  # no notifier: no notice
    before = queries.get(mail, ref)
    with pytest.raises(Exception, match="first notice"):
        service.send_update(mail, reference=ref, actor="hanna")
    assert queries.get(mail, ref).version == before.version
    assert whole_timeline(mail, ref)[-1].kind == EventKind.transition


def test_a_key_reused_for_another_report_names_no_incident(ctx, settings):
    api = build(ctx, settings)
    key = {"Idempotency-Key": "retry-1"}
    first = api.call("school_a", "POST", "/incidents", headers=key, json={"fields": {"summary": "Grades seen"}})
    ref = first.json()["reference"]
    other = api.call("school_a", "POST", "/incidents", headers=key, json={"fields": {"summary": "Something else"}})
    assert other.status_code == 409
    assert ref not in other.text  # the caller may no longer see it: the refusal must not confirm it exists
