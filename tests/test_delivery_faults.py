"""Delivery when things go wrong: the server down, busy, refusing, or the dispatcher killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import add_school, confirmed
from notify_support import drain, due_now, outbox_row, settings_env, smtp_context, with_notices
from reading import all_incidents, whole_timeline
from smtp_server import SmtpServer

from breachflow.api.cli import main
from breachflow.notifications import outbox
from breachflow.notifications.models import outbox_t
from breachflow.workflow import queries, schools, service

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


def timeline_kinds(ctx, ref):
    return [e.kind for e in whole_timeline(ctx, ref)]


def test_server_down_then_up_delivers_once_after_retries(ctx, smtp):
    add_school(ctx)
    mail = smtp_context(ctx, smtp.port)
    ref = confirmed(mail)
    assert drain(mail) == {"sent": 0, "retry": 1, "dead": 0}  # connection refused
    due_now(mail)
    assert drain(mail)["retry"] == 1
    smtp.start()
    due_now(mail)
    assert drain(mail) == {"sent": 1, "retry": 0, "dead": 0}
    assert len(smtp.received) == 1
    assert timeline_kinds(mail, ref)[-3:] == ["notices_failed", "notices_failed", "notices_sent"]
    failed = whole_timeline(mail, ref)[-3].payload["messages"][0]
    assert failed["attempt"] == 1 and "SMTPConnect" in failed["error"]


def test_a_message_failing_temporarily_is_a_dead_letter_exactly_at_the_maximum_attempt(ctx, smtp):
    """Not before the last attempt, and not retried forever: the server stays down."""
    add_school(ctx)
    mail = smtp_context(ctx, smtp.port, dispatch_max_attempts=3)
    ref = confirmed(mail)
    outcomes = []
    for _ in range(4):
        outcomes.append(drain(mail))
        due_now(mail)
    assert outcomes == [{"sent": 0, "retry": 1, "dead": 0}, {"sent": 0, "retry": 1, "dead": 0},
                        {"sent": 0, "retry": 0, "dead": 1}, {"sent": 0, "retry": 0, "dead": 0}]
    (row,) = outbox.list_messages(mail, status="dead").items
    assert row.attempts == 3 and "SMTPConnect" in row.last_error
    assert timeline_kinds(mail, ref)[-3:] == ["notices_failed", "notices_failed", "notices_dead"]


def test_a_4xx_answer_is_retried_with_backoff_then_succeeds(ctx, smtp):
    add_school(ctx)
    smtp.handler.data_replies = ["451 4.3.0 Try again later"]
    smtp.start()
    mail = smtp_context(ctx, smtp.port, dispatch_retry_seconds=30)
    confirmed(mail)
    before = datetime.now(UTC)
    assert drain(mail) == {"sent": 0, "retry": 1, "dead": 0}
    after = datetime.now(UTC)
    (row,) = outbox.list_messages(mail, status="pending").items
    assert row.attempts == 1 and "451" in row.last_error
    assert before + timedelta(seconds=15) <= row.next_attempt_at <= after + timedelta(seconds=30)  # jittered
    assert drain(mail) == {"sent": 0, "retry": 0, "dead": 0}  # not due yet: backoff holds it
    due_now(mail)
    assert drain(mail)["sent"] == 1
    assert len(smtp.received) == 1


def test_each_wait_lies_between_half_the_doubled_capped_delay_and_all_of_it(ctx):
    mail = replace(ctx, settings=ctx.settings.model_copy(
        update={"dispatch_retry_seconds": 30, "dispatch_retry_max_seconds": 600, "dispatch_max_attempts": 8}))
    for attempts in range(1, 9):
        planned = min(30 * 2 ** (attempts - 1), 600)  # 30, 60, … 480, then the cap
        waits = [outbox.backoff(attempts, mail).total_seconds() for _ in range(500)]
        assert all(planned / 2 <= wait <= planned for wait in waits), (attempts, min(waits), max(waits))
        assert len(set(waits)) > 400, attempts  # drawn, not fixed


@pytest.mark.slow  # a thousand notices
def test_a_thousand_notices_that_failed_at_once_come_back_spread_out(ctx, smtp):
    """A platform-wide notice that met an outage: its retries do not return to the server in lockstep."""
    brins = [f"{n % 100:02d}{chr(65 + n // 100)}Z" for n in range(1000)]
    for brin in brins:
        schools.add(ctx, brin=brin, name=f"School {brin}", contacts=[f"info@{brin.lower()}.example.nl"])
    mail = smtp_context(ctx, smtp.port, dispatch_retry_seconds=30)  # the server is down
    confirmed(mail, brins=tuple(brins))
    before = datetime.now(UTC)
    assert drain(mail) == {"sent": 0, "retry": 1000, "dead": 0}
    after = datetime.now(UTC)
    with mail.engine.connect() as conn:
        due = sorted(conn.execute(sa.select(outbox_t.c.next_attempt_at)).scalars())
    assert len(due) == 1000
    assert before + timedelta(seconds=15) <= due[0] and due[-1] <= after + timedelta(seconds=30)
    assert len(set(due)) >= 900  # many distinct moments…
    assert due[-1] - due[0] >= timedelta(seconds=5)  # …over at least a third of the window [15 s, 30 s]
    seconds = Counter(moment.replace(microsecond=0) for moment in due)
    assert max(seconds.values()) <= 200  # no second takes more than a fifth (uniform: about 1/15 each)


def test_a_5xx_answer_is_a_dead_letter_on_the_timeline_and_in_outbox_list(ctx, smtp, settings, monkeypatch, capsys):
    add_school(ctx)
    smtp.handler.data_replies = ["554 5.7.1 Message rejected"]
    smtp.start()
    mail = smtp_context(ctx, smtp.port)
    ref = confirmed(mail)
    assert drain(mail) == {"sent": 0, "retry": 0, "dead": 1}
    dead = whole_timeline(mail, ref)[-1]
    assert dead.kind == "notices_dead" and "554" in dead.payload["messages"][0]["error"]

    for name, value in settings_env(mail.settings).items():
        monkeypatch.setenv(name, value)
    assert main(["outbox", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["items"]
    assert (listed["reference"], listed["status"], listed["school"]) == (ref, "dead", "12AB")
    assert main(["outbox", "retry", str(listed["id"])]) == 0
    capsys.readouterr()
    assert drain(mail)["sent"] == 1
    assert timeline_kinds(mail, ref)[-2:] == ["notices_requeued", "notices_sent"]


def dispatcher_process(ctx, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "dispatcher_process.py"), mode],
                            env=os.environ | settings_env(ctx.settings) | {"PYTHONPATH": str(ROOT)})


def kill_after(process: subprocess.Popen, smtp: SmtpServer, received: int) -> int:
    """Kill ``process`` (SIGKILL) once the server has accepted ``received`` messages; return how many it had."""
    deadline = time.monotonic() + 60
    while len(smtp.received) < received and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    return len(smtp.received)


@pytest.mark.slow
def test_several_dispatchers_at_once_send_each_message_once(ctx, smtp):
    brins = [f"{n:02d}AB" for n in range(80)]
    for brin in brins:
        schools.add(ctx, brin=brin, name=f"School {brin}", contacts=[f"info@{brin.lower()}.example.nl"])
    smtp.start()
    mail = smtp_context(ctx, smtp.port, dispatch_batch=5, smtp_connections=2)
    confirmed(mail, brins=tuple(brins))
    dispatchers = [dispatcher_process(mail, "drain") for _ in range(3)]
    assert [d.wait(timeout=60) for d in dispatchers] == [0, 0, 0]
    message_ids = [r.message["Message-ID"] for r in smtp.received]
    assert len(message_ids) == 80 and len(set(message_ids)) == 80
    assert {r.status for r in outbox.list_messages(mail, status=None).items} == {"sent"}


def test_refused_recipients_are_reported_not_swallowed(ctx, smtp):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["directie@regenboog.nl", "oud@regenboog.nl"])
    smtp.handler.refuse = {"oud@regenboog.nl": "550 5.1.1 No such user"}
    smtp.start()
    mail = smtp_context(ctx, smtp.port)
    ref = confirmed(mail)
    assert drain(mail)["sent"] == 1
    assert smtp.received[0].recipients == ["directie@regenboog.nl"]
    sent = whole_timeline(mail, ref)[-1].payload["messages"][0]
    assert sent["refused"] == {"oud@regenboog.nl": "550 5.1.1 No such user"}
    (row,) = outbox.list_messages(mail, status="sent").items
    assert row.last_error == "1 recipient(s) refused (550 5.1.1 No such user); see the incident's timeline"


def test_a_school_whose_every_address_is_refused_is_a_dead_letter_naming_them(ctx, smtp):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["weg@regenboog.nl"])
    smtp.handler.refuse = {"weg@regenboog.nl": "550 5.1.1 No such user"}
    smtp.start()
    mail = smtp_context(ctx, smtp.port)
    ref = confirmed(mail)
    assert drain(mail)["dead"] == 1
    dead = whole_timeline(mail, ref)[-1].payload["messages"][0]
    assert dead["refused"] == {"weg@regenboog.nl": "550 5.1.1 No such user"}
    assert queries.get(mail, ref).schools[0].informed_at is None  # not informed: the guard still asks


@pytest.mark.slow
def test_a_dispatcher_killed_mid_batch_loses_nothing(ctx, smtp):
    for n in range(6):
        schools.add(ctx, brin=f"1{n}AB", name=f"School {n}", contacts=[f"info@school{n}.nl"])
    smtp.start()
    mail = smtp_context(ctx, smtp.port, dispatch_lease_seconds=1, smtp_connections=1)
    ref = confirmed(mail, brins=tuple(f"1{n}AB" for n in range(6)))

    smtp.handler.delay = 0.3
    delivered_before = kill_after(dispatcher_process(mail, "once"), smtp, 2)
    assert 2 <= delivered_before < 6, "the kill must land in the middle of the batch"
    statuses = [r.status for r in outbox.list_messages(mail, status=None).items]
    # every message the server accepted was marked at once, but for the one in flight
    assert delivered_before - 1 <= statuses.count("accepted") <= delivered_before
    assert set(statuses) == {"accepted", "sending"}

    smtp.handler.delay = 0
    time.sleep(1.1)  # the dead dispatcher's lease expires
    assert drain(mail)["sent"] == 6  # the accepted ones are recorded without being sent again
    ids_by_address: dict[str, set[str]] = {}
    for received in smtp.received:
        ids_by_address.setdefault(received.recipients[0], set()).add(received.message["Message-ID"])
    assert len(ids_by_address) == 6  # every school got its notice
    assert all(len(ids) == 1 for ids in ids_by_address.values())  # a resend keeps its Message-ID
    assert len(smtp.received) <= 6 + 1  # at most the one in flight on its one connection came twice
    sent_events = [e for e in whole_timeline(mail, ref) if e.kind == "notices_sent"]
    assert sum(len(e.payload["messages"]) for e in sent_events) == 6  # each on the timeline once


@pytest.mark.slow
def test_a_worker_killed_mid_send_with_500_pending_resends_at_most_what_was_in_flight(ctx, smtp):
    brins = [f"{n // 26 % 100:02d}{chr(65 + n % 26)}{chr(65 + n // 2600)}" for n in range(500)]
    for brin in brins:
        schools.add(ctx, brin=brin, name=f"School {brin}", contacts=[f"info@{brin.lower()}.example.nl"])
    connections = 4
    mail = smtp_context(ctx, smtp.port, smtp_connections=connections, dispatch_lease_seconds=1)
    ref = confirmed(mail, brins=tuple(brins))
    smtp.handler.delay = 0.005
    smtp.start()
    delivered_before = kill_after(dispatcher_process(mail, "drain"), smtp, 150)
    assert 150 <= delivered_before < 500, "the kill must land in the middle of the sending"

    time.sleep(1.1)  # the dead worker's leases expire
    assert drain(mail)["sent"] == 500
    received_ids = [r.message["Message-ID"] for r in smtp.received]
    assert len(set(received_ids)) == 500  # every school got its notice
    resent = len(received_ids) - 500
    assert resent <= connections, f"{resent} messages were sent twice; at most {connections} were in flight"
    assert sum(len(e.payload["messages"]) for e in whole_timeline(mail, ref) if e.kind == "notices_sent") == 500


@pytest.mark.parametrize("answer", ["550 5.1.1 <weg@regenboog.nl>: Recipient address rejected",
                                    "550 weg@regenboog.nl: rejected"])
def test_a_refusal_naming_the_address_keeps_it_out_of_the_plain_columns(ctx, smtp, answer, capsys):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["weg@regenboog.nl", "ok@regenboog.nl"])
    smtp.handler.refuse = {"weg@regenboog.nl": answer}
    smtp.start()
    mail = smtp_context(ctx, smtp.port)
    confirmed(mail)
    assert drain(mail)["sent"] == 1  # one refused, one accepted
    smtp.handler.refuse = {"ok@regenboog.nl": answer.replace("weg@", "ok@")}
    service.send_update(mail, reference=all_incidents(mail)[0].reference, actor="hanna")
    smtp.handler.refuse |= {"weg@regenboog.nl": answer}
    assert drain(mail)["dead"] == 1  # every recipient refused: a dead letter
    with ctx.engine.connect() as conn:
        plain = " ".join(str(v) for v in conn.execute(sa.select(outbox_t.c.last_error)).scalars())
    assert "regenboog.nl" not in plain and "<address>" in plain
    settings = {**settings_env(mail.settings)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        assert main(["outbox", "list", "--status", "all"]) == 0
    assert "regenboog.nl" not in capsys.readouterr().out


def test_a_claim_given_back_unsent_is_due_again_and_its_try_not_counted(ctx):
    """A stopping dispatcher gives back what it did not send: as if it had never claimed it; what it
    does not give back stays its own."""
    add_school(ctx)
    add_school(ctx, "34CD", "Het Anker")
    mail = with_notices(ctx)
    confirmed(mail, brins=("12AB", "34CD"))
    now = datetime.now(UTC)
    given_back, kept = outbox.claim(mail, 10, now)[0]
    assert given_back.attempts == 1 and outbox_row(mail, given_back.id).status == "sending"
    outbox.release(mail, [given_back.id])
    row = outbox_row(mail, given_back.id)
    assert (row.status, row.attempts, row.claimed_until) == ("pending", 0, None)
    assert outbox_row(mail, kept.id).status == "sending"
    (again,), _ = outbox.claim(mail, 10, now)
    assert again.id == given_back.id and again.attempts == 1
    outbox.accept(mail, [again.id], now)
    outbox.release(mail, [again.id])  # too late: the server has it
    assert outbox_row(mail, again.id).status == "accepted"


def test_an_accepted_message_is_marked_at_once_and_only_while_it_is_being_sent(ctx):
    """Marked accepted before anything else is sent (a crash after it sends it no second time); a
    claim already given back, or another message in flight, is not marked."""
    add_school(ctx)
    add_school(ctx, "34CD", "Het Anker")
    mail = with_notices(ctx)
    confirmed(mail, brins=("12AB", "34CD"))
    now = datetime.now(UTC)
    (claimed, other), _ = outbox.claim(mail, 10, now)
    outbox.release(mail, [claimed.id])
    outbox.accept(mail, [claimed.id], now)
    assert outbox_row(mail, claimed.id).status == "pending"
    (claimed,), _ = outbox.claim(mail, 10, now)
    outbox.accept(mail, [claimed.id], now)
    row = outbox_row(mail, claimed.id)
    assert row.status == "accepted" and row.sent_at.replace(tzinfo=UTC) == now
    assert outbox_row(mail, other.id).status == "sending"  # still in flight: only the server's answer marks it
    assert outbox.claim(mail, 10, now)[0] == []  # neither is to be sent again
