"""A responsible school opens its AP dossier in a real browser, and prints it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from browser_support import accessible, screenshot, sign_in

from breachflow.workflow import schools, service

MASTER_DATA = {"address": "Schoolstraat 1, 5611 AA Eindhoven", "kvk_number": "41234567", "sector": "primary",
               "dpo_registration": "FG001234", "contact_person": {"name": "J. de Vries", "phone": "040 123 45 67"}}


def school_caused(site) -> str:
    """An incident caused by an employee of De Regenboog (12AB): the school notifies the AP itself."""
    schools.update(site.ctx, brin="12AB", changes=MASTER_DATA)
    return service.report(site.ctx, actor="hanna", source="school", schools={"12AB": 31}, fields={
        "discovered_at": datetime.now(UTC) - timedelta(hours=3), "cause_category": "user_error_employee",
        "summary": "Report cards of group 8 mailed to the wrong parents", "nature_actions": ["read"],
        "data_kinds": ["learning_performance", "special_categories"], "special_categories": ["health"],
        "other_parties": "The parents of group 7", "other_parties_asked": "To delete the mail"}).reference


def test_a_responsible_school_opens_and_prints_its_ap_dossier(page, site, tmp_path):
    reference = school_caused(site)
    sign_in(page, "regenboog")
    page.goto(f"/incidents/{reference}/dossier")
    assert page.get_by_role("heading", name="Nog te verzamelen").is_visible()
    assert page.get_by_role("heading", name="2. Verwerkingsverantwoordelijke (de school)").is_visible()
    assert page.locator("#controller-kvk_number").inner_text().count("41234567") == 1
    assert "gezondheid" in page.locator("#personal_data-special_categories").inner_text()
    accessible(page)
    screenshot(page, "ap-dossier", tmp_path)

    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("form").first.is_visible()
    assert page.get_by_role("heading", name="Nog te verzamelen").is_visible()
    screenshot(page, "ap-dossier-print", tmp_path)
    printed = tmp_path / "ap-dossier.pdf"
    page.pdf(path=str(printed), format="A4")
    assert printed.read_bytes().startswith(b"%PDF") and printed.stat().st_size > 10_000


def test_another_school_finds_no_dossier_of_an_incident_not_its_own(page, site):
    reference = school_caused(site)
    sign_in(page, "anker")
    response = page.goto(f"/incidents/{reference}/dossier")
    assert response.status == 404
    assert "Regenboog" not in page.content()
    accessible(page)
