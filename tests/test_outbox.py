"""The outbox's claim and record, step by step: which messages a dispatcher takes and for how long,
what it learns without sending, and what the rows and the timeline say once it reports back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import CONFIRM, confirmed, reported
from notify_support import opened, outbox_row, outbox_rows
from reading import whole_timeline

from breachflow.notifications import outbox
from breachflow.notifications.models import outbox_t
from breachflow.notifications.outbox import Claimed, Outcome
from breachflow.workflow import queries, service
from breachflow.workflow.models import data_key_t, incident_t


def lease(ctx, at: datetime) -> datetime:
    return at + timedelta(seconds=ctx.settings.dispatch_lease_seconds)


def utc(moment: datetime | None) -> datetime | None:
    return moment and moment.replace(tzinfo=UTC)


def claimed_as(ctx, message: sa.Row, reference: str, brin: str, attempts: int) -> Claimed:
    recipients, mime = opened(ctx, message)
    return Claimed(message.id, reference, message.incident_id, message.school_id, brin, message.kind,
                   message.message_id, attempts, recipients, mime)


def incident_row(ctx, reference: str) -> sa.Row:
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(incident_t).where(incident_t.c.reference == reference)).one()


def test_a_claim_takes_the_oldest_due_messages_up_to_its_limit_and_holds_them_for_a_lease(mail, now):
    reference = confirmed(mail, brins=("12AB", "34CD", "56EF"))
    first, second, third = outbox_rows(mail)

    claimed, known = outbox.claim(mail, 2, now)

    assert known == []
    assert claimed == [claimed_as(mail, first, reference, "12AB", 1), claimed_as(mail, second, reference, "34CD", 1)]
    for message in (first, second):
        held = outbox_row(mail, message.id)
        assert (held.status, held.attempts, utc(held.claimed_until)) == ("sending", 1, lease(mail, now))
    left = outbox_row(mail, third.id)
    assert (left.status, left.attempts, left.claimed_until) == ("pending", 0, None)
    assert outbox.claim(mail, 2, now)[0] == [claimed_as(mail, third, reference, "56EF", 1)]
    assert outbox.claim(mail, 2, lease(mail, now) - timedelta(seconds=1)) == ([], []), "held until the lease ends"


def test_the_message_queued_first_is_claimed_first_whatever_its_due_time(mail, now):
    """Oldest first, by queueing order: a message that has waited out a short backoff does not
    overtake one queued before it for another school."""
    reference = confirmed(mail, brins=("12AB", "34CD"))
    earlier, later = outbox_rows(mail)
    with mail.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == earlier.id).values(next_attempt_at=now - timedelta(seconds=1)))
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == later.id).values(next_attempt_at=now - timedelta(hours=1)))

    assert outbox.claim(mail, 1, now)[0] == [claimed_as(mail, earlier, reference, "12AB", 1)]


@pytest.mark.postgres
def test_a_claim_skips_a_message_another_dispatcher_is_claiming_and_never_waits_for_it(mail, now, needs_postgres):
    """On PostgreSQL dispatchers claim side by side: a row another one holds locked is neither taken
    (it would be sent twice) nor waited for (one slow dispatcher would stall the others)."""
    reference = confirmed(mail, brins=("12AB", "34CD"))
    held, free = outbox_rows(mail)
    taken: list[list[Claimed]] = []
    with mail.engine.connect() as other, other.begin():  # another dispatcher, in the middle of its claim
        other.execute(sa.select(outbox_t.c.id).where(outbox_t.c.id == held.id).with_for_update())
        claiming = threading.Thread(target=lambda: taken.append(outbox.claim(mail, 10, now)[0]))
        claiming.start()
        claiming.join(timeout=10)
        assert not claiming.is_alive(), "the claim waited for the other dispatcher's lock"
    claiming.join()
    assert taken == [[claimed_as(mail, free, reference, "34CD", 1)]]


def destroy_key(ctx, message: sa.Row) -> None:
    """What retention does to the key that seals a message."""
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(data_key_t).where(data_key_t.c.id == message.data_key_id).values(wrapped=None))


def test_a_message_whose_key_is_destroyed_is_given_up_at_claim_and_holds_back_no_other(mail, now):
    gone = confirmed(mail, brins=("12AB",))
    kept = confirmed(mail, brins=("34CD",))
    (unreadable,), (readable,) = outbox_rows(mail, gone), outbox_rows(mail, kept)
    destroy_key(mail, unreadable)

    claimed, known = outbox.claim(mail, 10, now)

    assert claimed == [claimed_as(mail, readable, kept, "34CD", 1)]
    (given_up,) = known
    assert given_up.claimed == Claimed(unreadable.id, gone, unreadable.incident_id, unreadable.school_id, "12AB",
                                       unreadable.kind, unreadable.message_id, 1, [], b"")
    assert given_up.permanent and given_up.error == "the data key was destroyed (retention period ended)"
    assert outbox.record(mail, known, now) == {"sent": 0, "retry": 0, "dead": 1}
    dead = outbox_row(mail, unreadable.id)
    assert (dead.status, dead.last_error, dead.claimed_until) == ("dead", given_up.error, None)


def test_a_message_a_dead_dispatcher_had_delivered_is_recorded_and_not_sent_again(mail, now):
    reference = confirmed(mail, brins=("12AB", "34CD", "56EF"))
    delivered, in_flight, waiting = outbox_rows(mail)
    with mail.engine.begin() as conn:  # the third waits out a backoff: not due, not claimed
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == waiting.id).values(next_attempt_at=now + timedelta(days=1)))
    outbox.claim(mail, 10, now)
    outbox.accept(mail, [delivered.id], now)  # ... and then the dispatcher died

    later = lease(mail, now) + timedelta(seconds=1)
    claimed, known = outbox.claim(mail, 10, later)

    assert claimed == [claimed_as(mail, in_flight, reference, "34CD", 2)], "unconfirmed: sent again, same Message-ID"
    assert known == [Outcome(Claimed(delivered.id, reference, delivered.incident_id, delivered.school_id, "12AB",
                                     delivered.kind, delivered.message_id, 1, [], b""))]
    assert (outbox_row(mail, delivered.id).status, utc(outbox_row(mail, delivered.id).claimed_until)) == \
        ("accepted", lease(mail, later))
    assert utc(outbox_row(mail, in_flight.id).claimed_until) == lease(mail, later)
    assert outbox_row(mail, waiting.id).claimed_until is None, "a message not claimed gets no lease"

    assert outbox.record(mail, known, later) == {"sent": 1, "retry": 0, "dead": 0}
    sent = outbox_row(mail, delivered.id)
    assert (sent.status, utc(sent.sent_at), sent.claimed_until) == ("sent", now, None), "sent when the server took it"


def test_recording_counts_every_outcome_across_incidents_and_stamps_what_was_sent_now(mail, now):
    one = confirmed(mail, brins=("12AB",))
    two = confirmed(mail, brins=("34CD",))
    claimed, _ = outbox.claim(mail, 10, now)
    later = now + timedelta(seconds=5)

    assert outbox.record(mail, [Outcome(c) for c in claimed], later) == {"sent": 2, "retry": 0, "dead": 0}

    for reference in (one, two):
        (message,) = outbox_rows(mail, reference)
        assert (message.status, utc(message.sent_at), message.claimed_until) == ("sent", later, None)


def test_delivery_leaves_a_handlers_view_of_the_incident_current(mail, now):
    """The dispatcher writes to the timeline but changes nothing a handler edits: the version a
    handler's form holds stays valid, and "last changed" stays the handler's."""
    reference = confirmed(mail, brins=("12AB", "34CD"))
    before = incident_row(mail, reference)
    claimed, _ = outbox.claim(mail, 10, now)
    outbox.record(mail, [Outcome(claimed[0]), Outcome(claimed[1], error="550 no such user", permanent=True)], now)
    outbox.requeue(mail, ids=None, actor="hanna", now=now + timedelta(minutes=1))

    after = incident_row(mail, reference)
    assert (after.version, after.updated_at) == (before.version, before.updated_at)
    assert after.event_count == before.event_count + 3
    sent, dead, requeued = whole_timeline(mail, reference)[-3:]
    assert (sent.kind, dead.kind, requeued.kind) == ("notices_sent", "notices_dead", "notices_requeued")
    assert (sent.at, dead.at, requeued.at) == (now, now, now + timedelta(minutes=1)), "at the time the command was given"
    assert queries.get(mail, reference).version == before.version


def test_a_failure_is_kept_cut_to_a_thousand_characters_and_told_with_its_next_try(mail, now):
    reference = confirmed(mail, brins=("12AB", "34CD"))
    retried, given_up = outbox.claim(mail, 10, now)[0]
    answer = "451 " + "busy " * 300

    outbox.record(mail, [Outcome(retried, error=answer), Outcome(given_up, error=answer, permanent=True)], now)

    waiting, dead = outbox_row(mail, retried.id), outbox_row(mail, given_up.id)
    assert (waiting.status, waiting.last_error, waiting.claimed_until) == ("pending", answer[:1000], None)
    assert (dead.status, dead.last_error, dead.claimed_until) == ("dead", answer[:1000], None)
    failed, gone = whole_timeline(mail, reference)[-2:]
    assert failed.payload == {"messages": [{
        "message_id": retried.message_id, "kind": retried.kind, "attempt": 1, "school": "12AB", "error": answer,
        "next_attempt_at": utc(waiting.next_attempt_at).isoformat()}]}
    assert gone.payload == {"messages": [{"message_id": given_up.message_id, "kind": given_up.kind, "attempt": 1,
                                          "school": "34CD", "error": answer}]}


def informed(ctx, reference: str) -> dict[str, tuple[bool, bool]]:
    """Per school: (informed, told it must notify the AP itself)."""
    return {s.brin: (s.informed_at is not None, s.told_to_notify_ap_at is not None)
            for s in queries.get(ctx, reference).schools}


def test_only_a_message_the_server_took_informs_its_school(mail, now):
    reference = confirmed(mail, brins=("12AB", "34CD", "56EF"))
    sent, failed, dead = outbox.claim(mail, 10, now)[0]

    outbox.record(mail, [Outcome(sent), Outcome(failed, error="451 busy"),
                         Outcome(dead, error="550 no such user", permanent=True)], now)

    assert informed(mail, reference) == {"12AB": (True, False), "34CD": (False, False), "56EF": (False, False)}


def test_a_school_is_told_to_notify_the_ap_itself_only_by_the_notice_that_says_so(mail, now):
    reference = reported(mail, brins=("12AB", "34CD"))
    service.fire(mail, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(mail, reference=reference, trigger="confirm", actor="hanna",
                 fields=CONFIRM | {"cause_category": "user_error_admin", "cause_description": "A shared password"})
    must_notify, failed = outbox.claim(mail, 10, now)[0]
    assert must_notify.kind == failed.kind == "school_responsible"

    outbox.record(mail, [Outcome(must_notify), Outcome(failed, error="451 busy")], now)

    assert informed(mail, reference) == {"12AB": (True, True), "34CD": (False, False)}


def test_an_answer_naming_an_address_is_kept_without_it_whether_retried_or_given_up(mail, now):
    confirmed(mail, brins=("12AB", "34CD"))
    retried, given_up = outbox.claim(mail, 10, now)[0]
    answer = "451 4.7.1 <directie@12ab.example.nl>: greylisted, try again later"

    outbox.record(mail, [Outcome(retried, error=answer), Outcome(given_up, error=answer, permanent=True)], now)

    for message in (retried, given_up):
        kept = outbox_row(mail, message.id).last_error
        assert kept.startswith("451 4.7.1") and "@" not in kept and "directie" not in kept


def test_the_last_allowed_try_that_fails_is_a_dead_letter(mail, now):
    confirmed(mail)
    (message,) = outbox_rows(mail)
    with mail.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).values(attempts=mail.settings.dispatch_max_attempts - 1))
    (last,), _ = outbox.claim(mail, 10, now)
    assert last.attempts == mail.settings.dispatch_max_attempts

    assert outbox.record(mail, [Outcome(last, error="451 busy")], now) == {"sent": 0, "retry": 0, "dead": 1}
    assert outbox_row(mail, message.id).status == "dead"
