"""Every page, as each person who may see it, on a phone: nothing wider than the screen, every
control reachable and labelled (axe-core), and no script of its own (the pages work without one)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from browser_support import accessible, sign_in

from breachflow.workflow import service

PHONE = {"width": 375, "height": 740}
CONFIRM = {"nature_how": "Een rechtencontrole ontbrak", "nature_actions": ["read"], "affected_systems": ["parent_portal"],
           "cause_category": "user_error_employee", "summary": "Cijferlijst zichtbaar voor andere ouders"}


@pytest.fixture(scope="module")
def incident(site) -> str:
    """An incident of De Regenboog, confirmed, its cause an employee's error (the school notifies the AP)."""
    ref = service.report(site.ctx, actor="hanna", source="school", schools={"12AB": 28},
                         fields={"discovered_at": datetime.now(UTC) - timedelta(hours=2)}).reference
    service.fire(site.ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(site.ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    return ref


PAGES = {
    None: ["/signin", "/report"],
    "hanna": ["/dashboard", "/register", "/incidents/new", "/incidents/{ref}", "/incidents/{ref}/dossier", "/account"],
    "marit": ["/dashboard", "/register", "/incidents/{ref}"],
    "regenboog": ["/portal", "/portal/report", "/incidents/{ref}", "/incidents/{ref}/dossier"],
}


@pytest.mark.parametrize(("user", "path"), [(u, p) for u, paths in PAGES.items() for p in paths])
def test_each_page_fits_a_phone_and_passes_axe(chromium, site, incident, user, path):
    context = chromium.new_context(base_url=site.url, viewport=PHONE)  # axe-core itself needs script
    page = context.new_page()
    try:
        if user:
            sign_in(page, user)
        response = page.goto(path.format(ref=incident))
        assert response.status == 200, path
        wider = page.evaluate("document.documentElement.scrollWidth") - PHONE["width"]
        assert wider <= 1, f"{path} is {wider}px wider than a phone"
        assert page.locator("script").count() == 0, f"{path} runs a script; every page works without one"
        accessible(page)
    finally:
        context.close()


def test_the_incident_page_is_worked_with_the_keyboard_alone(chromium, site, incident):
    context = chromium.new_context(base_url=site.url)
    page = context.new_page()
    try:
        sign_in(page, "hanna")
        page.goto(f"/incidents/{incident}")
        focused = set()
        for _ in range(60):  # Tab through the page: every control gets the focus, visibly named
            page.keyboard.press("Tab")
            name = page.evaluate("""() => { const e = document.activeElement;
                return e ? (e.labels && e.labels.length ? e.labels[0].innerText : e.innerText || e.value || e.name) : ''; }""")
            focused.add(re.sub(r"\s+", " ", name or "").strip())
        assert any("Notitie" in name or "notitie" in name for name in focused), sorted(focused)[:20]
    finally:
        context.close()
