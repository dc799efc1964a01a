"""The incident page: who sees what, the handler's forms (every kind of field), refusals that keep what
was typed, the timeline in words and Amsterdam time, notices with their delivery and acknowledgement,
the lifecycle picture, and the handler's report form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from conftest import CONFIRM, confirmed, evaluating, hours_ago, reported
from notify_support import drain, smtp_context
from web_support import browser, csrf_of, installation

from breachflow.api.web.render import amsterdam
from breachflow.workflow import queries, service
from breachflow.workflow.deadlines import local

REPR = re.compile(r"datetime\.datetime\(|<(Action|Group|Severity|DataKind|CauseCategory)\.|\['|\bNone\b|\bTrue\b|\bFalse\b")


@pytest.fixture
def app(ctx, settings):
    return installation(ctx, settings)


def signed_in(app, user: str):
    me = browser(app)
    me.sign_in(user)
    return me


def page_of(me, reference: str) -> str:
    response = me.get(f"/incidents/{reference}")
    assert response.status_code == 200, response.text[-2000:]
    return response.text


def test_a_school_sees_only_its_own_part_and_a_foreign_incident_is_the_same_404(app, ctx):
    shared = confirmed(ctx, brins=("12AB", "34CD"))
    service.update(ctx, reference=shared, actor="hanna", fields={"reporter_name": "Sanne de Vries"})
    service.log_contact(ctx, reference=shared, actor="hanna", brin="34CD", channel="phone", summary="Anker called")
    foreign = reported(ctx, brins=("34CD",))
    school = signed_in(app, "school_a")
    html = page_of(school, shared)
    assert "De Regenboog" in html and "Het Anker" not in html and "34CD" not in html
    assert "Sanne de Vries" not in html and "/triggers/" not in html and "/edit" not in html
    assert "contact met" not in html  # the contact with the other school is not on its timeline
    assert "Sanne de Vries" in page_of(signed_in(app, "manager"), shared)
    missing, other = school.get("/incidents/DL-2000-99999"), school.get(f"/incidents/{foreign}")
    assert missing.status_code == other.status_code == 404
    assert other.text.replace(foreign, "X") == missing.text.replace("DL-2000-99999", "X")
    replay = school.client.post(f"/incidents/{foreign}/acknowledgements", data={"csrf": csrf_of(html)},
                                follow_redirects=False)
    assert replay.status_code == 404


def test_a_manager_sees_no_step_or_form_and_a_managers_post_is_403(app, ctx):
    ref = reported(ctx)
    manager = signed_in(app, "manager")
    html = page_of(manager, ref)
    assert "/triggers/" not in html and 'action="/incidents/' + ref not in html
    refused = manager.client.post(f"/incidents/{ref}/triggers/begin_triage", data={"csrf": csrf_of(html)},
                                  follow_redirects=False)
    assert refused.status_code == 403
    assert queries.get(ctx, ref).state == "reported"


def test_a_form_without_this_browsers_token_is_refused(app, ctx):
    ref = reported(ctx)
    handler = signed_in(app, "handler")
    page_of(handler, ref)
    refused = handler.client.post(f"/incidents/{ref}/triggers/begin_triage", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert queries.get(ctx, ref).state == "reported"


def test_a_handler_fires_a_trigger_whose_form_asks_exactly_what_is_missing(app, ctx):
    ref = reported(ctx)
    handler = signed_in(app, "handler")
    assert handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/triggers/begin_triage", {}).status_code == 303
    html = page_of(handler, ref)
    confirm = html[html.index('id="form-trigger-confirm"'):html.index("</details>", html.index('id="form-trigger-confirm"'))]
    asked = set(re.findall(r'name="fields" value="([a-z_]+)"', confirm))
    assert asked == {"summary", "nature_how", "nature_actions", "affected_systems", "cause_category"}
    assert 'type="checkbox" name="nature_actions" value="read"' in confirm
    assert '<select id="trigger-confirm-cause_category" name="cause_category"' in confirm


def test_a_refused_trigger_names_the_missing_fields_and_keeps_what_was_typed(app, ctx):
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    handler = signed_in(app, "handler")
    refused = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/triggers/confirm", {
        "fields": ["summary", "nature_how", "nature_actions", "affected_systems", "cause_category"],
        "version": "2", "nature_how": "A check was missing in the class page", "cause_category": "system_technical",
        "nature_actions": ["read", "copied"]})
    assert refused.status_code == 409
    html = refused.text
    assert ">A check was missing in the class page</textarea>" in html
    assert '<option value="system_technical" selected>' in html
    assert 'value="read" checked' in html and 'value="copied" checked' in html
    for missing in ("samenvatting van het incident", "welke systemen van de verwerker zijn getroffen"):
        assert f"<strong>{missing}</strong>" in html
    assert queries.get(ctx, ref).state == "triage" and queries.get(ctx, ref).disclosure.nature_how is None


def test_every_kind_of_field_is_read_from_its_control(app, ctx):
    ref = reported(ctx)
    discovered = local(hours_ago(5)).replace(second=0, microsecond=0)
    handler = signed_in(app, "handler")
    fields = ["discovered_at", "summary", "reporter_name", "nature_actions", "affected_systems", "cause_category", "group_size_min",
              "group_size_max", "data_unreadable", "fix_tested", "affected_groups"]
    saved = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/edit", {
        "fields": fields, "version": "1",
        "discovered_at": f"{discovered:%Y-%m-%dT%H:%M}", "summary": "  Class lists visible  ", "reporter_name": "Sanne",
        "nature_actions": ["copied", "read"], "affected_systems": ["plaza"], "cause_category": "user_error_admin",
        "group_size_min": "3", "group_size_max": "30", "data_unreadable": "no", "fix_tested": "yes",
        "affected_groups.pupils": "on", "affected_groups.pupils.consequences": "Names seen by parents",
        "affected_groups.pupils.severity": "limited", "affected_groups.staff.consequences": "not ticked: ignored",
        "school": ["34cd", ""], "count": ["7", ""]})
    assert saved.status_code == 303, saved.text[-3000:]
    d = queries.get(ctx, ref).disclosure
    assert d.discovered_at == discovered.astimezone(d.discovered_at.tzinfo)  # read in Amsterdam time, stored UTC
    assert d.discovered_at.utcoffset() == timedelta(0)
    assert (d.summary, d.reporter_name) == ("Class lists visible", "Sanne")
    assert (d.nature_actions, d.affected_systems) == (["copied", "read"], ["plaza"])
    assert (d.cause_category, d.group_size_min, d.group_size_max) == ("user_error_admin", 3, 30)
    assert (d.data_unreadable, d.fix_tested) == (False, True)
    assert [(g.group, g.consequences, g.severity) for g in d.affected_groups] == [
        ("pupils", "Names seen by parents", "limited")]
    assert {s.brin: s.affected_count for s in queries.get(ctx, ref).schools} == {"12AB": 28, "34CD": 7}


def test_an_unchanged_edit_form_changes_nothing_and_bad_input_names_the_field(app, ctx):
    ref = confirmed(ctx)
    handler = signed_in(app, "handler")
    html = page_of(handler, ref)
    edit = html[html.index('action="/incidents/' + ref + '/edit"'):]
    names = re.findall(r'name="fields" value="([a-z_]+)"', edit[:edit.index("</form>")])
    shown = {"fields": names, "version": str(queries.get(ctx, ref).version),
             "discovered_at": re.search(r'name="discovered_at" type="datetime-local" value="([^"]*)"', edit).group(1),
             "nature_actions": ["read"], "affected_systems": ["parent_portal"], "cause_category": "unknown",
             "summary": CONFIRM["summary"], "nature_how": CONFIRM["nature_how"]}
    before = len(queries.timeline_page(ctx, ref).items)
    refused = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/edit", shown)
    assert refused.status_code == 422  # nothing changed: nothing to update
    assert len(queries.timeline_page(ctx, ref).items) == before
    bad = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/edit", shown | {
        "group_size_min": "-3", "affected_groups.parents": "on", "affected_groups.parents.severity": "limited"})
    assert bad.status_code == 422
    assert "<strong>aantal betrokkenen (ondergrens)</strong>" in bad.text
    assert "affected_groups.parents.consequences" in bad.text or "getroffen groepen" in bad.text
    assert 'value="-3"' in bad.text  # kept as typed


def test_the_timeline_is_told_in_words_newest_first_in_amsterdam_time(app, ctx):
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    service.add_note(ctx, reference=ref, actor="hanna", text="Called the director")
    handler = signed_in(app, "handler")
    html = page_of(handler, ref)
    timeline = html[html.index('id="h-timeline"'):]
    assert not REPR.search(timeline), REPR.search(timeline)
    assert "bevestigen: in analyse → wordt ingedamd" in timeline
    assert "categorie van de oorzaak: — → nog onbekend" in timeline
    assert "wat er met de gegevens is gebeurd" in timeline and "— → ingezien" in timeline
    assert timeline.index("notitie") < timeline.index("bevestigen:") < timeline.index("analyse starten:")
    reported_at = queries.timeline_page(ctx, ref).items[0].at
    assert f'<time datetime="{reported_at.isoformat()}">{amsterdam(reported_at)}</time>' in timeline
    handler.submit(f"/incidents/{ref}", "/language", {"language": "en", "next": f"/incidents/{ref}"})
    english = page_of(handler, ref)
    assert "confirm: being analysed → being contained" in english and "category of the cause: — → not yet known" in english


def test_a_school_acknowledges_each_notice_sent_to_it_and_staff_see_its_delivery(app, ctx, smtp):
    mail = smtp_context(ctx, smtp.port)
    ref = confirmed(mail, brins=("12AB", "34CD"))
    drain(mail)
    handler_view = page_of(signed_in(app, "handler"), ref)
    assert "eerste melding aan 12AB" in handler_view and 'class="badge delivery-sent">verzonden' in handler_view
    school = signed_in(app, "school_a")
    html = page_of(school, ref)
    assert "eerste melding aan 12AB" in html and "34CD" not in html
    assert html.count("Ontvangst bevestigen") == 1
    done = school.submit(f"/incidents/{ref}", f"/incidents/{ref}/acknowledgements", {})
    assert done.status_code == 303
    assert queries.get(ctx, ref).schools[0].acknowledged_at is not None
    assert "Ontvangst bevestigen" not in page_of(school, ref)
    handler = signed_in(app, "handler")
    assert handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/acknowledgements", {}).status_code == 403


def test_the_picture_marks_the_current_state(app, ctx):
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    html = page_of(signed_in(app, "school_a"), ref)
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert re.search(r'<g data-state="triage" data-current="true"', svg)
    assert svg.count('data-current="true"') == 1
    assert "huidige stand: in analyse" in svg


def test_a_handler_reports_an_incident_through_the_form(app, ctx):
    handler = signed_in(app, "handler")
    discovered = local(hours_ago(3)).replace(second=0, microsecond=0)
    form = handler.get("/incidents/new").text
    key = re.search(r'name="key" value="([^"]+)"', form).group(1)
    data = {"csrf": csrf_of(form), "key": key, "source": "third_party", "school": ["12ab", "34CD", ""],
            "count": ["12", "", ""], "fields": ["discovered_at", "summary", "nature_actions"],
            "discovered_at": f"{discovered:%Y-%m-%dT%H:%M}", "summary": "A parent saw other pupils' grades",
            "nature_actions": ["read"]}
    made = handler.client.post("/incidents/new", data=data, follow_redirects=False)
    assert made.status_code == 303
    ref = made.headers["location"].rsplit("/", 1)[1]
    incident = queries.get(ctx, ref)
    assert (incident.state, incident.source) == ("reported", "third_party")
    assert {s.brin: s.affected_count for s in incident.schools} == {"12AB": 12, "34CD": None}
    assert incident.disclosure.discovered_at == discovered
    again = handler.client.post("/incidents/new", data=data, follow_redirects=False)  # a double click
    assert again.headers["location"] == made.headers["location"]
    unknown = handler.client.post("/incidents/new", data=data | {"key": "other", "school": ["99ZZ"], "count": ["1"],
                                                                   "summary": "typed"}, follow_redirects=False)
    assert unknown.status_code == 422 and "no school with BRIN code 99ZZ" in unknown.text
    assert ">typed</textarea>" in unknown.text and 'value="99ZZ"' in unknown.text
    school = signed_in(app, "school_a")
    assert school.get("/incidents/new").status_code == 403


def test_a_change_made_meanwhile_refuses_the_form_and_keeps_what_was_typed(app, ctx):
    ref = reported(ctx)
    handler = signed_in(app, "handler")
    html = page_of(handler, ref)
    service.update(ctx, reference=ref, actor="marit", fields={"measures": "Portal switched off"})
    stale = handler.client.post(f"/incidents/{ref}/edit", data={
        "csrf": csrf_of(html), "version": "1", "fields": ["summary"], "summary": "Typed before the change"},
        follow_redirects=False)
    assert stale.status_code == 409
    assert ">Typed before the change</textarea>" in stale.text
    assert queries.get(ctx, ref).disclosure.summary is None


def test_a_reopening_asks_its_own_reason_every_time(app, ctx):
    ref = reported(ctx)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna", fields={"dismissal_reason": "A test mail"})
    service.reopen(ctx, reference=ref, actor="hanna", reason="The parent called again")
    service.update(ctx, reference=ref, actor="hanna", fields={"dismissal_reason": "Still a test mail"})
    service.fire(ctx, reference=ref, trigger="dismiss", actor="hanna")
    handler = signed_in(app, "handler")
    html = page_of(handler, ref)
    reopen = html[html.index('id="form-trigger-reopen"'):]
    assert ">The parent called again</textarea>" not in reopen  # the last reopening's reason is not this one's
    again = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/triggers/reopen", {
        "fields": ["reopen_reason"], "reopen_reason": "The parent called again"})
    assert again.status_code == 422 and queries.get(ctx, ref).state == "dismissed"
    done = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/triggers/reopen", {
        "fields": ["reopen_reason"], "reopen_reason": "A second parent wrote"})
    assert done.status_code == 303 and queries.get(ctx, ref).state == "triage"


def test_notes_contacts_and_ap_notifications_are_recorded_from_their_forms(app, ctx):
    ref = confirmed(ctx)
    handler = signed_in(app, "handler")
    assert handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/notes", {"text": "Called the director"}
                          ).status_code == 303
    called = local(hours_ago(1)).replace(second=0, microsecond=0)
    logged = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/contacts", {
        "school": "12AB", "channel": "phone", "summary": "Director informed", "told": "yes",
        "at": f"{called:%Y-%m-%dT%H:%M}"})
    assert logged.status_code == 303
    school = queries.get(ctx, ref).schools[0]
    assert school.informed_at == called and school.told_to_notify_ap_at == called  # Amsterdam time, stored UTC
    html = unescape(page_of(handler, ref))
    assert 'notitie: "Called the director"' in html
    assert f'contact met 12AB per telefoon op {amsterdam(called)}: "Director informed"' in html
    refused = handler.submit(f"/incidents/{ref}", f"/incidents/{ref}/ap-notifications", {
        "kind": "preliminary", "ap_reference": " ", "delay_reason": "typed"})
    assert refused.status_code == 422 and "the AP&#39;s reference number (meldnummer) is required" in refused.text
    assert '<option value="preliminary" selected>' in refused.text and ">typed</textarea>" in refused.text
    assert not queries.get(ctx, ref).ap_notifications


def test_the_timeline_pages_from_the_newest_event_back(app, ctx):
    ref = reported(ctx)
    for text in ("Note one", "Note two", "Note three"):
        service.add_note(ctx, reference=ref, actor="hanna", text=text)
    first = queries.timeline_page(ctx, ref, limit=2, newest_first=True)
    second = queries.timeline_page(ctx, ref, limit=2, cursor=first.next_cursor, newest_first=True)
    assert [e.seq for e in first.items + second.items] == [4, 3, 2, 1] and second.next_cursor is None
    html = unescape(page_of(signed_in(app, "handler"), ref))
    assert html.index('"Note three"') < html.index('"Note two"') < html.index('"Note one"')


@pytest.mark.parametrize(("path", "data", "field"), [
    ("notes", {"text": "nul\x00"}, "text"),
    ("notes", {"text": "N" * 20_001}, "text"),
    ("contacts", {"school": "12AB", "channel": "phone", "summary": "c\x00"}, "summary"),
    ("contacts", {"school": "12AB", "channel": "pigeon", "summary": "called"}, "channel"),
    ("contacts", {"school": "12AB", "channel": "phone", "summary": "called", "at": "0001-01-01T00:00"}, "at"),
    ("notices", {"message": "m\x00"}, "message"),
    ("ap-notifications", {"kind": "preliminary", "ap_reference": "A" * 101}, "ap_reference"),
    ("edit", {"reason": "r\x00", "summary": "changed"}, "reason"),
    ("edit", {"version": "²", "summary": "changed"}, None),
    ("edit", {"school": "12AB", "count": "²"}, "schools.12AB"),
    ("edit", {"school": "12AB", "count": "١٢"}, "schools.12AB"),
], ids=["note-nul", "note-too-long", "contact-nul", "contact-channel", "contact-year-1", "notice-nul",
        "ap-reference-too-long", "reason-nul", "version-superscript", "count-superscript", "count-arabic-indic"])
def test_a_page_form_obeys_the_apis_bounds_and_writes_nothing_it_refuses(app, ctx, path, data, field):
    ref = confirmed(ctx)
    before = queries.get(ctx, ref)
    me = signed_in(app, "handler")
    html = page_of(me, ref)
    response = me.client.post(f"/incidents/{ref}/{path}", data={"csrf": csrf_of(html), "version": str(before.version),
                                                                **data}, follow_redirects=False)
    if field is None:  # a version no one could have seen is no version: the edit goes ahead unchecked
        assert response.status_code in (303, 409, 422), response.text[-500:]
        return
    assert response.status_code == 422, response.text[-1500:]
    assert field in unescape(response.text)
    assert queries.get(ctx, ref).version == before.version


def test_an_acknowledgement_comment_obeys_the_apis_bounds(app, ctx, smtp):
    ref = confirmed(ctx)
    school = signed_in(app, "school_a")
    html = page_of(school, ref)
    version = queries.get(ctx, ref).version
    for comment in ("z\x00", "Z" * 20_001):
        response = school.client.post(f"/incidents/{ref}/acknowledgements", data={"csrf": csrf_of(html),
                                                                                   "comment": comment},
                                      follow_redirects=False)
        assert response.status_code == 422 and "comment" in response.text
    assert queries.get(ctx, ref).version == version


def test_a_handler_adds_and_settles_follow_up_actions_on_the_page_and_a_refusal_names_the_field(app, ctx):
    ref = evaluating(ctx, brins=("12AB",))
    handler = signed_in(app, "handler")
    page = f"/incidents/{ref}"
    due = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    refused = handler.submit(page, f"/incidents/{ref}/actions",
                             {"description": "Extend the release checklist", "owner": "nobody", "due": due})
    assert refused.status_code == 422
    assert "is no handler or manager" in unescape(refused.text)
    assert "Extend the release checklist" in refused.text  # what was typed is kept
    assert queries.get(ctx, ref).actions == []

    added = handler.submit(page, f"/incidents/{ref}/actions", {"description": "Extend the release checklist",
                                                               "owner": "handler", "due": due, "blocking": "yes"})
    assert added.status_code == 303, added.text[-2000:]
    html = page_of(handler, ref)
    assert "Vervolgacties uit de evaluatie" in html and "Extend the release checklist" in html
    assert f"/incidents/{ref}/actions/1/settlement" in html
    assert "vervolgactie 1 (handler)" in html  # among the deadlines

    settled = handler.submit(page, f"/incidents/{ref}/actions/1/settlement", {"status": "done", "note": "Item 14"})
    assert settled.status_code == 303
    (action,) = queries.get(ctx, ref).actions
    assert (action.status, action.settled_by) == ("done", "handler")
    html = page_of(handler, ref)
    assert f"/incidents/{ref}/actions/1/settlement" not in html and "gedaan" in html
    assert "vervolgactie 1: gedaan" in html and "Item 14" in html  # the timeline in words
    school = signed_in(app, "school_a")
    assert "Extend the release checklist" in page_of(school, ref) and "/settlement" not in page_of(school, ref)
    replay = school.client.post(f"/incidents/{ref}/actions/1/settlement", data={"csrf": csrf_of(page_of(school, ref)),
                                                                               "status": "dropped"},
                                follow_redirects=False)
    assert replay.status_code == 403
