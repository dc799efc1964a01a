"""Bounces: a notice the SMTP server accepted comes back later (a DSN, or a non-standard bounce) →
dead letter, the school no longer informed, its clock open again, the handlers told, all on the
timeline; read from a maildir or from a real IMAP server (pymap), by the CLI or the worker."""

from __future__ import annotations

import asyncio
import mailbox
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CONFIRM, add_school, confirmed, reported
from notify_support import drain, outbox_rows, smtp_context
from pysasl.hashing import BuiltinHash
from reading import whole_timeline
from smtp_server import free_port, self_signed

from breachflow.api import timeline_text
from breachflow.notifications import bouncebox, bounces, outbox, reminders
from breachflow.notifications.models import outbox_t
from breachflow.notifications.worker import read_bounces_forever
from breachflow.workflow import accounts, audit, queries, schools, service
from breachflow.workflow.config import Settings
from breachflow.workflow.models import affected_t, deadline_t

BOUNCE_ADDRESS = "bounces@processor.nl"
ADDRESS = "directie@12ab.example.nl"


@pytest.fixture
def box(tmp_path) -> Path:
    return tmp_path / "bounces"


@pytest.fixture
def mail(ctx, smtp, box):
    """Notices through the test SMTP server with VERP on; bounces read from ``box``; a handler with
    an address, and one school."""
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.nl")
    return smtp_context(ctx, smtp.port, bounce_address=BOUNCE_ADDRESS, bounce_maildir=box)


def sent_notice(mail, smtp) -> tuple[str, str, bytes]:
    """Confirm an incident and deliver its notice; return the reference, Message-ID and headers."""
    reference = confirmed(mail)
    assert drain(mail)["sent"] == 1
    received = smtp.received[-1]
    return reference, received.message["Message-ID"].strip(), received.raw.split(b"\r\n\r\n", 1)[0]


def dsn(headers: bytes, recipient: str = ADDRESS, *, action: str = "failed", status: str = "5.1.1",
        to: str = BOUNCE_ADDRESS, bounce_id: str = "<b1@mx.example.nl>") -> bytes:
    """An RFC 3464 delivery status notification returning the message with ``headers``."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.nl>\r\nTo: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {bounce_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.nl\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ).encode() + headers + b"\r\n\r\n--B--\r\n"


def exim_bounce(to: str, recipient: str = ADDRESS) -> bytes:
    """A non-standard bounce (Exim's): no report, no original headers; only the VERP address names it."""
    return (
        f"From: Mail Delivery System <Mailer-Daemon@mx.example.nl>\r\nTo: {to}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\nMessage-ID: <e1@mx.example.nl>\r\n"
        f"X-Failed-Recipients: {recipient}\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n    SMTP error from remote mail server after RCPT TO:<{recipient}>:\r\n"
        "    550 5.1.1 User unknown\r\n"
    ).encode()


def put(box: Path, *messages: bytes) -> None:
    folder = mailbox.Maildir(box, create=True)
    for message in messages:
        folder.add(message)


def unseen(box: Path) -> int:
    folder = mailbox.Maildir(box, create=True)
    return sum(1 for key in folder.iterkeys()
               if folder.get_message(key).get_subdir() == "new" or "S" not in folder.get_message(key).get_flags())


def set_aside(box: Path) -> int:
    """Messages seen and flagged: for a person to look at, not read again."""
    folder = mailbox.Maildir(box, create=True)
    return sum(1 for key in folder.iterkeys() if set("FS") <= set(folder.get_message(key).get_flags()))


def school_row(ctx, reference: str):
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(affected_t.c.informed_at, affected_t.c.informed_via)
                            .where(affected_t.c.incident_id == queries.get(ctx, reference).id)).one()


def bounced_events(ctx, reference: str):
    return [e for e in whole_timeline(ctx, reference) if e.kind == "notice_bounced"]


def test_the_return_path_names_the_message_and_the_server_sees_it(mail, smtp):
    _, message_id, _ = sent_notice(mail, smtp)
    assert smtp.received[-1].sender == bounces.return_path(BOUNCE_ADDRESS, message_id)
    assert smtp.received[-1].sender == f"bounces+{message_id[1:21]}@processor.nl"


