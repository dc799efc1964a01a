"""Mail at its edges: rows planted before addresses had to be bare ASCII, a sender configured
loosely, a mailer that fails in a way nobody planned, a school removed while its notice waits, a
notice waiting out its backoff, and names that would break a greeting. One bad message never
holds back the others, and a school reads its messages in order."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

import pytest
import sqlalchemy as sa
from conftest import CONFIRM, CONTAIN, add_school, confirmed, reported
from notify_support import drain, outbox_rows, plant_contacts, smtp_context
from pydantic import ValidationError
from reading import whole_timeline

from breachflow.notifications import outbox
from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import SmtpMailer
from breachflow.notifications.mime import addresses
from breachflow.notifications.models import outbox_t
from breachflow.notifications.reminders import staff_addresses
from breachflow.workflow import accounts, queries, schools, service
from breachflow.workflow.config import Settings
from breachflow.workflow.models import user_t


@pytest.fixture
def mail_ctx(ctx, smtp):
    for brin, name in (("12AB", "De Regenboog"), ("34CD", "Het Anker"), ("56EF", "De Vlinder")):
        add_school(ctx, brin, name)
    return smtp_context(ctx, smtp.port)


def test_a_planted_non_ascii_contact_is_left_out_and_holds_back_no_other_school(mail_ctx, smtp):
    plant_contacts(mail_ctx, "12AB", ["dïrectie@regenböog.nl", "ib@12ab.example.nl"])
    plant_contacts(mail_ctx, "34CD", ["dïrectie@anker.nl", "a@b.nl\r\nBcc: evil@attacker.example"])
    reference = confirmed(mail_ctx, brins=("12AB", "34CD", "56EF"))
    assert drain(mail_ctx) == {"sent": 2, "retry": 0, "dead": 1}

    assert sorted(r for m in smtp.received for r in m.recipients) == ["directie@56ef.example.nl", "ib@12ab.example.nl"]
    assert all(m.message["Bcc"] is None for m in smtp.received)
    informed = {s.brin: s.informed_at is not None for s in queries.get(mail_ctx, reference).schools}
    assert informed == {"12AB": True, "34CD": False, "56EF": True}
    dead = next(r for r in outbox_rows(mail_ctx) if r.status == "dead")
    assert dead.last_error == "no usable recipient address"
    queued = next(e for e in whole_timeline(mail_ctx, reference) if e.kind == "notices_queued").payload["messages"]
    assert {m["school"]: m.get("unusable") for m in queued} == {"12AB": 1, "34CD": 2, "56EF": None}


def test_a_header_never_carries_an_address_that_is_not_bare():
    with pytest.raises(ValueError):
        addresses("To", [("", "a@b.nl\r\nBcc: evil@attacker.example")])
    with pytest.raises(ValueError):
        addresses("To", [("", "dïrectie@regenböog.nl")])


def test_a_planted_non_ascii_staff_address_gets_no_reminder_and_stops_no_other(ctx):
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@processor.example.nl")
    accounts.add_user(ctx, username="piet", role="manager", email="piet@processor.example.nl")
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(user_t).where(user_t.c.username == "piet").values(email="pïet@processor.example.nl"))
    assert staff_addresses(ctx) == ["hanna@processor.example.nl"]


class _BrokenFor(SmtpMailer):
    """The real SMTP mailer, except that one recipient makes it fail as no mailer should (a bug)."""

    def __init__(self, settings, address: str) -> None:
        super().__init__(settings)
        self.address = address

    async def send(self, sender, recipients, message):
        if self.address in recipients:
            raise RuntimeError("a mailer's bug")
        return await super().send(sender, recipients, message)


def test_a_mailer_failing_unexpectedly_fails_that_message_only_and_it_is_retried(mail_ctx, smtp):
    reference = confirmed(mail_ctx, brins=("12AB", "34CD", "56EF"))

    async def run():
        dispatcher = Dispatcher(mail_ctx, _BrokenFor(mail_ctx.settings, "directie@34cd.example.nl"))
        try:
            return await dispatcher.drain()
        finally:
            await dispatcher.mailer.close()

    assert asyncio.run(run()) == {"sent": 2, "retry": 1, "dead": 0}
    (failed,) = [r for r in outbox_rows(mail_ctx) if r.status == "pending"]
    assert failed.attempts == 1 and failed.last_error == "RuntimeError: a mailer's bug"
    assert failed.next_attempt_at > datetime.now(UTC)
    kinds = [e.kind for e in whole_timeline(mail_ctx, reference)]
    assert "notices_sent" in kinds and "notices_failed" in kinds


@pytest.mark.parametrize("mail_from", ["privacy@bäsisonline.nl", "Privacy, BasisOnline <privacy@basisonline.nl>",
                                       "privacy@basisonline.nl, evil@example.com", "privacy", "<>"])
def test_the_sender_must_be_one_ascii_address(mail_from):
    with pytest.raises(ValidationError, match="mail_from"):
        Settings(mail_from=mail_from)


@pytest.mark.parametrize("mail_from", ["privacy@basisonline.nl", "Privacy BasisOnline <privacy@basisonline.nl>",
                                       '"Privacy, BasisOnline" <privacy@basisonline.nl>'])
def test_a_sender_may_name_itself(mail_from):
    assert Settings(mail_from=mail_from).sender[1] == "privacy@basisonline.nl"


def test_a_school_removed_before_its_first_notice_went_out_is_sent_nothing_and_hears_anew_when_added_again(
        mail_ctx, smtp):
    reference = confirmed(mail_ctx, brins=("12AB", "34CD"))
    service.update(mail_ctx, reference=reference, actor="hanna", remove_schools=["34CD"],
                   reason="not affected after all")
    drain(mail_ctx)
    assert [r for m in smtp.received for r in m.recipients] == ["directie@12ab.example.nl"]
    cancelled = next(r for r in outbox_rows(mail_ctx) if r.status == "dead")
    assert cancelled.last_error == "the school was removed from the incident; not sent"

    service.update(mail_ctx, reference=reference, actor="hanna", schools={"34CD": 12})
    drain(mail_ctx)
    (first,) = [m.message for m in smtp.received if "directie@34cd.example.nl" in m.recipients]
    assert first["In-Reply-To"] is None, "a first notice, starting the school's thread"
    assert {s.brin: s.informed_at is not None for s in queries.get(mail_ctx, reference).schools} == \
        {"12AB": True, "34CD": True}


def test_an_update_never_overtakes_a_first_notice_waiting_out_its_backoff(mail_ctx, smtp):
    smtp.handler.data_replies = ["451 4.3.0 try again later"]
    reference = reported(mail_ctx, brins=("12AB",))
    service.fire(mail_ctx, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(mail_ctx, reference=reference, trigger="confirm", actor="hanna", fields=CONFIRM)
    assert drain(mail_ctx)["retry"] == 1
    service.fire(mail_ctx, reference=reference, trigger="contained", actor="hanna", fields=CONTAIN)
    assert drain(mail_ctx) == {"sent": 0, "retry": 0, "dead": 0}, "the update waits for the first notice"
    assert smtp.received == []

    with mail_ctx.engine.begin() as conn:  # the backoff is over
        conn.execute(sa.update(outbox_t).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    drain(mail_ctx)
    first, update = (m.message for m in smtp.received)
    assert first["In-Reply-To"] is None and update["In-Reply-To"] == first["Message-ID"]


@pytest.mark.parametrize("name", ["De Regenboog\r\nBcc: x@y.nl", "De\u202eRegenboog", "\u200bRegenboog", "De\tRegenboog"])
def test_a_school_name_or_contact_person_is_one_line_of_visible_text(api, name):
    response = api.call("admin", "POST", "/schools", json={"brin": "56EF", "name": name, "contacts": ["i@v.nl"]})
    assert response.status_code == 422 and "name" in response.text, response.text
    person = {"brin": "56EF", "name": "De Vlinder", "contacts": ["i@v.nl"], "contact_person": {"name": name}}
    response = api.call("admin", "POST", "/schools", json=person)
    assert response.status_code == 422 and "contact_person" in response.text, response.text


def test_the_backoff_of_an_absurd_attempt_count_is_the_cap(ctx):
    assert outbox.backoff(5000, ctx) <= timedelta(seconds=ctx.settings.dispatch_retry_max_seconds)


def test_a_command_line_argument_that_is_no_utf8_is_one_line_and_exit_2(cli):
    code, out, err = cli("school", "add", "--brin", "56EF", "--name", os.fsdecode(b"Bad\xffname"), "--contact", "i@v.nl")
    assert code == 2 and err.strip() == "breachflow: error: argument 6 is not UTF-8 text" and out == ""


def test_a_dead_first_notice_retried_after_the_address_is_corrected_goes_to_the_new_address(mail_ctx, smtp):
    smtp.handler.refuse = {"directie@34cd.example.nl": "550 5.1.1 no such user"}
    reference = confirmed(mail_ctx, brins=("12AB", "34CD"))
    assert drain(mail_ctx)["dead"] == 1
    (dead,) = [r for r in outbox_rows(mail_ctx) if r.status == "dead"]
    schools.update(mail_ctx, brin="34CD", changes={"contacts": ["secretariaat@34cd.example.nl"]})

    assert outbox.requeue(mail_ctx, ids=[dead.id], actor="hanna", now=datetime.now(UTC)) == 1
    drain(mail_ctx)
    (retried,) = [m for m in smtp.received if "secretariaat@34cd.example.nl" in m.recipients]
    assert retried.recipients == ["secretariaat@34cd.example.nl"]
    parsed = BytesParser(policy=policy.strict).parsebytes(retried.raw)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["secretariaat@34cd.example.nl"]
    assert parsed["Message-ID"] == dead.message_id and parsed["In-Reply-To"] is None, "still the first notice"
    assert {s.brin: s.informed_at is not None for s in queries.get(mail_ctx, reference).schools}["34CD"]
    requeued = next(e for e in whole_timeline(mail_ctx, reference) if e.kind == "notices_requeued")
    assert requeued.payload["readdressed"] == [{"message_id": dead.message_id, "before": ["directie@34cd.example.nl"],
                                                "after": ["secretariaat@34cd.example.nl"]}]
