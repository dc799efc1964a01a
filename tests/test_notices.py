"""Notices to schools, received by a real SMTP server on loopback."""

from __future__ import annotations

import gc
from asyncio.selector_events import _SelectorTransport
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import CONFIRM, CONTAIN, EVALUATE, REMEDIATE, VERIFY, add_school, hours_ago, reported
from notify_support import drain, due_now, smtp_context
from reading import whole_timeline
from smtp_server import SmtpServer, self_signed

from breachflow.notifications import facts, outbox
from breachflow.workflow import queries, schools, service


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


def first_line(message, subtype: str = "plain") -> str:
    """What a notice is, as it says on its first line (the subject is the same for all of them)."""
    return message.part(subtype).splitlines()[0]


def test_confirm_sends_the_first_notice_in_dutch_with_all_that_is_known(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    assert smtp.received == []  # queued in the transaction, not sent from it
    assert drain(mail_ctx) == {"sent": 2, "retry": 0, "dead": 0}

    (dutch,) = by_school(smtp, "directie@regenboog.nl")
    assert sorted(dutch.recipients) == ["directie@regenboog.nl", "ib@regenboog.nl"]
    message = dutch.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == f"Datalek {ref} - De Regenboog"
    assert first_line(dutch) == f"Eerste melding van datalek {ref}"
    assert message["Message-ID"].endswith("@breachflow.localhost>") and ref in message["Message-ID"]
    assert message["Date"] and message["To"] == "directie@regenboog.nl, ib@regenboog.nl"
    text, html = dutch.part("plain"), dutch.part("html")
    for expected in (ref, CONFIRM["summary"], CONFIRM["nature_how"], "ingezien", "Ouderportaal",
                     "Genomen maatregelen: nog in onderzoek", "Soort gegevens: nog in onderzoek",
                     "Omvang van de groep betrokkenen: 28 bij De Regenboog", "Autoriteit Persoonsgegevens",
                     "privacy@basisonline.nl", "hanna", f"/link/{ref}.12AB."):
        assert expected in text, expected
    assert CONFIRM["summary"] in html and "<table" in html and "<img" not in html and "src=" not in html

    (english,) = by_school(smtp, "info@anker.nl")
    assert english.message["Subject"] == f"Data breach {ref} - Het Anker"
    assert first_line(english) == f"First notice of data breach {ref}"
    assert "still under investigation" in english.part("plain")

    kinds = [e.kind for e in whole_timeline(mail_ctx, ref)]
    assert kinds[-3:] == ["transition", "notices_queued", "notices_sent"]
    assert all(s.informed_at is not None and s.informed_via == "email" for s in queries.get(mail_ctx, ref).schools)


def test_updates_say_what_changed_since_the_last_notice(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    drain(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    drain(mail_ctx)
    update = by_school(smtp, "directie@regenboog.nl")[-1]
    assert update.message["Subject"] == f"Datalek {ref} - De Regenboog"
    assert first_line(update) == f"Update over datalek {ref}"
    assert first_line(update, "html") == f"<p><strong>Update over datalek {ref}</strong></p>"
    text = update.part("plain")
    assert f"Genomen maatregelen: {CONTAIN['measures']} (was: nog in onderzoek)" in text
    assert "Stand van zaken: oorzaak wordt opgelost (was: wordt ingedamd)" in text

    service.send_update(mail_ctx, reference=ref, actor="hanna", message="De politie is ingelicht.")
    drain(mail_ctx)
    assert "De politie is ingelicht." in by_school(smtp, "directie@regenboog.nl")[-1].part("plain")


@pytest.mark.parametrize("state,steps", [
    ("containment", ()),
    ("remediation", (("contained", CONTAIN),)),
    ("verification", (("contained", CONTAIN), ("remediated", REMEDIATE))),
], ids=["containment", "remediation", "verification"])
def test_a_school_added_to_a_confirmed_incident_gets_its_first_notice_at_once(mail_ctx, smtp, state, steps):
    """In whichever state after confirmation the school is added, not only the first."""
    schools.add(mail_ctx, brin="78GH", name="De Linde", contacts=["directie@linde.nl"])
    ref = confirmed(mail_ctx)
    for trigger, fields in steps:
        service.fire(mail_ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)
    assert queries.get(mail_ctx, ref).state == state
    drain(mail_ctx)
    before = len(smtp.received)
    service.update(mail_ctx, reference=ref, actor="hanna", schools={"78GH": 40})
    drain(mail_ctx)
    (newcomer,) = smtp.received[before:]
    assert newcomer.recipients == ["directie@linde.nl"]
    assert newcomer.message["Subject"] == f"Datalek {ref} - De Linde"
    assert "40 bij De Linde" in newcomer.part("plain")


def test_a_school_caused_breach_tells_the_school_to_notify_the_ap_itself(mail_ctx, smtp):
    ref = confirmed(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    service.fire(mail_ctx, reference=ref, trigger="remediated", actor="hanna",
                 fields=REMEDIATE | {"cause_category": "user_error_admin", "cause_description": "Shared password"})
    drain(mail_ctx)
    notice = by_school(smtp, "directie@regenboog.nl")[-1]
    assert notice.message["Subject"] == f"Datalek {ref} - De Regenboog"
    for subtype in ("plain", "html"):  # what the school must do, and by when, stays at the top
        assert "ACTIE VEREIST: uw school moet dit datalek melden bij de Autoriteit Persoonsgegevens, uiterlijk " \
            in first_line(notice, subtype)
    text = notice.part("plain")
    assert "zelf melden bij de Autoriteit Persoonsgegevens" in text and "Meld uiterlijk " in text
    assert "Vertrouwelijkheid geschonden: ja" in text
    assert all(s.told_to_notify_ap_at is not None for s in queries.get(mail_ctx, ref).schools)


SCHOOL_CAUSE = {"cause_category": "user_error_admin", "cause_description": "Shared password"}
RELATIVE_WORDING = ("na dit bericht", "vanaf dit bericht", "after this message", "from this message")


def shown(moment: datetime, language: str) -> str:
    """A moment as a notice must show it: Amsterdam time, day first in Dutch."""
    local = moment.astimezone(ZoneInfo("Europe/Amsterdam"))
    return f"{local:%d-%m-%Y %H:%M} ({local:%Z})" if language == "nl" else f"{local:%Y-%m-%d %H:%M} ({local:%Z})"


def informed_then_confirmed(ctx, informed_hours_ago: float) -> tuple[str, datetime]:
    """Both schools were phoned (their first notice) ``informed_hours_ago``, then the breach confirmed."""
    ref = reported(ctx, brins=("12AB", "34CD"), discovered_hours_ago=informed_hours_ago + 10)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    informed = hours_ago(informed_hours_ago)
    for brin in ("12AB", "34CD"):
        service.log_contact(ctx, reference=ref, actor="hanna", brin=brin, channel="phone",
                            summary="Director told about the incident", at=informed)
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    return ref, informed


def test_a_later_must_notify_notice_states_the_deadline_from_the_schools_first_notice(mail_ctx, smtp):
    ref, informed = informed_then_confirmed(mail_ctx, informed_hours_ago=30)
    drain(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    service.fire(mail_ctx, reference=ref, trigger="remediated", actor="hanna", fields=REMEDIATE | SCHOOL_CAUSE)
    service.send_update(mail_ctx, reference=ref, actor="hanna")  # the update repeats the same date
    drain(mail_ctx)
    due = informed + timedelta(hours=72)
    for address, language in (("directie@regenboog.nl", "nl"), ("info@anker.nl", "en")):
        *_, told, update = by_school(smtp, address)
        assert shown(due, language) in first_line(told) and shown(due, language) in first_line(told, "html")
        for message in (told, update):
            for body in (message.part("plain"), message.part("html")):
                assert shown(due, language) in body and shown(informed, language) in body
                assert not any(words in body for words in RELATIVE_WORDING), body
    assert "Meld uiterlijk " + shown(due, "nl") in by_school(smtp, "directie@regenboog.nl")[-2].part("plain")
    assert "Notify the AP by " + shown(due, "en") in by_school(smtp, "info@anker.nl")[-2].part("plain")


def test_a_first_notice_to_a_responsible_school_states_its_deadline_as_a_date(mail_ctx, smtp):
    ref = confirmed(mail_ctx, **SCHOOL_CAUSE)
    drain(mail_ctx)
    sent_at = next(e.at for e in whole_timeline(mail_ctx, ref) if e.kind == "notices_queued")
    due = sent_at + timedelta(hours=72)
    for address, language, words in (("directie@regenboog.nl", "nl", "Meld uiterlijk "),
                                      ("info@anker.nl", "en", "Notify the AP by ")):
        (notice,) = by_school(smtp, address)
        text = notice.part("plain")
        assert words + shown(due, language) + " via" in text or words + shown(due, language) + " using" in text
        assert not any(w in text + notice.part("html") for w in RELATIVE_WORDING)


def test_a_school_told_after_its_own_deadline_reads_that_it_passed(mail_ctx, smtp):
    ref, informed = informed_then_confirmed(mail_ctx, informed_hours_ago=100)
    drain(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    service.fire(mail_ctx, reference=ref, trigger="remediated", actor="hanna", fields=REMEDIATE | SCHOOL_CAUSE)
    drain(mail_ctx)
    due = informed + timedelta(hours=72)
    dutch, english = by_school(smtp, "directie@regenboog.nl")[-1], by_school(smtp, "info@anker.nl")[-1]
    assert first_line(dutch).endswith(f"; de termijn verliep op {shown(due, 'nl')}")
    assert "Die termijn is verstreken: meld zo snel mogelijk" in dutch.part("plain")
    assert first_line(english, "html").endswith(f"; the deadline passed at {shown(due, 'en')}</strong></p>")
    assert "That deadline has passed: notify the AP as soon as possible" in english.part("html")


def test_the_deadline_in_a_notice_is_that_schools_own(mail_ctx):
    ref = reported(mail_ctx, brins=("12AB", "34CD"), discovered_hours_ago=40)
    service.fire(mail_ctx, reference=ref, trigger="begin_triage", actor="hanna")
    for brin, hours in (("12AB", 30), ("34CD", 5)):
        service.log_contact(mail_ctx, reference=ref, actor="hanna", brin=brin, channel="phone",
                            summary="Director told", at=hours_ago(hours))
    incident = queries.get(mail_ctx, ref)
    now = hours_ago(0)
    for school in incident.schools:
        told = facts.deadlines(incident, mail_ctx.periods, now, "en", school=school)
        assert told["school_due"] == shown(school.informed_at + timedelta(hours=72), "en")
        assert told["school_since"] == shown(school.informed_at, "en") and told["school_overdue"] is False
    newcomer = facts.deadlines(incident, mail_ctx.periods, now, "en", school=replace(incident.schools[0],
                                                                                     informed_at=None))
    assert (newcomer["school_due"], newcomer["school_since"]) == (shown(now + timedelta(hours=72), "en"), None)


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
    assert closing.message["Subject"] == f"Data breach {ref} - Het Anker"
    assert first_line(closing) == f"Data breach {ref} is closed"
    assert EVALUATE["evaluation"] in closing.part("plain")


def walked(ctx, brins: tuple[str, ...] = ("12AB", "34CD")) -> str:
    """An incident about ``brins`` walked from its first notice to its closing one, every notice sent:
    first notice, update (contained), must-notify (remediated, the school's cause), update (verified), closing."""
    ref = reported(ctx, brins=brins)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    for trigger, fields in (("confirm", CONFIRM), ("contained", CONTAIN), ("remediated", REMEDIATE | SCHOOL_CAUSE),
                            ("verified", VERIFY), ("evaluated", EVALUATE)):
        service.fire(ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)
        assert drain(ctx)["sent"] == len(brins)
    return ref


def test_every_message_to_a_school_about_one_incident_has_the_same_subject(mail_ctx, smtp):
    """So the school's mail client shows them as one conversation; what each is, is its first line."""
    ref = walked(mail_ctx)
    for address, subject, firsts in (
        ("directie@regenboog.nl", f"Datalek {ref} - De Regenboog",
         (f"Eerste melding van datalek {ref}", f"Update over datalek {ref}", "ACTIE VEREIST: uw school moet dit",
          f"Update over datalek {ref}", f"Datalek {ref} is afgesloten")),
        ("info@anker.nl", f"Data breach {ref} - Het Anker",
         (f"First notice of data breach {ref}", f"Update on data breach {ref}", "ACTION REQUIRED: your school must",
          f"Update on data breach {ref}", f"Data breach {ref} is closed")),
    ):
        received = by_school(smtp, address)
        assert [m.message["Subject"] for m in received] == [subject] * 5
        for message, first in zip(received, firsts, strict=True):
            assert first_line(message).startswith(first)
            assert first_line(message, "html").startswith(f"<p><strong>{first}")


def test_a_notice_greets_the_schools_contact_person_by_name_or_else_its_management(mail_ctx, smtp):
    schools.add(mail_ctx, brin="56EF", name="De Vlinder", contacts=["info@vlinder.nl"],
                master={"contact_person": {"name": "Anna de Vries", "phone": "040 123 45 67"}})
    schools.add(mail_ctx, brin="78GH", name="The Oak", contacts=["office@oak.nl"], language="en",
                master={"contact_person": {"name": "Jan Jansen"}})
    walked(mail_ctx, brins=("12AB", "34CD", "56EF", "78GH"))
    for address, greeting in (("directie@regenboog.nl", "Geachte directie van De Regenboog,"),
                              ("info@anker.nl", "Dear management of Het Anker,"),
                              ("info@vlinder.nl", "Geachte Anna de Vries,"), ("office@oak.nl", "Dear Jan Jansen,")):
        received = by_school(smtp, address)
        assert len(received) == 5  # every kind of notice
        for message in received:
            assert message.part("plain").splitlines()[2] == greeting
            assert message.part("html").splitlines()[1] == f"<p>{greeting}</p>"


@pytest.mark.parametrize("processor", [None, "Basisonline B.V."])
def test_every_notice_is_signed_by_the_processor_with_its_contact(mail_ctx, smtp, processor):
    signing = smtp_context(mail_ctx, smtp.port, processor_name=processor)
    walked(signing)
    name, contact = processor or "BasisOnline", signing.settings.processor_contact
    for address, regards in (("directie@regenboog.nl", "Met vriendelijke groet,"), ("info@anker.nl", "Kind regards,")):
        received = by_school(smtp, address)
        assert len(received) == 5
        for message in received:
            assert message.part("plain").endswith(f".\n\n{regards}\n{name}\n{contact}\n")
            assert message.part("html").endswith(f"<p>{regards}<br>{name}<br>{contact}</p>\n")


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
    (waiting,) = outbox.list_messages(wrong, status="pending").items
    assert waiting.last_error.startswith("SMTP login refused (535")
    right = with_login(ctx, server, cert, "s3cret")
    due_now(right)
    assert drain(right)["sent"] == 1
    assert [m.recipients for m in server.received] == [["directie@56ef.example.nl"]]


def open_sockets_of_ended_loops() -> list:
    gc.collect()
    return [t for t in gc.get_objects()
            if isinstance(t, _SelectorTransport) and t._sock is not None and t._loop.is_closed()]


@pytest.mark.slow  # waits out a slow server, by the clock
def test_a_refused_tls_login_leaves_no_socket_open_when_the_server_is_slow_to_say_goodbye(tls_login):
    _, wrong, _ = tls_login(busy_after_refused_login=1)
    assert drain(wrong)["retry"] == 1  # its event loop has ended while the server was busy
    assert open_sockets_of_ended_loops() == []
