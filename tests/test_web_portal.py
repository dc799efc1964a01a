"""The school's pages: the signed link in a notice, the school portal, and the public report form.

A link opens one school's part of one incident, changes nothing by being opened, and acknowledges
receipt with a button; every link that opens nothing is the same 404. The portal shows a school its
own incidents and notices, never another's. A third party's report becomes a ``reported`` incident,
a few an hour per client address.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from api_support import SCHOOL_A, SCHOOL_B
from conftest import CONFIRM, hours_ago
from freezegun import freeze_time
from web_support import browser, csrf_of, installation

from breachflow.api.web import portal
from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import mailer_for
from breachflow.workflow import links, queries, service
from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.intake import PUBLIC_ACTOR, WHAT_LENGTH
from breachflow.workflow.timeline import EventKind

ALERT = re.compile(r'<p class="alert" role="alert">(.*?)</p>', re.S)


def report(site, brins=(SCHOOL_A,), summary="Cijferlijsten van groep 7 zichtbaar voor alle ouders"):
    return service.report(site, actor="handler", source="monitoring", schools={b: 28 for b in brins},
                          fields={"discovered_at": hours_ago(2), "summary": summary}).reference


def confirm(site, reference, **fields):
    service.fire(site, reference=reference, trigger="begin_triage", actor="handler")
    service.fire(site, reference=reference, trigger="confirm", actor="handler", fields=CONFIRM | fields)


def deliver(site) -> None:
    """Send what the outbox holds (to the maildir): the schools are then informed."""
    async def run():
        dispatcher = Dispatcher(site, mailer_for(site.settings))
        await dispatcher.drain()
        await dispatcher.mailer.close()
    asyncio.run(run())


def informed(site, brins=(SCHOOL_A,), **fields) -> str:
    """A confirmed incident affecting ``brins`` whose notices were delivered."""
    reference = report(site, brins)
    confirm(site, reference, **fields)
    deliver(site)
    return reference


def link(site, reference, brin=SCHOOL_A, days=30) -> str:
    return "/link/" + links.make(site.audit_key, reference=reference, brin=brin, valid_for=timedelta(days=days))


def events(site, reference):
    return queries.timeline_page(site, reference, limit=500).items


def part(site, reference, brin=SCHOOL_A):
    return next(s for s in queries.get(site, reference).schools if s.brin == brin)


# --- the signed link ------------------------------------------------------------------------------

def test_a_link_shows_the_schools_part_without_signing_in_and_writes_nothing(app, site):
    reference = informed(site, (SCHOOL_A, SCHOOL_B))
    before, version = events(site, reference), queries.get(site, reference).version
    page = browser(app).get(link(site, reference))
    assert page.status_code == 200
    assert reference in page.text and "De Regenboog" in page.text
    assert "Het Anker" not in page.text and SCHOOL_B not in page.text  # the other school's part is not shown
    assert "Eerste melding" in page.text and "Ontvangst bevestigen" in page.text  # the notice sent to it
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert "bf_session" not in page.headers.get("set-cookie", "")
    assert events(site, reference) == before and queries.get(site, reference).version == version
    assert part(site, reference).acknowledged_at is None


def test_every_link_that_opens_nothing_is_the_same_404(app, site):
    reference = informed(site)
    other = informed(site, (SCHOOL_B,))
    good = link(site, reference)
    prefix, signature = good.rsplit(".", 1)
    bent = {
        "tampered signature": f"{prefix}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        "another school": good.replace(f".{SCHOOL_A}.", f".{SCHOOL_B}."),
        "another incident": good.replace(reference, other),
        "a school the incident does not affect": link(site, reference, SCHOOL_B),
        "an incident that does not exist": link(site, reference[:-1] + "9"),
        "not a link at all": "/link/whatever",
        "a long one": f"{good}{'x' * 500}",
    }
    me = browser(app)
    messages = set()
    for why, path in bent.items():
        page = me.get(path)
        assert page.status_code == 404, why
        messages.add(ALERT.search(page.text).group(1))
        assert reference not in ALERT.search(page.text).group(1)
    with freeze_time(datetime.now(UTC) + timedelta(days=app.state.ctx.settings.link_days, minutes=1)):
        expired = me.get(good)
    assert expired.status_code == 404
    messages.add(ALERT.search(expired.text).group(1))
    assert len(messages) == 1  # nothing tells one kind of refusal from another
    assert me.get(good).status_code == 200


def test_a_link_stops_working_once_the_incident_no_longer_affects_the_school(app, site):
    reference = report(site, (SCHOOL_A, SCHOOL_B))
    path = link(site, reference, SCHOOL_B)
    assert browser(app).get(path).status_code == 200
    service.update(site, reference=reference, actor="handler", remove_schools=[SCHOOL_B])
    assert browser(app).get(path).status_code == 404


def test_acknowledging_through_the_link_is_on_the_timeline(app, site):
    reference = informed(site, (SCHOOL_A, SCHOOL_B))
    path = link(site, reference)
    done = browser(app).submit(path, f"{path}/acknowledge", {"comment": "Gelezen, we bellen morgen"})
    assert done.status_code == 303 and done.headers["location"] == path
    last = events(site, reference)[-1]
    assert last.kind == EventKind.acknowledged and last.actor == f"link:{SCHOOL_A}"
    assert last.payload == {"school": SCHOOL_A, "comment": "Gelezen, we bellen morgen"}
    assert part(site, reference).acknowledged_at is not None and part(site, reference, SCHOOL_B).acknowledged_at is None
    page = browser(app).get(path)
    assert "Ontvangst bevestigd op" in page.text and "Ontvangst bevestigen</button>" not in page.text


def test_an_acknowledgement_without_this_browsers_token_is_refused(app, site):
    reference = informed(site)
    path = link(site, reference)
    me, other = browser(app), browser(app)
    me.get(path)
    assert me.client.post(f"{path}/acknowledge", data={}, follow_redirects=False).status_code == 403
    foreign = csrf_of(other.get(path).text)
    assert me.client.post(f"{path}/acknowledge", data={"csrf": foreign}, follow_redirects=False).status_code == 403
    assert part(site, reference).acknowledged_at is None


def test_a_link_grants_that_page_and_nothing_else(app, site):
    reference = informed(site)
    other = informed(site)
    path = link(site, reference)
    me = browser(app)
    me.get(path)
    assert me.get("/portal").status_code == 303  # no session: sign in
    assert me.get(f"/api/v1/incidents/{reference}").status_code == 401
    bent = path.replace(reference, other)
    assert me.submit(path, f"{bent}/acknowledge", {}).status_code == 404
    assert part(site, other).acknowledged_at is None


def test_a_link_reads_in_english_for_a_visitor_who_chose_it(app, site):
    reference = informed(site, cause_category="user_error_employee")
    path = link(site, reference)
    me = browser(app)
    me.submit(path, "/language", {"language": "en", "next": path})
    page = me.get(path).text
    assert "Acknowledge receipt" in page and "Your notification to the AP (72 h)" in page
    assert re.search(r"\d+ d \d+ h left", page) and "user error of an employee" in page


def test_a_link_shows_the_ap_notifications_that_cover_its_school_only(app, site):
    reference = informed(site, (SCHOOL_A, SCHOOL_B), cause_category="user_error_employee")
    service.record_ap_notification(site, reference=reference, actor="handler", kind="preliminary",
                                   ap_reference="M-2001", schools=[SCHOOL_A])
    service.record_ap_notification(site, reference=reference, actor="handler", kind="preliminary",
                                   ap_reference="M-2002", schools=[SCHOOL_B])
    page = browser(app).get(link(site, reference)).text
    assert "voorlopige melding" in page and "M-2001" in page and "M-2002" not in page


def test_a_long_comment_is_named_and_kept(app, site):
    reference = informed(site)
    path = link(site, reference)
    refused = browser(app).submit(path, f"{path}/acknowledge", {"comment": "x" * 2001})
    assert refused.status_code == 422 and 'id="comment-problem"' in refused.text and "x" * 2001 in refused.text
    assert part(site, reference).acknowledged_at is None


# --- the school portal ----------------------------------------------------------------------------

def test_a_school_sees_only_its_own_incidents_and_notices(app, site):
    ours = informed(site, (SCHOOL_A,), summary="Ons lek")
    theirs = informed(site, (SCHOOL_B,), summary="Hun lek")
    shared = informed(site, (SCHOOL_A, SCHOOL_B), summary="Gedeeld lek")
    a, b = browser(app), browser(app)
    a.sign_in("school_a")
    b.sign_in("school_b")
    page_a, page_b = a.get("/portal"), b.get("/portal")
    assert page_a.status_code == page_b.status_code == 200
    assert ours in page_a.text and shared in page_a.text and theirs not in page_a.text and "Hun lek" not in page_a.text
    assert theirs in page_b.text and ours not in page_b.text
    assert page_a.text.count("Eerste melding") == 2 and page_b.text.count("Eerste melding") == 2  # its notices
    assert "verzonden" in page_a.text


def test_a_schools_pages_replayed_by_another_school_show_only_its_own(app, site, monkeypatch):
    for _ in range(3):
        informed(site, (SCHOOL_A,))
    theirs = informed(site, (SCHOOL_B,))
    a, b = browser(app), browser(app)
    a.sign_in("school_a")
    b.sign_in("school_b")
    monkeypatch.setattr(portal, "PER_PAGE", 2)
    first = a.get("/portal")
    cursor = re.search(r'href="/portal\?cursor=([^"&]+)', first.text).group(1)
    notices = re.search(r'href="/portal\?notices=([^"&]+)', first.text).group(1)
    replayed = b.get(f"/portal?cursor={cursor}&notices={notices}")
    assert replayed.status_code == 200 and "DL-" not in replayed.text.replace(theirs, "")  # only B's, if any
    token = csrf_of(a.get("/portal/report").text)
    assert b.client.post("/portal/report", data={"csrf": token, "summary": "x"}, follow_redirects=False).status_code == 403


def test_the_portal_is_for_school_users(app):
    assert browser(app).get("/portal").headers["location"] == "/signin?next=%2Fportal"
    handler = browser(app)
    handler.sign_in("handler")
    assert handler.get("/portal").status_code == 403
    assert handler.get("/portal/report").status_code == 403


def test_a_responsible_school_sees_its_own_ap_deadline_and_its_dossier(app, site):
    ours = informed(site, (SCHOOL_A,), cause_category="user_error_employee")
    processor = informed(site, (SCHOOL_A,), cause_category="system_technical")
    me = browser(app)
    me.sign_in("school_a")
    page = me.get("/portal").text
    row = page[page.index(f'href="/incidents/{ours}"'):]
    row = row[:row.index("</tr>")]
    assert f'href="/incidents/{ours}/dossier"' in row and re.search(r"nog \d+ (d|u)", row)
    other = page[page.index(f'href="/incidents/{processor}"'):]
    other = other[:other.index("</tr>")]
    assert "/dossier" not in other and "nog " not in other


def test_a_school_reports_an_incident_for_itself(app, site):
    me = browser(app)
    me.sign_in("school_a")
    discovered = (datetime.now(AMSTERDAM) - timedelta(hours=3)).replace(second=0, microsecond=0, tzinfo=None)
    done = me.submit("/portal/report", "/portal/report", {
        "summary": "Een map met toetsen lag in de trein", "discovered_at": discovered.isoformat(timespec="minutes"),
        "nature_how": "Vergeten na een schoolreis", "reporter_name": "J. de Vries",
        "reporter_contact": "j.devries@12ab.example.nl", "affected_count": "31", "school": SCHOOL_B})
    assert done.status_code == 303
    reference = done.headers["location"].removeprefix("/incidents/")
    incident = queries.get(site, reference)
    assert incident.source == "school" and incident.state == "reported"
    assert [(s.brin, s.affected_count) for s in incident.schools] == [(SCHOOL_A, 31)]  # its own school only
    assert incident.disclosure.discovered_at == discovered.replace(tzinfo=AMSTERDAM).astimezone(UTC)
    assert incident.disclosure.reporter_name == "J. de Vries"
    assert events(site, reference)[0].actor == "school_a"


@pytest.mark.parametrize(("data", "field"), [
    ({"summary": ""}, "summary"),
    ({"summary": "x" * 20_001}, "summary"),
    ({"discovered_at": "gisteren"}, "discovered_at"),
    ({"discovered_at": (datetime.now(AMSTERDAM) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}, "discovered_at"),
    ({"affected_count": "veel"}, "affected_count"),
    ({"affected_count": "-3"}, "affected_count"),
    ({"affected_count": "١٢"}, "affected_count"),
    ({"discovered_at": "0001-01-01T00:00"}, "discovered_at"),
])
def test_a_refused_school_report_names_the_field_and_keeps_what_was_typed(app, site, data, field):
    me = browser(app)
    me.sign_in("school_a")
    typed = {"summary": "Een lek", "nature_how": "Zo ging het"} | data
    refused = me.submit("/portal/report", "/portal/report", typed)
    assert refused.status_code == 422
    assert f'id="{field}-problem"' in refused.text and "Zo ging het" in refused.text
    assert queries.incident_page(site).items == []


# --- the public report form -----------------------------------------------------------------------

def test_a_third_party_reports_and_sees_its_reference(app, site):
    me = browser(app)
    done = me.submit("/report", "/report", {"name": "P. Jansen", "contact": "06 1234 5678",
                                            "what": "Ik zie de cijfers van andere kinderen", "school": "De Regenboog"})
    assert done.status_code == 303
    thanks = me.get(done.headers["location"])
    reference = re.search(r'<strong class="reference">(DL-\d{4}-\d+)</strong>', thanks.text).group(1)
    incident = queries.get(site, reference)
    assert incident.state == "reported" and incident.source == "third_party" and incident.schools == []
    assert incident.disclosure.reporter_name == "P. Jansen" and incident.disclosure.reporter_contact == "06 1234 5678"
    assert "Ik zie de cijfers" in incident.disclosure.summary and "De Regenboog" in incident.disclosure.summary
    assert events(site, reference)[0].actor == PUBLIC_ACTOR


def test_the_thank_you_page_looks_nothing_up(app, site):
    reference = report(site)
    page = browser(app).get(f"/report/thanks?reference={reference}")
    assert "Cijferlijsten" not in page.text
    assert "DL-" not in browser(app).get("/report/thanks?reference=<b>x</b>").text


def test_reports_from_one_address_are_limited_per_hour(ctx, settings):
    app = installation(ctx, settings.model_copy(update={"reports_per_hour": 2}))
    me = browser(app)
    report_data = {"name": "P. Jansen", "contact": "p@example.nl", "what": "Lek"}
    assert [me.submit("/report", "/report", report_data).status_code for _ in range(2)] == [303, 303]
    refused = me.submit("/report", "/report", report_data | {"what": "Derde melding"})
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 3600
    assert "Derde melding" in refused.text
    assert len(queries.incident_page(app.state.ctx).items) == 2
    assert browser(app).get("/report").status_code == 200  # the form itself stays open


@pytest.mark.parametrize(("data", "field"), [
    ({"name": ""}, "name"),
    ({"contact": ""}, "contact"),
    ({"contact": "bel me maar"}, "contact"),
    ({"what": ""}, "what"),
    ({"what": "x" * (WHAT_LENGTH + 1)}, "what"),
    ({"school": "s" * 201}, "school"),
])
def test_a_refused_public_report_names_the_field(app, site, data, field):
    typed = {"name": "P. Jansen", "contact": "p@example.nl", "what": "Iets gezien"} | data
    refused = browser(app).submit("/report", "/report", typed)
    assert refused.status_code == 422 and f'id="{field}-problem"' in refused.text
    assert "P. Jansen" in refused.text or field == "name"
    assert queries.incident_page(site).items == []


def test_a_public_report_without_this_browsers_token_is_refused(app, site):
    response = browser(app).client.post("/report", data={"name": "x", "contact": "x@example.nl", "what": "y"},
                                        follow_redirects=False)
    assert response.status_code == 403
    assert queries.incident_page(site).items == []
