"""Notices to schools, received by a real SMTP server on loopback."""

from __future__ import annotations

import gc
from asyncio.selector_events import _SelectorTransport

import pytest
from conftest import CONFIRM, CONTAIN, EVALUATE, REMEDIATE, VERIFY, add_school, reported
from notify_support import drain, due_now, smtp_context
from smtp_server import SmtpServer, self_signed

from notifications import outbox
from workflow import queries, schools, service


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_ctx(ctx, smtp):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["directie@regenboog.nl", "ib@regenboog.nl"])
    schools.add(ctx, brin="34CD", name="Het Anker", contacts=["info@anker.nl"], language="en")
    return smtp_context(ctx, smtp.port)


def confirmed(ctx, **fields) -> str:
    ref = reported(ctx, brins=("12AB", "34CD"))
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM | fields)
    return ref


def by_school(smtp, address):
    return [m for m in smtp.received if address in m.recipients]


def test_confirm_sends_the_first_notice_in_dutch_with_all_that_is_known(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    assert smtp.received == []  # queued in the transaction, not sent from it
    assert drain(mail_ctx) == {"sent": 2, "retry": 0, "dead": 0}

    (dutch,) = by_school(smtp, "directie@regenboog.nl")
    assert sorted(dutch.recipients) == ["directie@regenboog.nl", "ib@regenboog.nl"]
    message = dutch.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == f"Datalek {ref}: melding aan De Regenboog"
    assert message["Message-ID"].endswith("@breachflow.localhost>") and ref in message["Message-ID"]
    assert message["Date"] and message["To"] == "directie@regenboog.nl, ib@regenboog.nl"
    text, html = dutch.part("plain"), dutch.part("html")
    for expected in (ref, CONFIRM["summary"], CONFIRM["nature_how"], "ingezien", "Ouderportaal",
                     "Genomen maatregelen: nog in onderzoek", "Soort gegevens: nog in onderzoek",
                     "Omvang van de groep betrokkenen: 28 bij De Regenboog", "Autoriteit Persoonsgegevens",
                     "privacy@basisonline.nl", "hanna", "acknowledgements"):
        assert expected in text, expected
    assert CONFIRM["summary"] in html and "<table" in html and "<img" not in html and "src=" not in html

    (english,) = by_school(smtp, "info@anker.nl")
    assert english.message["Subject"] == f"Data breach {ref}: notice to Het Anker"
    assert "still under investigation" in english.part("plain")

    kinds = [e.kind for e in queries.timeline_of(mail_ctx, ref)]
    assert kinds[-3:] == ["transition", "notices_queued", "notices_sent"]
    assert all(s.informed_at is not None and s.informed_via == "email" for s in queries.get(mail_ctx, ref).schools)


def test_updates_say_what_changed_since_the_last_notice(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    drain(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    drain(mail_ctx)
    update = by_school(smtp, "directie@regenboog.nl")[-1]
    assert update.message["Subject"] == f"Datalek {ref}: update voor De Regenboog"
    text = update.part("plain")
    assert f"Genomen maatregelen: {CONTAIN['measures']} (was: nog in onderzoek)" in text
    assert "Stand van zaken: oorzaak wordt opgelost (was: wordt ingedamd)" in text

    service.send_update(mail_ctx, reference=ref, actor="hanna", message="De politie is ingelicht.")
    drain(mail_ctx)
    assert "De politie is ingelicht." in by_school(smtp, "directie@regenboog.nl")[-1].part("plain")


def test_a_school_added_to_a_confirmed_incident_gets_its_first_notice_at_once(mail_ctx, smtp):
    schools.add(mail_ctx, brin="78GH", name="De Linde", contacts=["directie@linde.nl"])
    ref = confirmed(mail_ctx)
    drain(mail_ctx)
    before = len(smtp.received)
    service.update(mail_ctx, reference=ref, actor="hanna", schools={"78GH": 40})
    drain(mail_ctx)
    (newcomer,) = smtp.received[before:]
    assert newcomer.recipients == ["directie@linde.nl"]
    assert newcomer.message["Subject"] == f"Datalek {ref}: melding aan De Linde"
    assert "40 bij De Linde" in newcomer.part("plain")


def test_a_school_caused_breach_tells_the_school_to_notify_the_ap_itself(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    service.fire(mail_ctx, reference=ref, trigger="remediated", actor="hanna",
                 fields=REMEDIATE | {"cause_category": "user_error_admin", "cause_description": "Shared password"})
    drain(mail_ctx)
    notice = by_school(smtp, "directie@regenboog.nl")[-1]
    assert "uw school moet melden bij de AP" in notice.message["Subject"]
    text = notice.part("plain")
    assert "zelf melden bij de Autoriteit Persoonsgegevens" in text and "72 uur na dit bericht" in text
    assert "Vertrouwelijkheid geschonden: ja" in text
    assert all(s.told_to_notify_ap_at is not None for s in queries.get(mail_ctx, ref).schools)


def test_closing_notice_carries_the_evaluation(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    for trigger, fields in (("contained", CONTAIN), ("remediated", REMEDIATE | {"cause_category": "user_error_admin"}),
                            ("verified", VERIFY)):
        service.fire(mail_ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)
    drain(mail_ctx)
    closed = service.fire(mail_ctx, reference=ref, trigger="evaluated", actor="hanna", fields=EVALUATE)
    assert closed.state == "closed"
    drain(mail_ctx)
    closing = by_school(smtp, "info@anker.nl")[-1]
    assert closing.message["Subject"] == f"Data breach {ref} is closed"
    assert EVALUATE["evaluation"] in closing.part("plain")


@pytest.fixture
def tls_login(ctx, tmp_path):
    """Start a STARTTLS server that wants a login; return a factory of (server, context with a wrong
    password and a confirmed incident waiting to be sent)."""
    cert, key = self_signed(tmp_path)
    servers = []

    def start(**options):
        server = SmtpServer(tls=(cert, key), login=("breachflow", "s3cret"), **options)
        server.start()
        servers.append(server)
        add_school(ctx, "56EF", "De Vlinder")
        wrong = with_login(ctx, server, cert, "wrong")
        ref = reported(wrong, brins=("56EF",))
        service.fire(wrong, reference=ref, trigger="begin_triage", actor="hanna")
        service.fire(wrong, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
        return server, wrong, cert

    yield start
    for server in servers:
        server.stop()


def with_login(ctx, server, cert, password):
    return smtp_context(ctx, server.port, smtp_security="starttls", smtp_ca_file=cert,
                        smtp_username="breachflow", smtp_password=password)


def test_starttls_and_login_from_configuration(ctx, tls_login):
    server, wrong, cert = tls_login()
    assert drain(wrong)["retry"] == 1 and server.received == []  # kept for after the fix, not dead
    (waiting,) = outbox.list_messages(wrong, status="pending")
    assert waiting.last_error.startswith("SMTP login refused (535")
    right = with_login(ctx, server, cert, "s3cret")
    due_now(right)
    assert drain(right)["sent"] == 1
    assert [m.recipients for m in server.received] == [["directie@56ef.example.nl"]]


def open_sockets_of_ended_loops() -> list:
    gc.collect()
    return [t for t in gc.get_objects()
            if isinstance(t, _SelectorTransport) and t._sock is not None and t._loop.is_closed()]


def test_a_refused_tls_login_leaves_no_socket_open_when_the_server_is_slow_to_say_goodbye(tls_login):
    _, wrong, _ = tls_login(busy_after_refused_login=1)
    assert drain(wrong)["retry"] == 1  # its event loop has ended while the server was busy
    assert open_sockets_of_ended_loops() == []
