"""A school in a real browser: it opens the link in the notice the running server mailed it and
acknowledges receipt; a school user sees only its own incidents; a third party reports a breach."""

from __future__ import annotations

import mailbox
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TypeVar

from browser_support import accessible, screenshot, sign_in

from breachflow.notifications.worker import notifications_context
from breachflow.workflow import queries, service

T = TypeVar("T")
FACTS = {"nature_how": "A permission check in the parent portal was missing", "nature_actions": ["read"],
         "affected_systems": ["parent_portal"], "cause_category": "unknown"}  # what confirming asks (tests/conftest.py
# is not importable here: tests/browser has a conftest of its own)
LINK = re.compile(r"^(https?://\S+/link/\S+)$", re.MULTILINE)  # on a line of its own: no client takes a bracket with it


def until(found: Callable[[], T | None], what: str, seconds: float = 30) -> T:
    """``found()`` once it is something, polled until ``seconds`` have passed."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if result := found():
            return result
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds} s for {what}")


def notice_about(site, reference: str) -> EmailMessage | None:
    """The message about ``reference`` the server delivered, if it did yet."""
    try:
        return next((m for m in site.mail() if reference in m["Subject"]), None)
    except mailbox.NoSuchMailboxError:  # nothing delivered yet
        return None


def confirmed(site, brin: str, summary: str) -> str:
    """An incident affecting ``brin``, confirmed through the service with notices on, as a handler would."""
    ctx = notifications_context(site.ctx)
    reference = service.report(ctx, actor="hanna", source="monitoring", schools={brin: 12},
                               fields={"discovered_at": datetime.now(UTC) - timedelta(hours=1)}).reference
    service.fire(ctx, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=reference, trigger="confirm", actor="hanna", fields=FACTS | {"summary": summary})
    return reference


def test_a_school_opens_the_link_in_its_notice_and_acknowledges(page, site):
    reference = confirmed(site, "12AB", "Toetsresultaten zichtbaar voor andere ouders")
    mail = until(lambda: notice_about(site, reference), "the notice in the maildir")
    assert mail["To"] == "directie@12ab.example.nl"
    text = mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")  # canonical CRLF text
    url = LINK.search(text).group(1)
    until(lambda: queries.get(site.ctx, reference).schools[0].informed_at, "the notice recorded as sent")
    page.goto(url)
    assert page.get_by_role("heading", level=1).inner_text().startswith(reference)
    accessible(page)
    page.get_by_label("Opmerking (niet verplicht)").fill("Ontvangen, we informeren de ouders")
    page.get_by_role("button", name="Ontvangst bevestigen").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Ontvangst bevestigd op")
    accessible(page)
    assert queries.get(site.ctx, reference).schools[0].acknowledged_at is not None


def test_a_school_user_sees_only_its_own_incidents(page, site, tmp_path):
    ours = confirmed(site, "34CD", "Verkeerde ontvanger van een rapport")
    theirs = confirmed(site, "12AB", "Presentielijsten op de website")
    sign_in(page, "anker")
    page.wait_for_url("**/portal")
    assert page.get_by_role("link", name=ours).first.is_visible()
    assert theirs not in page.content()
    accessible(page)
    page.get_by_role("button", name="Afmelden").click()
    page.wait_for_url("**/signin")
    sign_in(page, "regenboog")
    page.wait_for_url("**/portal")
    assert page.get_by_role("link", name=theirs).first.is_visible() and ours not in page.content()
    screenshot(page, "school-portal", tmp_path)
    page.get_by_role("link", name="Nieuw incident melden").click()
    page.wait_for_url("**/portal/report")
    accessible(page)
    page.get_by_role("button", name="Melden", exact=True).click()  # the browser asks for the summary first
    assert page.url.endswith("/portal/report")
    page.get_by_label("Wat is er gebeurd? (verplicht)").fill("Een tas met toetsen is zoekgeraakt")
    page.get_by_label("Aantal betrokkenen bij uw school").fill("24")
    page.get_by_role("button", name="Melden", exact=True).click()
    page.wait_for_url(re.compile(r".*/incidents/DL-\d{4}-\d+$"))


def test_a_third_party_reports_a_breach_and_reads_its_reference(page, site):
    page.goto("/report")
    accessible(page)
    page.get_by_label("Uw naam (verplicht)").fill("P. Jansen")
    page.get_by_label("Uw e-mailadres of telefoonnummer (verplicht)").fill("p.jansen@example.nl")
    page.get_by_label("Wat is er gebeurd? (verplicht)").fill("Ik zie in het ouderportaal de cijfers van een ander kind")
    page.get_by_label("Om welke school gaat het? (als u dat weet)").fill("De Regenboog")
    page.get_by_role("button", name="Melding versturen").click()
    page.wait_for_url("**/report/thanks**")
    reference = page.locator("strong.reference").inner_text()
    assert queries.get(site.ctx, reference).state == "reported"
    accessible(page)
