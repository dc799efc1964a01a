"""Retrying dead letters (``breachflow outbox retry``): what comes back, what is refused, and what the
timeline says. A dead letter is made here the way the dispatcher leaves one: ``dead``, its tries
used up, its last answer kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from conftest import confirmed
from notify_support import opened, outbox_row, outbox_rows, plant_contacts
from reading import whole_timeline

from breachflow.notifications import outbox
from breachflow.notifications.models import outbox_t
from breachflow.workflow import schools
from breachflow.workflow.errors import Conflict, NotFound
from breachflow.workflow.models import data_key_t


def given_up(ctx, *ids: int, status: str = "dead") -> None:
    """Leave the messages ``ids`` as the dispatcher leaves a dead letter (or in ``status``)."""
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_(ids)).values(
            status=status, attempts=8, last_error="550 5.1.1 mailbox unavailable",
            next_attempt_at=datetime.now(UTC) + timedelta(days=30)))


def requeued_events(ctx, reference: str) -> list:
    return [e for e in whole_timeline(ctx, reference) if e.kind == "notices_requeued"]


def test_a_retried_dead_letter_is_due_at_once_with_its_tries_and_last_answer_forgotten(mail, now):
    confirmed(mail, brins=("12AB", "34CD"))
    retried, other = outbox_rows(mail)
    given_up(mail, retried.id, other.id)

    assert outbox.requeue(mail, ids=[retried.id], actor="hanna", now=now) == 1

    again = outbox_row(mail, retried.id)
    assert (again.status, again.attempts, again.last_error) == ("pending", 0, None)
    assert again.next_attempt_at.replace(tzinfo=UTC) == now
    assert outbox_row(mail, other.id).status == "dead", "a dead letter not named stays dead"
    claimed, _ = outbox.claim(mail, 10, now)
    assert [c.id for c in claimed] == [retried.id]
    assert claimed[0].attempts == 1, "its tries count from the retry"


def test_retrying_all_takes_back_every_dead_letter_and_nothing_else(mail, now):
    confirmed(mail, brins=("12AB", "34CD", "56EF"))
    dead, waiting, sent = outbox_rows(mail)
    given_up(mail, dead.id)
    given_up(mail, sent.id, status="sent")
    before = outbox_row(mail, waiting.id)

    assert outbox.requeue(mail, ids=None, actor="hanna", now=now) == 1

    assert outbox_row(mail, dead.id).status == "pending"
    assert outbox_row(mail, sent.id).status == "sent" and outbox_row(mail, sent.id).attempts == 8
    assert outbox_row(mail, waiting.id) == before, "a message still waiting is left as it is"
    assert outbox.requeue(mail, ids=None, actor="hanna", now=now) == 0, "nothing is dead any more"


def test_naming_a_message_that_is_no_dead_letter_names_it_and_retries_none(mail, now):
    reference = confirmed(mail, brins=("12AB", "34CD"))
    dead, waiting = outbox_rows(mail)
    given_up(mail, dead.id)

    with pytest.raises(NotFound) as refused:
        outbox.requeue(mail, ids=[999_999, dead.id, waiting.id], actor="hanna", now=now)

    assert str(refused.value) == f"no dead letter with id {waiting.id}, 999999"
    assert outbox_row(mail, dead.id).status == "dead"
    assert requeued_events(mail, reference) == []


def test_a_dead_letter_named_twice_is_retried_once(mail, now):
    reference = confirmed(mail)
    (dead,) = outbox_rows(mail)
    given_up(mail, dead.id)

    assert outbox.requeue(mail, ids=[dead.id, dead.id], actor="hanna", now=now) == 1
    assert [e.payload["messages"] for e in requeued_events(mail, reference)] == [[dead.message_id]]


def test_naming_no_message_retries_nothing(mail, now):
    reference = confirmed(mail)
    (dead,) = outbox_rows(mail)
    given_up(mail, dead.id)

    assert outbox.requeue(mail, ids=[], actor="hanna", now=now) == 0
    assert outbox_row(mail, dead.id).status == "dead" and requeued_events(mail, reference) == []


def emptied(ctx, message_id: int, how: str) -> None:
    """What retention leaves of a message: its content gone, or the key that opens it."""
    with ctx.engine.begin() as conn:
        if how == "content":
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id == message_id).values(sealed=None))
        else:
            key = conn.execute(sa.select(outbox_t.c.data_key_id).where(outbox_t.c.id == message_id)).scalar_one()
            conn.execute(sa.update(data_key_t).where(data_key_t.c.id == key).values(wrapped=None))


@pytest.mark.parametrize("how", ["content", "key"])
def test_a_dead_letter_whose_content_is_destroyed_is_refused_by_id_and_left_out_of_all(mail, how, now):
    confirmed(mail, brins=("12AB",))
    genuine_reference = confirmed(mail, brins=("34CD",))
    gone, genuine = outbox_rows(mail)
    given_up(mail, gone.id, genuine.id)
    emptied(mail, gone.id, how)

    with pytest.raises(Conflict) as refused:
        outbox.requeue(mail, ids=[genuine.id, gone.id], actor="hanna", now=now)
    assert str(refused.value).startswith(f"dead letter {gone.id}: its content was destroyed")
    assert outbox_row(mail, genuine.id).status == "dead", "a refused retry takes back none of what it names"

    assert outbox.requeue(mail, ids=None, actor="hanna", now=now) == 1
    assert (outbox_row(mail, gone.id).status, outbox_row(mail, genuine.id).status) == ("dead", "pending")
    assert len(requeued_events(mail, genuine_reference)) == 1


def test_each_incident_tells_on_its_own_timeline_which_of_its_messages_came_back(mail, now):
    first = confirmed(mail, brins=("12AB", "34CD"))
    second = confirmed(mail, brins=("56EF",))
    one, two = outbox_rows(mail, first)
    (three,) = outbox_rows(mail, second)
    given_up(mail, one.id, two.id, three.id)

    assert outbox.requeue(mail, ids=None, actor="hanna", now=now) == 3

    (told_first,) = requeued_events(mail, first)
    (told_second,) = requeued_events(mail, second)
    assert told_first.payload == {"messages": [one.message_id, two.message_id]}, "unchanged contacts: no readdressing"
    assert told_second.payload == {"messages": [three.message_id]}
    assert told_first.actor == told_second.actor == "hanna"


def recipients(ctx, message: sa.Row) -> list[str]:
    return opened(ctx, message)[0]


def headers(ctx, message: sa.Row):
    return message_from_bytes(opened(ctx, message)[1])


def test_a_retried_notice_goes_to_the_schools_contacts_as_they_are_now(mail, now):
    reference = confirmed(mail, brins=("12AB", "34CD"))
    corrected, unchanged = outbox_rows(mail)
    given_up(mail, corrected.id, unchanged.id)
    schools.update(mail, brin="12AB", changes={"contacts": ["secretariaat@12ab.example.nl", "ib@12ab.example.nl"]})

    assert outbox.requeue(mail, ids=None, actor="hanna", now=now) == 2

    now_to = ["secretariaat@12ab.example.nl", "ib@12ab.example.nl"]
    assert recipients(mail, outbox_row(mail, corrected.id)) == now_to
    assert headers(mail, outbox_row(mail, corrected.id))["To"] == ", ".join(now_to)
    assert recipients(mail, outbox_row(mail, unchanged.id)) == ["directie@34cd.example.nl"]
    (told,) = requeued_events(mail, reference)
    assert told.payload["readdressed"] == [{"message_id": corrected.message_id,
                                            "before": ["directie@12ab.example.nl"], "after": now_to}]


def test_a_school_left_without_a_usable_address_keeps_the_old_one(mail, now):
    reference = confirmed(mail)
    (dead,) = outbox_rows(mail)
    given_up(mail, dead.id)
    plant_contacts(mail, "12AB", ["dïrectie@regenböog.nl"])  # as rows from before addresses had to be bare ASCII

    assert outbox.requeue(mail, ids=[dead.id], actor="hanna", now=now) == 1

    assert recipients(mail, outbox_row(mail, dead.id)) == ["directie@12ab.example.nl"]
    assert requeued_events(mail, reference)[0].payload == {"messages": [dead.message_id]}


def test_every_destroyed_dead_letter_named_is_named_back(mail, now):
    confirmed(mail, brins=("12AB", "34CD"))
    first, second = outbox_rows(mail)
    given_up(mail, first.id, second.id)
    emptied(mail, first.id, "content")
    emptied(mail, second.id, "content")

    with pytest.raises(Conflict) as refused:
        outbox.requeue(mail, ids=[first.id, second.id], actor="hanna", now=now)
    assert str(refused.value).startswith(f"dead letter {first.id}, {second.id}: ")