def test_without_a_bounce_address_the_sender_stays_mail_from(ctx, smtp):
    add_school(ctx)
    mail = smtp_context(ctx, smtp.port)
    sent_notice(mail, smtp)
    assert smtp.received[-1].sender == mail.settings.mail_from


def test_a_dsn_in_the_maildir_makes_a_dead_letter_uninforms_the_school_and_tells_the_handler(mail, smtp, box, cli,
                                                                                             monkeypatch):
    reference, message_id, headers = sent_notice(mail, smtp)
    assert school_row(mail, reference).informed_via == "email"
    put(box, dsn(headers))
    monkeypatch.setenv("BREACHFLOW_BOUNCE_MAILDIR", str(box))
    code, out, _ = cli("bounces", "read")
    assert code == 0 and reference in out and "dead letter" in out and "school no longer informed" in out

    notice, warning = outbox_rows(mail)
    assert (notice.message_id, notice.status) == (message_id, "dead")
    assert "bounced (5.1.1)" in notice.last_error and "@" not in notice.last_error
    assert notice.bounced_at is not None
    assert school_row(mail, reference) == (None, None)
    assert (warning.kind, warning.school_id, warning.status) == ("bounce", None, "pending")
    (event,) = bounced_events(mail, reference)
    assert event.payload | {"bounce": None} == {
        "message_id": message_id, "kind": "initial", "school": "12AB", "bounce": None,
        "failures": [{"address": ADDRESS, "status": "5.1.1", "hard": True}],
        "dead": True, "uninformed": True, "untold": False, "reminded": 1}
    assert unseen(box) == 0
    assert audit.verify(mail).intact
    said = timeline_text.entry_text(event)
    assert "bounced: first notice to 12AB" in said and "12AB no longer counts as informed" in said
    assert "dead letter" in said and "1 handler(s) and manager(s) told" in said

    assert drain(mail)["sent"] == 1  # the warning reaches the handler, in the staff language
    warned = smtp.received[-1]
    assert warned.recipients == ["hanna@basisonline.nl"]
    assert reference in warned.message["Subject"] and "telefonisch" in warned.part("plain")
    code, out, _ = cli("outbox", "list")
    assert "bounced (5.1.1) for every recipient" in out and "  bounced 20" in out


def test_the_school_notice_clock_reopens_and_is_reminded_of(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    incident = queries.get(mail, reference)
    with mail.engine.connect() as conn:
        clock = sa.select(deadline_t).where(deadline_t.c.incident_id == incident.id, deadline_t.c.kind == "school_notice")
        assert conn.execute(clock).one().is_open is False
    put(box, dsn(headers))
    bouncebox.read(mail)
    with mail.engine.connect() as conn:
        row = conn.execute(clock).one()
    assert row.is_open and row.met_at is None and row.next_look_at <= row.due_at
    assert reminders.scan(mail, row.due_at + timedelta(minutes=1)) == 1  # overdue: the handler hears of it
    assert whole_timeline(mail, reference)[-1].payload["deadline"] == "school_notice"


def test_a_later_notice_that_arrives_informs_the_school_again(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    bouncebox.read(mail)
    schools.update(mail, brin="12AB", changes={"contacts": ["info@12ab.example.nl"]})
    service.send_update(mail, reference=reference, actor="hanna", message="Adres verbeterd")
    drain(mail)
    assert school_row(mail, reference).informed_via == "email"
    assert audit.verify(mail).intact  # notice_bounced, then notices_sent: the replay agrees


def test_the_same_bounce_read_twice_changes_nothing(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    assert len(bouncebox.read(mail).recorded) == 1
    before = (outbox_rows(mail), len(whole_timeline(mail, reference)))
    put(box, dsn(headers))  # a crash between the commit and marking it seen: it is read again
    put(box, dsn(headers, bounce_id="<b2@mx.example.nl>"))  # the same address bouncing once more
    done = bouncebox.read(mail)
    assert (done.recorded, done.unchanged, unseen(box)) == ([], 2, 0)
    assert (outbox_rows(mail), len(whole_timeline(mail, reference))) == before


def test_a_verp_matched_non_standard_bounce_is_detected(mail, smtp, box):
    reference, message_id, _ = sent_notice(mail, smtp)
    put(box, exim_bounce(bounces.return_path(BOUNCE_ADDRESS, message_id)))
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.message_id, recorded.dead, recorded.uninformed) == (message_id, True, True)
    (event,) = bounced_events(mail, reference)
    assert event.payload["failures"] == [{"address": ADDRESS, "status": None, "hard": True}]


def test_a_soft_bounce_is_recorded_and_nothing_else(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers, action="delayed", status="4.4.1"))
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.hard, recorded.soft, recorded.dead, recorded.uninformed) == (0, 1, False, False)
    (notice, ) = outbox_rows(mail)  # no dead letter, no warning queued
    assert (notice.status, notice.bounced) == ("sent", None)
    assert school_row(mail, reference).informed_via == "email"
    (event,) = bounced_events(mail, reference)
    assert event.payload["failures"] == [{"address": ADDRESS, "status": "4.4.1", "hard": False}]
    assert "reminded" not in event.payload
    put(box, dsn(headers, action="delayed", status="4.4.1"))  # the same delay notice read again
    assert bouncebox.read(mail).unchanged == 1 and len(bounced_events(mail, reference)) == 1


