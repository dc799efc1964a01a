"""The register page: every incident, dismissed and reopened ones included, with filters, and the
CSV download with the same filters — for handlers and managers only."""

from __future__ import annotations

import csv
import io
import re

import pytest
from api_support import SCHOOL_B
from conftest import reported
from web_support import browser, installation

from breachflow.workflow import service

DISMISSED_BECAUSE = "A test account of the school; no real pupils"
REOPENED_BECAUSE = "The school found real pupil data in the export"
REFERENCE = re.compile(r'<th scope="row"><a href="/incidents/([^"]+)"')


@pytest.fixture
def app(ctx, settings):
    return installation(ctx, settings)


@pytest.fixture
def register(ctx):
    """One incident dismissed, one dismissed and reopened, one fresh at the other school."""
    dismissed, reopened = reported(ctx), reported(ctx)
    for reference in (dismissed, reopened):
        service.fire(ctx, reference=reference, trigger="begin_triage", actor="hanna")
        service.fire(ctx, reference=reference, trigger="dismiss", actor="hanna",
                     fields={"dismissal_reason": DISMISSED_BECAUSE})
    service.reopen(ctx, reference=reopened, actor="manon", reason=REOPENED_BECAUSE)
    fresh = reported(ctx, brins=(SCHOOL_B,))
    return {"dismissed": dismissed, "reopened": reopened, "fresh": fresh}


def signed_in(app, user: str = "handler"):
    me = browser(app)
    me.sign_in(user)
    return me


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_every_incident_is_listed_dismissed_and_reopened_ones_with_their_reasons(app, register):
    html = signed_in(app).get("/register").text
    assert REFERENCE.findall(html) == [register["fresh"], register["reopened"], register["dismissed"]]
    assert html.count("Afgewezen als datalek") == 2 and DISMISSED_BECAUSE in html
    assert "Heropend" in html and REOPENED_BECAUSE in html and "(was geen datalek)" in html


def test_the_register_filters_by_state_and_school(app, register):
    me = signed_in(app)
    assert REFERENCE.findall(me.get("/register?state=dismissed").text) == [register["dismissed"]]
    assert REFERENCE.findall(me.get(f"/register?school={SCHOOL_B}").text) == [register["fresh"]]
    assert REFERENCE.findall(me.get("/register?responsibility=school").text) == []


def test_the_register_pages_by_cursor(app, register):
    me, seen, url = signed_in(app), [], "/register?limit=2"
    while url:
        html = me.get(url).text
        seen += REFERENCE.findall(html)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == [register["fresh"], register["reopened"], register["dismissed"]]


def test_the_csv_download_holds_the_register_with_the_pages_filters(app, register):
    me = signed_in(app, "manager")
    page = me.get("/register?state=dismissed").text
    link = re.search(r'href="(/register\.csv[^"]*)"', page).group(1).replace("&amp;", "&")
    assert link == "/register.csv?state=dismissed"
    filtered = me.get(link)
    assert filtered.status_code == 200 and filtered.headers["content-type"].startswith("text/csv")
    assert "attachment" in filtered.headers["content-disposition"]
    assert [(r["reference"], r["dismissal_reason"]) for r in rows_of(filtered)] == [
        (register["dismissed"], DISMISSED_BECAUSE)]
    everything = rows_of(me.get("/register.csv"))
    assert [r["reference"] for r in everything] == [register["fresh"], register["reopened"], register["dismissed"]]
    assert [r["reopen_count"] for r in everything] == ["0", "1", "0"]


def test_an_unknown_filter_is_refused_as_a_page_before_any_download(app, register):
    refused = signed_in(app).get("/register.csv?state=sleeping")
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]


@pytest.mark.parametrize("path", ["/register", "/register.csv"])
def test_a_school_user_can_neither_see_nor_download_the_register(app, register, path):
    refused = signed_in(app, "school_a").get(path)
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert register["dismissed"] not in refused.text


@pytest.mark.parametrize("path", ["/register", "/register.csv?state=closed"])
def test_an_anonymous_visitor_is_sent_to_sign_in(app, path):
    sent = browser(app).get(path)
    assert sent.status_code == 303 and sent.headers["location"].startswith("/signin?next=%2Fregister")


@pytest.mark.tampers
def test_an_incident_planted_with_a_state_breachflow_never_writes_breaks_neither_page(app, ctx):
    import sqlalchemy as sa

    from breachflow.workflow.models import incident_t
    planted, other = reported(ctx), reported(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(incident_t).where(incident_t.c.reference == planted).values(state="bogus"))
    me = browser(app)
    me.sign_in("manager")
    register_page, dashboard_page = me.get("/register"), me.get("/dashboard")
    assert register_page.status_code == dashboard_page.status_code == 200
    assert planted in register_page.text and "bogus" in register_page.text  # shown as it is stored
    assert other in dashboard_page.text and planted not in dashboard_page.text  # not in progress
