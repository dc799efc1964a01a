"""The dashboard: incidents in progress with their running clocks, the most urgent first, counted
per state and filtered by state, school and responsibility — for handlers and managers only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from api_support import SCHOOL_A, SCHOOL_B
from conftest import EVALUATE, confirmed, evaluating, reported
from reading import statements
from web_support import browser, installation

from breachflow.api.web.words import countdown
from breachflow.workflow import actions, dashboard, service

REFERENCE = re.compile(r'href="/incidents/([^"]+)"')


@pytest.fixture
def app(ctx, settings):
    return installation(ctx, settings)


def signed_in(app, user: str = "handler"):
    me = browser(app)
    me.sign_in(user)
    return me


def listed(html: str) -> list[str]:
    """The references on a page, in the order shown."""
    return REFERENCE.findall(html)


def row_of(html: str, reference: str) -> str:
    """The table row of ``reference``."""
    start = html.index(f'href="/incidents/{reference}"')
    return html[start:html.index("</tr>", start)]


def quiet(ctx, brin: str = SCHOOL_A) -> str:
    """A report without a discovery time: in progress, with no clock running."""
    return service.report(ctx, actor="handler", source="monitoring", schools={brin: 3}).reference


def dismissed(ctx) -> str:
    reference = reported(ctx)
    service.fire(ctx, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=reference, trigger="dismiss", actor="hanna",
                 fields={"dismissal_reason": "A test account, no real pupils"})
    return reference


def test_the_overdue_come_first_then_the_sooner_due_then_those_without_a_running_clock(app, ctx):
    running = reported(ctx, discovered_hours_ago=1)  # school notice due in 23 h
    none = quiet(ctx)
    overdue = reported(ctx, discovered_hours_ago=30)  # school notice 6 h overdue
    soon = reported(ctx, discovered_hours_ago=20)  # school notice due in 4 h
    gone = dismissed(ctx)
    html = signed_in(app).get("/dashboard").text
    assert listed(html) == [overdue, soon, running, none]
    assert gone not in html


def test_each_clock_shows_its_countdown_with_its_status_in_colour_and_in_words(app, ctx):
    overdue = reported(ctx, discovered_hours_ago=30)
    soon = reported(ctx, discovered_hours_ago=20)
    running = reported(ctx, discovered_hours_ago=1)
    html = signed_in(app).get("/dashboard").text
    late = row_of(html, overdue)
    assert 'class="clock status-overdue"' in late and "te laat</span>" in late
    assert re.search(r"school informeren \(12AB\):\s*<strong class=\"countdown\">(5 u 5\d|6 u 0) min te laat", late)
    assert 'class="clock status-ok"' in late and "melding bij de AP" in late  # the AP clock still runs: 42 h
    assert 'class="clock status-due_soon"' in row_of(html, soon) and "bijna verlopen" in row_of(html, soon)
    assert re.search(r'countdown">nog (22 u 5\d|23 u 0) min', row_of(html, running))
    assert "status-overdue" not in row_of(html, running)


def test_the_dashboard_speaks_english_to_an_english_reader(app, ctx):
    reported(ctx, discovered_hours_ago=30)
    me = signed_in(app)
    me.submit("/dashboard", "/language", {"language": "en", "next": "/dashboard"})
    html = me.get("/dashboard").text
    assert "Incidents in progress" in html and "overdue</span>" in html and "min overdue" in html
    assert "inform the school" in html and "reported" in html


@pytest.mark.parametrize(("left", "nl", "en"), [
    (timedelta(hours=5, minutes=12, seconds=30), "nog 5 u 12 min", "5 h 12 min left"),
    (-timedelta(hours=3, minutes=40), "3 u 40 min te laat", "3 h 40 min overdue"),
    (timedelta(hours=47, minutes=59), "nog 47 u 59 min", "47 h 59 min left"),
    (-timedelta(days=3, hours=2, minutes=5), "3 d 2 u te laat", "3 d 2 h overdue"),
])
def test_a_countdown_reads_as_hours_and_minutes_and_days_when_far(left, nl, en):
    now = datetime.now(UTC)
    assert countdown(now + left, now, "nl") == nl
    assert countdown(now + left, now, "en") == en


def test_the_handler_is_who_last_acted_on_it_not_the_reporter_or_the_system(app, ctx):
    fresh = reported(ctx)
    acted = confirmed(ctx)  # fired by hanna
    service.add_note(ctx, reference=acted, actor="piet", text="Called the school")
    html = signed_in(app).get("/dashboard").text
    assert "nog niemand" in row_of(html, fresh)
    assert "piet" in row_of(html, acted) and "hanna" not in row_of(html, acted)


def test_counts_per_state_include_every_incident(app, ctx):
    for _ in range(2):
        reported(ctx)
    confirmed(ctx)
    dismissed(ctx)
    html = signed_in(app).get("/dashboard").text
    assert "In behandeling: <strong>3</strong>" in html
    assert "gemeld: <strong>2</strong>" in html and "wordt ingedamd: <strong>1</strong>" in html
    assert "geen datalek: <strong>1</strong>" in html


def test_filters_by_state_school_and_responsibility(app, ctx):
    fresh = reported(ctx)
    other_school = reported(ctx, brins=(SCHOOL_B,))
    contained = confirmed(ctx)
    processor = confirmed(ctx)
    service.update(ctx, reference=processor, actor="hanna", fields={"cause_category": "system_technical"})
    me = signed_in(app)
    assert set(listed(me.get("/dashboard?state=containment").text)) == {contained, processor}
    assert listed(me.get(f"/dashboard?school={SCHOOL_B}").text) == [other_school]
    assert listed(me.get("/dashboard?school=34cd").text) == [other_school]
    assert listed(me.get("/dashboard?responsibility=processor").text) == [processor]
    assert set(listed(me.get("/dashboard?responsibility=unknown").text)) == {fresh, other_school, contained}
    both = me.get(f"/dashboard?state=reported&school={SCHOOL_A}&responsibility=")
    assert listed(both.text) == [fresh]
    assert '<option value="reported" selected>' in both.text and f'<option value="{SCHOOL_A}" selected>' in both.text


def test_an_unknown_filter_value_is_a_page_that_says_so(app, ctx):
    me = signed_in(app)
    refused = me.get("/dashboard?state=sleeping")
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]
    assert me.get("/dashboard?school=99ZZ").status_code == 422


def test_pages_follow_each_other_without_gaps_or_repeats_keeping_the_filters(app, ctx):
    expected = [reported(ctx, discovered_hours_ago=h) for h in (30, 20, 10, 1)]
    expected += [quiet(ctx) for _ in range(3)][::-1]  # newest first
    quiet(ctx, SCHOOL_B)  # filtered out
    me, seen, url = signed_in(app), [], f"/dashboard?school={SCHOOL_A}&limit=3"
    while url:
        html = me.get(url).text
        seen += listed(html)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        assert url is None or f"school={SCHOOL_A}" in url
    assert seen == expected


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5])
def test_a_page_boundary_anywhere_between_clocks_and_quiet_incidents_loses_nothing(app, ctx, limit):
    expected = [reported(ctx, discovered_hours_ago=h) for h in (30, 1)]
    expected += [quiet(ctx) for _ in range(2)][::-1]
    seen, cursor = [], None
    while True:
        found = dashboard.overview(ctx, limit=limit, cursor=cursor).page
        assert len(found.items) <= limit
        seen += [row.reference for row in found.items]
        if (cursor := found.next_cursor) is None:
            break
    assert seen == expected


def test_the_statements_of_a_page_do_not_grow_with_the_incidents(app, ctx):
    me = signed_in(app)
    reported(ctx)
    quiet(ctx)
    with statements(app.state.ctx) as few:
        assert me.get("/dashboard").status_code == 200
    for hours in range(1, 25):
        confirmed(ctx) if hours % 3 == 0 else reported(ctx, discovered_hours_ago=hours)
    quiet(ctx)
    with statements(app.state.ctx) as many:
        assert me.get("/dashboard").status_code == 200
    assert len(many) == len(few)


@pytest.mark.parametrize("user", ["handler", "manager"])
def test_handlers_and_managers_see_the_dashboard(app, ctx, user):
    reference = reported(ctx)
    page = signed_in(app, user).get("/dashboard")
    assert page.status_code == 200 and reference in page.text


@pytest.mark.parametrize("user", ["school_a", "admin"])
def test_a_school_user_or_an_admin_is_refused_with_a_page(app, ctx, user):
    reference = reported(ctx)
    refused = signed_in(app, user).get("/dashboard")
    assert refused.status_code == 403 and "Geen toegang" in refused.text and reference not in refused.text


def test_an_anonymous_visitor_is_sent_to_sign_in_and_back(app):
    sent = browser(app).get("/dashboard?state=triage")
    assert sent.status_code == 303 and sent.headers["location"] == "/signin?next=%2Fdashboard%3Fstate%3Dtriage"


def test_a_closed_incident_stays_on_the_dashboard_while_a_follow_up_action_is_open(app, ctx):
    """An open (non-blocking) action is work still to do after the closing: its incident is listed with
    the action's clock, naming its number and owner, until the action is settled."""
    ref = evaluating(ctx, brins=(SCHOOL_A,), school_caused=True)
    due = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    closed = service.fire(ctx, reference=ref, trigger="evaluated", actor="handler", fields=EVALUATE, actions=[
        {"description": "Review every class page", "owner": "manager", "due": due}])
    assert closed.state == "closed"
    me = signed_in(app)
    html = me.get("/dashboard").text
    assert ref in listed(html)
    assert "vervolgactie 1 (eigenaar: manager)" in row_of(html, ref)
    actions.settle(ctx, reference=ref, actor="handler", number=1, status="done")
    assert ref not in listed(me.get("/dashboard").text)