def test_a_failed_action_with_a_4xx_status_is_soft():
    (failure,) = bounces.parse(dsn(b"Message-ID: <x@y>", status="4.2.2")).failures
    assert failure.hard is False


def test_with_two_contacts_one_bouncing_the_school_stays_informed(ctx, smtp, box):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=[ADDRESS, "info@12ab.example.nl"])
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.nl")
    mail = smtp_context(ctx, smtp.port, bounce_address=BOUNCE_ADDRESS, bounce_maildir=box)
    reference, message_id, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.hard, recorded.dead, recorded.uninformed) == (1, False, False)
    notice = outbox_rows(mail)[0]
    assert notice.status == "sent" and notice.bounced is not None
    assert school_row(mail, reference).informed_via == "email"
    assert outbox_rows(mail)[-1].kind == "bounce"  # the handler still corrects the address
    put(box, dsn(headers, "info@12ab.example.nl", bounce_id="<b2@mx.example.nl>"))
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.dead, recorded.uninformed) == (True, True)


def test_a_recipient_the_server_refused_need_not_bounce_for_a_dead_letter(ctx, smtp, box):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=[ADDRESS, "old@12ab.example.nl"])
    smtp.handler.refuse = {"old@12ab.example.nl": "550 5.1.1 No such user"}
    mail = smtp_context(ctx, smtp.port, bounce_address=BOUNCE_ADDRESS, bounce_maildir=box)
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.dead, recorded.uninformed, recorded.hard) == (True, True, 1)
    assert bounced_events(mail, reference)[0].payload["reminded"] == 0  # nobody with an address to tell


def test_a_school_informed_by_phone_stays_informed(mail, smtp, box):
    reference = confirmed(mail)
    service.log_contact(mail, reference=reference, actor="hanna", brin="12AB", channel="phone",
                        at=datetime.now(UTC), summary="Directeur gebeld")
    drain(mail)
    headers = smtp.received[-1].raw.split(b"\r\n\r\n", 1)[0]
    put(box, dsn(headers))
    (recorded,) = bouncebox.read(mail).recorded
    assert recorded.dead and not recorded.uninformed
    assert school_row(mail, reference).informed_via == "phone"


