"""A school reads every message about one incident as one conversation.

Captured by a real SMTP server on loopback: the school's first notice starts the thread; every later
message to that school about that incident names it in ``In-Reply-To`` and ``References`` and
keeps its subject, so Outlook, Gmail and Thunderbird group them. Each school has its own thread.
"""

from __future__ import annotations

import pytest
from conftest import CONFIRM, CONTAIN, EVALUATE, REMEDIATE, VERIFY, reported
from notify_support import drain, smtp_context

from breachflow.workflow import schools, service


@pytest.fixture
def mail_ctx(ctx, smtp):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["directie@regenboog.nl", "ib@regenboog.nl"])
    schools.add(ctx, brin="34CD", name="Het Anker", contacts=["info@anker.nl"], language="en")
    return smtp_context(ctx, smtp.port)


def to(smtp, address):
    return [m.message for m in smtp.received if address in m.recipients]


def test_the_initial_notice_and_two_updates_form_one_thread_per_school(mail_ctx, smtp):
    ref = reported(mail_ctx, brins=("12AB", "34CD"))
    service.fire(mail_ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(mail_ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    drain(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    drain(mail_ctx)
    service.send_update(mail_ctx, reference=ref, actor="hanna", message="De politie is ingelicht.")
    drain(mail_ctx)

    threads = {}
    for address in ("directie@regenboog.nl", "info@anker.nl"):
        first, *updates = to(smtp, address)
        assert len(updates) == 2
        assert first["In-Reply-To"] is None and first["References"] is None
        root = first["Message-ID"].strip()
        for update in updates:
            assert update["In-Reply-To"].strip() == root and update["References"].strip() == root
            assert update["Message-ID"] != first["Message-ID"]
            assert update["Subject"] == first["Subject"], "one subject, so clients group by it too"
        assert ref in str(first["Subject"])
        threads[address] = root
    assert threads["directie@regenboog.nl"] != threads["info@anker.nl"], "each school has its own conversation"


def test_a_school_added_later_starts_its_own_thread_and_the_others_keep_theirs(mail_ctx, smtp):
    schools.add(mail_ctx, brin="78GH", name="De Linde", contacts=["directie@linde.nl"])
    ref = reported(mail_ctx, brins=("12AB",))
    service.fire(mail_ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(mail_ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    drain(mail_ctx)
    service.update(mail_ctx, reference=ref, actor="hanna", schools={"78GH": 40})
    drain(mail_ctx)
    service.fire(mail_ctx, reference=ref, trigger="contained", actor="hanna", fields=CONTAIN)
    drain(mail_ctx)

    (first_a, update_a), (first_b, update_b) = to(smtp, "directie@regenboog.nl"), to(smtp, "directie@linde.nl")
    assert first_b["In-Reply-To"] is None, "the newcomer's first notice is the start of its thread"
    assert update_a["In-Reply-To"].strip() == first_a["Message-ID"].strip()
    assert update_b["In-Reply-To"].strip() == first_b["Message-ID"].strip()


def test_the_must_notify_and_closing_notices_continue_the_thread(mail_ctx, smtp):
    ref = reported(mail_ctx, brins=("12AB",))
    service.fire(mail_ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(mail_ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    for trigger, fields in (("contained", CONTAIN), ("remediated", REMEDIATE | {"cause_category": "user_error_admin"}),
                            ("verified", VERIFY), ("evaluated", EVALUATE)):
        service.fire(mail_ctx, reference=ref, trigger=trigger, actor="hanna", fields=fields)
        drain(mail_ctx)
    first, *later = to(smtp, "directie@regenboog.nl")
    assert len(later) == 4  # contained, must notify the AP, verified, closed
    assert all(m["References"].strip() == first["Message-ID"].strip() and m["Subject"] == first["Subject"]
               for m in later)
    assert all(m["Content-Language"] == "nl" for m in (first, *later))
