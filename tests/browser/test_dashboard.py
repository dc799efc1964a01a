"""A manager in a real browser: the dashboard with its most urgent incident on top, filtered
without JavaScript, the register, and the register's CSV download; every page accessible."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest
from browser_support import accessible, screenshot, sign_in

from breachflow.workflow import service


@pytest.fixture(scope="module")
def incidents(site) -> dict[str, str]:
    """An overdue incident at De Regenboog, a fresh one at Het Anker, and a dismissed one."""
    def report(brin: str, hours_ago: float) -> str:
        return service.report(site.ctx, actor="hanna", source="monitoring", schools={brin: 28},
                              fields={"discovered_at": datetime.now(UTC) - timedelta(hours=hours_ago),
                                      "summary": f"Class lists of {brin} visible to other parents"}).reference

    overdue, fresh, dismissed = report("12AB", 30), report("34CD", 1), report("12AB", 3)
    service.fire(site.ctx, reference=overdue, trigger="begin_triage", actor="hanna")
    service.fire(site.ctx, reference=dismissed, trigger="begin_triage", actor="hanna")
    service.fire(site.ctx, reference=dismissed, trigger="dismiss", actor="hanna",
                 fields={"dismissal_reason": "A test account, no real pupils"})
    return {"overdue": overdue, "fresh": fresh, "dismissed": dismissed}


def test_a_manager_sees_the_dashboard_and_downloads_the_register(page, incidents, tmp_path):
    sign_in(page, "marit")
    page.wait_for_url("**/dashboard")
    rows = page.locator("table.dashboard tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_by_role("link").inner_text() == incidents["overdue"]
    assert "te laat" in rows.nth(0).inner_text() and "hanna" in rows.nth(0).inner_text()
    accessible(page)
    screenshot(page, "dashboard", tmp_path)

    page.get_by_label("School").select_option("34CD")
    page.get_by_role("button", name="Filteren").click()
    page.wait_for_url("**/dashboard?*school=34CD*")
    assert page.locator("table.dashboard tbody tr").count() == 1
    assert page.locator("table.dashboard tbody tr").first.get_by_role("link").inner_text() == incidents["fresh"]

    page.get_by_role("link", name="Register", exact=True).click()
    page.wait_for_url("**/register")
    assert page.get_by_text("Afgewezen als datalek").is_visible()
    accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download als CSV").click()
    with open(download.value.path(), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert {r["reference"]: r["state"] for r in rows} == {
        incidents["overdue"]: "triage", incidents["fresh"]: "reported", incidents["dismissed"]: "dismissed"}