def test_unknown_foreign_and_garbage_mail_is_left_alone_and_stops_nothing(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    foreign = re.sub(rb"(Message-ID:\s*)<", rb"\1<0", headers)
    assert foreign != headers
    put(box, b"\xff\xfe garbage \x00\r\n\r\n--",
        dsn(foreign, bounce_id="<f@mx.example.nl>"),  # another installation's message
        exim_bounce(f"bounces+{'0' * 20}@processor.nl"),  # a VERP token of no message here
        b"From: a parent <ouder@example.nl>\r\nSubject: Vraag\r\n\r\nHallo\r\n",  # no bounce at all
        dsn(headers))
    done = bouncebox.read(mail)
    assert (len(done.recorded), done.ignored, done.failed) == (1, 4, 0)
    assert (unseen(box), set_aside(box), len(mailbox.Maildir(box).keys())) == (0, 4, 4), \
        "the four set aside for a person, read once; the recorded bounce removed"
    assert bouncebox.read(mail).ignored == 0
    assert len(bounced_events(mail, reference)) == 1


def test_a_failed_recording_is_retried_and_the_others_go_on(mail, smtp, box, monkeypatch):
    reference, _, headers = sent_notice(mail, smtp)
    second = confirmed(mail)
    drain(mail)
    other = smtp.received[-1].raw.split(b"\r\n\r\n", 1)[0]
    put(box, dsn(headers), dsn(other, bounce_id="<b2@mx.example.nl>"))
    real = bouncebox.bounced.record
    calls = []

    def failing_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("x", {}, Exception("database went away"))
        return real(*args, **kwargs)

    monkeypatch.setattr(bouncebox.bounced, "record", failing_first)
    done = bouncebox.read(mail)
    assert (len(done.recorded), done.failed, unseen(box)) == (1, 1, 1)
    assert len(bouncebox.read(mail).recorded) == 1
    assert unseen(box) == 0 and bounced_events(mail, reference) and bounced_events(mail, second)


def test_the_worker_reads_the_mailbox_and_survives_a_failing_pass(mail, smtp, box, tmp_path, caplog):
    reference, _, headers = sent_notice(mail, smtp)
    box.parent.mkdir(exist_ok=True)
    box.write_text("not a maildir")  # the first pass fails
    mail.settings.bounce_poll_seconds = 0.05

    async def run():
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(read_bounces_forever(mail, stop, wake))
        await asyncio.sleep(0.2)
        box.unlink()
        put(box, dsn(headers))
        await asyncio.wait_for(wake.wait(), timeout=30)
        stop.set()
        await task

    asyncio.run(run())
    assert "reading the bounce mailbox failed" in caplog.text
    assert bounced_events(mail, reference) and unseen(box) == 0


def pymap_users(base: Path, password: str) -> None:
    (base / "pymap-etc-passwd").write_text("bounces::1000:1000::bounces:\n")
    (base / "pymap-etc-shadow").write_text(f"bounces:{BuiltinHash(rounds=1000).hash(password)}\n")


@pytest.fixture(params=["none", "starttls"])
def imap(tmp_path, request):
    """A real IMAP server (pymap, maildir backend) on a free loopback port, plain or with STARTTLS:
    (the settings that reach it, the user's maildir)."""
    base = tmp_path / "imap"
    base.mkdir()
    pymap_users(base, "geheim")
    port = free_port()
    reach = {"bounce_imap_host": "127.0.0.1", "bounce_imap_port": port, "bounce_imap_security": request.param,
             "bounce_imap_username": "bounces", "bounce_imap_password": "geheim"}
    tls = []
    if request.param == "starttls":
        cert, key = self_signed(tmp_path)
        tls = ["--cert", str(cert), "--key", str(key)]
        reach["bounce_imap_ca_file"] = cert
    server = subprocess.Popen([str(Path(sys.executable).parent / "pymap"), "--host", "127.0.0.1", "--port", str(port),
                               *tls, "maildir", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            __import__("socket").create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield reach, base / "bounces"
    server.terminate()
    server.wait(timeout=30)


def test_a_dsn_read_over_imap_is_recorded_and_marked_seen(ctx, smtp, imap):
    reach, folder = imap
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.nl")
    mail = smtp_context(ctx, smtp.port, bounce_address=BOUNCE_ADDRESS, **reach)
    reference, _, headers = sent_notice(mail, smtp)
    put(folder, b"From: someone@example.nl\r\nSubject: hello\r\n\r\nnot a bounce\r\n", dsn(headers))
    opened = bouncebox.open_box(mail.settings)
    assert isinstance(opened.imap.sock, ssl.SSLSocket) is (reach["bounce_imap_security"] == "starttls")
    done = bouncebox.read(mail, opened)
    opened.close()
    assert (len(done.recorded), done.ignored) == (1, 1)
    assert outbox_rows(mail)[0].status == "dead" and school_row(mail, reference) == (None, None)
    again = bouncebox.read(mail)  # the bounce is removed now; the other mail is set aside (seen and flagged)
    assert (again.recorded, again.unchanged, again.ignored) == ([], 0, 0)


def test_production_refuses_an_imap_mailbox_without_tls(settings):
    values = settings.model_dump(exclude_unset=True) | {
        "environment": "production", "bounce_imap_host": "imap.example.nl", "bounce_imap_security": "none"}
    with pytest.raises(ValueError, match="BREACHFLOW_BOUNCE_IMAP_SECURITY"):
        Settings.model_validate(values)


def test_outbox_listing_names_no_address(mail, smtp, box):
    _, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    bouncebox.read(mail)
    (row,) = outbox.list_messages(mail).items
    assert row.bounced_at is not None and "@" not in row.last_error


def test_only_our_bounce_address_carries_a_token():
    token = "ab" * 10
    assert bounces.parse(exim_bounce(f"bounces+{token}@processor.nl"), BOUNCE_ADDRESS).token == token
    assert bounces.parse(exim_bounce(f"bounces+{token}@elsewhere.nl"), BOUNCE_ADDRESS).token is None
    assert bounces.parse(exim_bounce(f"other+{token}@processor.nl"), BOUNCE_ADDRESS).token is None
    assert bounces.parse(exim_bounce(f"bounces+{token}@processor.nl"), None).token is None


@pytest.mark.tampers
def test_the_audit_finds_a_school_marked_informed_again_past_the_bounce(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    bouncebox.read(mail)
    with mail.engine.begin() as conn:
        conn.execute(sa.update(affected_t).values(informed_at=datetime.now(UTC), informed_via="email"))
    findings = [str(f) for f in audit.verify(mail).findings]
    assert any(reference in f and "informed_at" in f for f in findings), findings


def test_a_bounce_of_a_message_to_staff_tells_nobody_again(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers))
    bouncebox.read(mail)
    drain(mail)  # the handler's bounce message, accepted
    staff = smtp.received[-1]
    put(box, dsn(staff.raw.split(b"\r\n\r\n", 1)[0], "hanna@basisonline.nl", bounce_id="<b2@mx.example.nl>"))
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.kind, recorded.school, recorded.dead, recorded.uninformed) == ("bounce", None, True, False)
    assert [r.kind for r in outbox_rows(mail)] == ["initial", "bounce"]  # no message about the message
    assert "reminded" not in bounced_events(mail, reference)[-1].payload


SCHOOL_CAUSE = {"cause_category": "user_error_admin", "cause_description": "Shared password"}


@pytest.mark.parametrize("by_phone", [False, True], ids=["told-by-the-notice", "told-by-phone-too"])
def test_a_school_told_only_by_a_bounced_notice_to_notify_the_ap_is_no_longer_told(mail, smtp, box, by_phone):
    reference = reported(mail)
    service.fire(mail, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(mail, reference=reference, trigger="confirm", actor="hanna", fields=CONFIRM | SCHOOL_CAUSE)
    drain(mail)
    assert smtp.received[-1].message["Message-ID"] == outbox_rows(mail)[0].message_id
    assert outbox_rows(mail)[0].kind == "school_responsible"
    if by_phone:
        service.log_contact(mail, reference=reference, actor="hanna", brin="12AB", channel="phone",
                            summary="Told them to notify the AP", told_must_notify_ap=True)
    put(box, dsn(smtp.received[-1].raw.split(b"\r\n\r\n", 1)[0]))
    (recorded,) = bouncebox.read(mail).recorded
    assert recorded.uninformed is not by_phone, "a school a handler reached by phone stays informed"
    (school,) = queries.get(mail, reference).schools
    assert (school.informed_at is not None, school.told_to_notify_ap_at is not None) == (by_phone, by_phone)
    assert bounced_events(mail, reference)[0].payload["untold"] is not by_phone


@pytest.mark.parametrize("after", ["acknowledged", "phoned"])
def test_a_school_that_confirmed_receipt_or_was_phoned_after_the_mail_stays_informed(mail, smtp, box, after):
    reference, _, headers = sent_notice(mail, smtp)
    if after == "acknowledged":
        service.acknowledge(mail, reference=reference, brin="12AB", actor="school-12ab")
    else:
        service.log_contact(mail, reference=reference, actor="hanna", brin="12AB", channel="phone",
                            summary="Spoke to the head about the breach")
    put(box, dsn(headers))
    (recorded,) = bouncebox.read(mail).recorded
    assert recorded.dead and not recorded.uninformed
    assert school_row(mail, reference).informed_at is not None


def test_a_bounce_read_before_its_sending_is_recorded_waits_for_it(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    with mail.engine.begin() as conn:  # as a dispatcher has it between the server's yes and its record
        conn.execute(sa.update(outbox_t).values(status="accepted"))
    put(box, dsn(headers))
    done = bouncebox.read(mail)
    assert (done.recorded, done.failed, unseen(box)) == ([], 1, 1), "left unseen, read again next pass"
    with mail.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).values(status="sent"))
    (recorded,) = bouncebox.read(mail).recorded
    assert recorded.dead and recorded.uninformed


def test_a_bounce_for_a_forwarded_address_names_the_address_we_sent_to(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    forwarded = dsn(headers, recipient="oud@elders.example.nl").replace(
        b"Final-Recipient: rfc822; oud@elders.example.nl",
        f"Original-Recipient: rfc822;{ADDRESS}\r\nFinal-Recipient: rfc822; <oud@elders.example.nl> (forwarded)".encode())
    assert forwarded.count(ADDRESS.encode()) >= 1
    put(box, forwarded)
    (recorded,) = bouncebox.read(mail).recorded
    assert recorded.hard == 1 and recorded.dead


def test_a_report_of_delivery_is_no_bounce(mail, smtp, box):
    reference, _, headers = sent_notice(mail, smtp)
    put(box, dsn(headers, action="delivered", status="2.0.0"))
    done = bouncebox.read(mail)
    assert (done.recorded, done.ignored, unseen(box), set_aside(box)) == ([], 1, 0, 1)
    assert bounced_events(mail, reference) == []


def test_a_report_with_a_failed_and_a_delayed_recipient_counts_each_as_it_is(ctx, smtp, box):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=[ADDRESS, "info@12ab.example.nl"])
    mail = smtp_context(ctx, smtp.port, bounce_address=BOUNCE_ADDRESS, bounce_maildir=box)
    reference, _, headers = sent_notice(mail, smtp)
    both = dsn(headers).replace(b"--B\r\nContent-Type: text/rfc822-headers", (
        b"Final-Recipient: rfc822; info@12ab.example.nl\r\nAction: delayed\r\nStatus: 4.2.2\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers"), 1)
    put(box, both)
    (recorded,) = bouncebox.read(mail).recorded
    assert (recorded.hard, recorded.soft, recorded.dead, recorded.uninformed) == (1, 1, False, False)
    assert [(f["address"], f["hard"]) for f in bounced_events(mail, reference)[0].payload["failures"]] == [
        (ADDRESS, True), ("info@12ab.example.nl", False)]


class _DrippingServer:
    """A TCP server on loopback that accepts and then sends one byte a second, never a whole line:
    an IMAP server too slow to ever finish its greeting, yet never silent long enough to time out."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                while not self.stopped.wait(1):
                    try:
                        conn.sendall(b"*")
                    except OSError:
                        break

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.listener.close()


@pytest.mark.slow  # waits out a slow server, by the clock
def test_a_stopping_worker_does_not_wait_for_a_dripping_imap_server(ctx):
    server = _DrippingServer()
    slow = smtp_context(ctx, free_port(), bounce_imap_host="127.0.0.1", bounce_imap_port=server.port,
                        bounce_imap_security="none", bounce_poll_seconds=3600)

    async def run() -> None:
        stop = asyncio.Event()
        reading = asyncio.create_task(read_bounces_forever(slow, stop, asyncio.Event()))
        await asyncio.sleep(1.5)  # connected, waiting for a greeting that never ends
        stop.set()
        await asyncio.wait_for(reading, timeout=60)  # without the cut-off: for ever (the server never goes quiet)

    try:
        asyncio.run(run())
    finally:
        server.close()


def test_a_mailbox_that_cannot_be_opened_is_named(imap):
    reach, _ = imap
    wrong = Settings.model_validate(reach | {"bounce_imap_mailbox": "Bounces"})
    with pytest.raises(Exception, match="mailbox 'Bounces' \\(BREACHFLOW_BOUNCE_IMAP_MAILBOX\\) cannot be opened"):
        bouncebox.open_box(wrong)
