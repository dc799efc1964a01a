"""Informing the people affected by a breach (GDPR art. 34).

When a breach is likely a high risk to the people involved (``workflow.informing.high_risk``), the
school must tell them: breachflow drafts that message in Dutch and English, in plain language, from
the incident's facts; the notices to the school and its pages carry the draft; and the school (or a
handler on its behalf) records whether and how the people were informed. The record's note is the
school's: sealed with its data key, never on the timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, assert_error
from conftest import CONFIRM, hours_ago, reported
from notify_support import drain, smtp_context
from test_web_portal import confirm, deliver, informed, link, part, report
from test_web_portal import events as events_of
from web_support import browser

from breachflow.api.render import incident_text
from breachflow.notifications.people import draft
from breachflow.workflow import crypto, dossier, queries, schools, service
from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.disclosure import AffectedGroup, Disclosure
from breachflow.workflow.errors import DataDamaged, InvalidInput
from breachflow.workflow.incident import Incident
from breachflow.workflow.informing import RiskReason, high_risk
from breachflow.workflow.models import affected_t, data_key_t, event_t, incident_t, school_t
from breachflow.workflow.timeline import EventKind

# --- the rule ---------------------------------------------------------------------------------------

LOW = {"severity": "limited", "data_kinds": ["contact", "learning_performance"], "data_unreadable": False}


def reasons(**fields) -> list[RiskReason]:
    return high_risk(Disclosure.model_validate(LOW | fields))


def test_a_breach_of_contact_details_and_grades_with_limited_consequences_is_no_high_risk():
    assert reasons() == []
    assert high_risk(Disclosure()) == []  # nothing known yet: nothing to tell the people


@pytest.mark.parametrize("severity", ["considerable", "very_large"])
def test_considerable_or_very_large_consequences_are_a_high_risk(severity):
    assert reasons(severity=severity) == [RiskReason.severity]


def test_a_group_with_considerable_consequences_is_a_high_risk():
    group = AffectedGroup(group="pupils", consequences="Diagnoses read by classmates", severity="considerable")
    assert reasons(affected_groups=[group]) == [RiskReason.severity]


def test_special_categories_are_a_high_risk():
    assert reasons(data_kinds=["special_categories"]) == [RiskReason.special_categories]
    assert reasons(special_categories=["health"]) == [RiskReason.special_categories]  # named without the kind


def test_a_citizen_service_number_is_a_high_risk():
    assert reasons(data_kinds=["citizen_service_number"]) == [RiskReason.citizen_service_number]


def test_financial_data_is_a_high_risk():
    assert reasons(data_kinds=["financial"]) == [RiskReason.financial]


def test_access_or_identification_data_is_a_high_risk():
    assert reasons(data_kinds=["access_identification"]) == [RiskReason.access_identification]


def test_unreadable_data_is_no_high_risk_by_its_kind_but_severity_still_counts():
    risky = ["special_categories", "citizen_service_number", "financial", "access_identification"]
    assert reasons(data_kinds=risky, data_unreadable=True) == []
    assert reasons(data_kinds=risky, data_unreadable=True, severity="very_large") == [RiskReason.severity]
    assert reasons(data_kinds=["financial"], data_unreadable=None) == [RiskReason.financial]  # unknown: readable


# --- the draft --------------------------------------------------------------------------------------

EVERYTHING = {
    "discovered_at": hours_ago(30), "summary": "Een lijst met <b>adressen</b> is naar de verkeerde ouder gemaild.",
    "nature_actions": ["copied", "read"], "measures": "De ontvanger heeft de lijst verwijderd.",
    "data_kinds": ["contact", "financial", "access_identification", "citizen_service_number", "special_categories",
                   "other"],
    "special_categories": ["health"], "data_kinds_other": "pasfoto's", "data_unreadable": False,
}
ADVICE = {  # kind of data → what the draft advises, in nl and en
    "access_identification": ("Verander uw wachtwoord", "Change your password"),
    "contact": ("nepberichten (phishing)", "fake messages (phishing)"),
    "financial": ("bankafschriften", "bank statements"),
    "citizen_service_number": ("identiteitsfraude", "identity fraud"),
    "special_categories": ("gevoelige gegevens", "sensitive data"),
}


def incident_with(**fields) -> Incident:
    return Incident(1, "DL-2026-00001", "containment", 3, "monitoring", hours_ago(29),
                    Disclosure.model_validate(fields))


def drafts_of(**fields):
    incident = incident_with(**fields)
    return {language: draft(incident, school_name="De Regenboog", language=language,
                            contact="privacy@basisonline.nl") for language in ("nl", "en")}


def test_the_draft_says_what_happened_which_data_what_was_done_what_to_do_and_whom_to_ask():
    shown = drafts_of(**EVERYTHING)
    day = EVERYTHING["discovered_at"].astimezone(UTC)  # a day's name differs by at most the zone's hours
    expected = {
        "nl": ["Wat is er gebeurd?", "De gegevens zijn ingezien en gekopieerd.", "contactgegevens",
               "burgerservicenummer (BSN)", "financiële gegevens", "toegangs- of identificatiegegevens",
               "gevoelige gegevens over gezondheid", "Wat hebben wij gedaan?", "Wat kunt u doen?",
               "Neem contact op met De Regenboog", "Met vriendelijke groet"],
        "en": ["What happened?", "The data was read and copied.", "contact details", "citizen service number (BSN)",
               "financial data", "access or identification data", "sensitive data about health",
               "What have we done?", "What can you do?", "Contact De Regenboog", "Kind regards"],
    }
    for language, message in shown.items():
        for text in (message.text, str(message.html)):
            for words in expected[language] + ["pasfoto", "De ontvanger heeft de lijst verwijderd.",
                                               "privacy@basisonline.nl", str(day.year)]:
                assert words.replace("'", "&#39;") in text or words in text, (language, words)
        assert "De Regenboog" in message.subject
        assert "Een lijst met <b>adressen</b>" in message.text
        assert "&lt;b&gt;adressen&lt;/b&gt;" in message.html and "<b>" not in message.html  # escaped


@pytest.mark.parametrize("kind", ADVICE)
def test_the_draft_advises_for_each_kind_of_data_it_concerns(kind):
    with_kind, without = drafts_of(data_kinds=[kind]), drafts_of(data_kinds=["learning_performance"])
    for i, language in enumerate(("nl", "en")):
        assert ADVICE[kind][i] in with_kind[language].text, (kind, language)
        assert ADVICE[kind][i] not in without[language].text, (kind, language)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_missing_facts_are_left_out_never_shown_as_none_or_a_placeholder(language):
    message = draft(incident_with(), school_name="De Regenboog", language=language, contact=None)
    for text in (message.subject, message.text, str(message.html)):
        for placeholder in ("None", "{{", "}}", "—", "nog in onderzoek", "still under investigation", "[]"):
            assert placeholder not in text, (language, placeholder)
    assert "De Regenboog" in message.text and "privacy@" not in message.text


# --- the notices ------------------------------------------------------------------------------------

@pytest.fixture
def mail_ctx(ctx, smtp):
    schools.add(ctx, brin=SCHOOL_A, name="De Regenboog", contacts=["directie@regenboog.nl"])
    schools.add(ctx, brin=SCHOOL_B, name="Het Anker", contacts=["info@anker.nl"], language="en")
    return smtp_context(ctx, smtp.port)


def confirmed_with(ctx, **fields) -> str:
    ref = reported(ctx, brins=(SCHOOL_A, SCHOOL_B))
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM | fields)
    return ref


def received(smtp, address):
    return [m for m in smtp.received if address in m.recipients]


def test_a_high_risk_breachs_first_notice_carries_the_draft_in_the_schools_language(mail_ctx, smtp):
    confirmed_with(mail_ctx, data_kinds=["financial"])
    drain(mail_ctx)
    (dutch,), (english,) = received(smtp, "directie@regenboog.nl"), received(smtp, "info@anker.nl")
    for message, words in ((dutch, ("AVG artikel 34", "Beste ouder, verzorger", "bankafschriften")),
                           (english, ("GDPR article 34", "Dear parent, guardian", "bank statements"))):
        for part_ in ("plain", "html"):
            for said in words:
                assert said in message.part(part_), (said, part_)
    assert "Beste ouder" not in english.part("plain")


def test_a_low_risk_breachs_notice_carries_no_draft(mail_ctx, smtp):
    confirmed_with(mail_ctx, data_kinds=["learning_performance"], severity="limited")
    drain(mail_ctx)
    (dutch,) = received(smtp, "directie@regenboog.nl")
    assert "artikel 34" not in dutch.part("plain") and "Beste ouder" not in dutch.part("html")


def test_an_update_carries_the_draft_once_the_breach_turns_out_a_high_risk(mail_ctx, smtp):
    ref = confirmed_with(mail_ctx)
    drain(mail_ctx)
    service.update(mail_ctx, reference=ref, actor="hanna", fields={"data_kinds": ["citizen_service_number"]})
    service.send_update(mail_ctx, reference=ref, actor="hanna")
    drain(mail_ctx)
    first, update = received(smtp, "directie@regenboog.nl")
    assert "identiteitsfraude" not in first.part("plain") and "identiteitsfraude" in update.part("plain")


# --- recording through the API -----------------------------------------------------------------------

def confirmed_api(api, schools_=None, **fields) -> str:
    ref = api.report(schools=schools_ or {SCHOOL_A: 28}, discovered_at=hours_ago(5).isoformat())
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    body = {"fields": CONFIRM | {"data_kinds": ["access_identification"]} | fields}
    assert api.call("handler", "POST", f"/incidents/{ref}/triggers/confirm", json=body).status_code == 200
    return ref


def record(api, user, ref, **body):
    return api.call(user, "POST", f"/incidents/{ref}/people-informed", json=body)


def school_part(response_or_json, brin=SCHOOL_A):
    data = response_or_json if isinstance(response_or_json, dict) else response_or_json.json()
    return next(s for s in data["schools"] if s["brin"] == brin)


def test_a_school_records_that_it_informed_its_people(api, ctx):
    ref = confirmed_api(api)
    at = hours_ago(1)
    done = record(api, "school_a", ref, informed=True, at=at.isoformat(), via="email", count=27,
                  note="Brief via de schoolapp")
    assert done.status_code == 201, done.text
    assert done.json()["high_risk"] == ["access_identification"]
    own = school_part(done)["people_informed"]
    assert (own["informed"], own["via"], own["count"], own["note"]) == (True, "email", 27, "Brief via de schoolapp")
    assert datetime.fromisoformat(own["at"]) == at
    for user in ("handler", "school_a"):  # the incident's view shows it, to the school and to handlers
        assert school_part(api.call(user, "GET", f"/incidents/{ref}").json())["people_informed"] == own
    (last,) = [e for e in queries.timeline_page(ctx, ref, limit=100).items if e.kind == EventKind.people_informed]
    assert last.actor == "school_a" and last.payload["school"] == SCHOOL_A and last.payload["via"] == "email"
    assert "note" not in last.payload and "Brief via de schoolapp" not in str(last.payload)  # the school's, not the incident's


def test_the_note_is_sealed_with_the_schools_own_key(api, ctx):
    ref = confirmed_api(api)
    record(api, "school_a", ref, informed=False, note="Geen adressen bekend")
    with ctx.engine.connect() as conn:
        sealed, wrapped = conn.execute(
            sa.select(affected_t.c.people_informed_note, data_key_t.c.wrapped)
            .join(school_t, school_t.c.id == affected_t.c.school_id)
            .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
            .where(school_t.c.brin == SCHOOL_A)).one()
        payloads = conn.execute(sa.select(event_t.c.payload)).scalars().all()
        incident_wrapped = conn.execute(
            sa.select(data_key_t.c.wrapped).join(incident_t, incident_t.c.data_key_id == data_key_t.c.id)
            .where(incident_t.c.reference == ref)).scalar_one()
    assert b"Geen adressen" not in bytes(sealed)
    assert crypto.open_sealed(ctx.keys.unwrap(wrapped), sealed) == "Geen adressen bekend"
    with pytest.raises(DataDamaged):  # not sealed with the incident's key
        crypto.open_sealed(ctx.keys.unwrap(incident_wrapped), sealed)
    assert all(b"Geen adressen" not in bytes(p) for p in payloads if p)


@pytest.mark.parametrize(("body", "fields"), [
    ({"informed": True}, ("at", "via")),
    ({"informed": True, "at": "NOW", "via": "pigeon"}, ("via",)),
    ({"informed": False}, ("note",)),
    ({"informed": False, "note": "  "}, ("note",)),
    ({"informed": False, "note": "geen adressen", "via": "letter", "at": "NOW"}, ("via", "at")),
    ({"informed": True, "at": "FUTURE", "via": "letter"}, ("at",)),
    ({"informed": True, "at": "BEFORE", "via": "letter"}, ("at",)),
    ({"informed": True, "at": "NOW", "via": "letter", "count": 29}, ("count",)),
    ({"informed": True, "at": "NOW", "via": "letter", "count": -1}, ("count",)),
    ({"informed": "yes", "at": "NOW", "via": "letter"}, ("informed",)),
])
def test_bad_input_is_refused_naming_the_field(api, body, fields):
    ref = confirmed_api(api)
    moments = {"NOW": hours_ago(1), "FUTURE": datetime.now(UTC) + timedelta(hours=2), "BEFORE": hours_ago(24 * 30)}
    body = {k: moments[v].isoformat() if v in moments else v for k, v in body.items()}
    assert_error(record(api, "school_a", ref, **body), 422, "invalid_input", *fields)
    assert school_part(api.call("handler", "GET", f"/incidents/{ref}"))["people_informed"] is None


def test_the_command_itself_refuses_a_time_in_the_future_whoever_calls_it(api, ctx):
    ref = confirmed_api(api)
    with pytest.raises(InvalidInput) as refused:
        service.record_people_informed(ctx, reference=ref, actor="cli", brin=SCHOOL_A, informed=True,
                                       at=datetime.now(UTC) + timedelta(hours=2), via="letter")
    assert [p.field for p in refused.value.fields] == ["at"]


def test_a_breach_not_yet_confirmed_has_nobody_to_inform(api):
    ref = api.report()
    assert_error(record(api, "school_a", ref, informed=False, note="nog niet"), 409, "conflict")


def test_a_handler_records_on_a_schools_behalf_naming_it(api):
    ref = confirmed_api(api, {SCHOOL_A: 28, SCHOOL_B: 5})
    assert_error(record(api, "handler", ref, informed=False, note="telefonisch besproken"), 422, "invalid_input", "school")
    done = record(api, "handler", ref, school=SCHOOL_B, informed=True, at=hours_ago(1).isoformat(), via="phone")
    assert done.status_code == 201, done.text
    assert school_part(done, SCHOOL_B)["people_informed"]["via"] == "phone"
    assert school_part(done, SCHOOL_A)["people_informed"] is None
    assert_error(record(api, "manager", ref, school=SCHOOL_A, informed=False, note="x"), 403, "forbidden")
    text = incident_text(queries.get(api.client.app.state.ctx, ref), api.client.app.state.ctx.periods)
    assert "high risk to the people affected (GDPR art. 34): access_identification" in text
    assert "people affected: informed" in text and "via phone" in text  # the operator's view too


def test_a_school_cannot_record_for_another_school_nor_see_its_record(api):
    shared = confirmed_api(api, {SCHOOL_A: 28, SCHOOL_B: 5})
    only_a = confirmed_api(api)
    assert record(api, "school_a", shared, informed=False, note="Alleen A weet dit").status_code == 201
    assert_error(record(api, "school_b", only_a, informed=False, note="x"), 404, "not_found")
    assert_error(record(api, "school_b", shared, school=SCHOOL_A, informed=False, note="x"), 404, "not_found")
    seen_by_b = api.call("school_b", "GET", f"/incidents/{shared}")
    assert [s["brin"] for s in seen_by_b.json()["schools"]] == [SCHOOL_B]
    assert "Alleen A weet dit" not in seen_by_b.text
    assert "Alleen A weet dit" not in api.call("school_b", "GET", f"/incidents/{shared}/timeline").text
    assert school_part(api.call("handler", "GET", f"/incidents/{shared}"))["people_informed"]["note"] == "Alleen A weet dit"


def test_the_ap_dossier_shows_the_schools_record_beside_the_processors_answer(api, ctx):
    ref = confirmed_api(api)
    before = {a.key: a for c in dossier.read(ctx, queries.get(ctx, ref), queries.get(ctx, ref).schools[0],
                                             now=datetime.now(UTC)).chapters for a in c.answers}
    assert before["follow_up.high_risk"].value == ["access_identification"]
    assert "follow_up.school_people_informed" not in before and "follow_up.subjects_informed" in before
    record(api, "school_a", ref, informed=True, at=hours_ago(1).isoformat(), via="letter", count=20)
    shown = api.call("handler", "GET", f"/incidents/{ref}/ap-dossier").json()
    answers = {a["key"]: a for c in shown["chapters"] for a in c["answers"]}
    assert answers["follow_up.school_people_informed"]["mark"] == "derived"
    assert "brief" in answers["follow_up.school_people_informed"]["text"]
    assert answers["follow_up.subjects_informed"]["mark"] == "missing"  # the processor's own answer stays asked


# --- the school's pages ------------------------------------------------------------------------------

HIGH = {"data_kinds": ["financial"], "data_unreadable": False}


def test_the_link_page_shows_the_draft_in_the_schools_language_with_the_other_folded(app, site):
    reference = informed(site, **HIGH)
    page = browser(app).get(link(site, reference)).text
    assert "AVG artikel 34" in page and "Kijk de komende tijd goed naar uw bankafschriften" in page
    dutch, english = page.index('<div class="draft-body" lang="nl">'), page.index('<div class="draft-body" lang="en">')
    assert dutch < english and "Check your bank statements" in page
    assert "<script" not in page


def test_a_low_risk_link_page_shows_no_draft_but_takes_a_record(app, site):
    reference = informed(site, data_kinds=["learning_performance"])
    page = browser(app).get(link(site, reference)).text
    assert "draft-body" not in page and "geen hoog risico" in page and "people-informed" in page


def test_a_school_records_through_the_link_page(app, site):
    reference = informed(site, (SCHOOL_A, SCHOOL_B), **HIGH)
    path = link(site, reference)
    at = hours_ago(1).astimezone(AMSTERDAM)
    done = browser(app).submit(path, f"{path}/people-informed", {
        "informed": "yes", "at": at.strftime("%Y-%m-%dT%H:%M"), "via": "letter", "count": "25", "note": "Per brief"})
    assert done.status_code == 303, done.text
    mine = part(site, reference).people
    assert (mine.informed, mine.via.value, mine.count, mine.note) == (True, "letter", 25, "Per brief")
    assert part(site, reference, SCHOOL_B).people is None
    assert "Vastgelegd: de betrokkenen zijn geïnformeerd" in browser(app).get(path).text


def test_a_refused_record_on_the_link_page_names_the_field_and_keeps_what_was_typed(app, site):
    reference = informed(site, **HIGH)
    path = link(site, reference)
    refused = browser(app).submit(path, f"{path}/people-informed", {"informed": "no", "note": "", "count": "abc"})
    assert refused.status_code == 422
    assert 'id="people-count-problem"' in refused.text
    refused = browser(app).submit(path, f"{path}/people-informed", {"informed": "no", "note": ""})
    assert refused.status_code == 422 and 'id="people-note-problem"' in refused.text
    assert part(site, reference).people is None


def test_the_portal_incident_page_shows_the_draft_and_takes_the_schools_record(app, site):
    reference = informed(site, (SCHOOL_A, SCHOOL_B), **HIGH)
    me = browser(app)
    me.sign_in("school_a")
    portal = me.get("/portal").text
    assert "nodig, nog niet vastgelegd" in portal
    page = me.get(f"/incidents/{reference}").text
    assert "Conceptbericht in het Nederlands" in page and "Beste ouder, verzorger" in page
    done = me.submit(f"/incidents/{reference}", f"/incidents/{reference}/people-informed",
                     {"informed": "no", "note": "Wij wachten op het politieonderzoek"})
    assert done.status_code == 303
    assert part(site, reference).people.note == "Wij wachten op het politieonderzoek"
    assert "Wij wachten op het politieonderzoek" in me.get(f"/incidents/{reference}").text
    other = browser(app)
    other.sign_in("school_b")
    assert "Wij wachten op het politieonderzoek" not in other.get(f"/incidents/{reference}").text
    foreign = other.submit(f"/incidents/{reference}", f"/incidents/{reference}/people-informed",
                           {"informed": "no", "note": "B schrijft", "school": SCHOOL_A})
    assert foreign.status_code == 303 and part(site, reference).people.note == "Wij wachten op het politieonderzoek"
    assert part(site, reference, SCHOOL_B).people.note == "B schrijft"  # a school records for itself only


def test_a_handler_records_on_the_incident_page_for_the_school_it_names(app, site):
    reference = informed(site, (SCHOOL_A, SCHOOL_B), **HIGH)
    me = browser(app)
    me.sign_in("handler")
    page = me.get(f"/incidents/{reference}").text
    assert 'id="people-school"' in page and "niet vastgelegd" in page
    done = me.submit(f"/incidents/{reference}", f"/incidents/{reference}/people-informed",
                     {"school": SCHOOL_B, "informed": "no", "note": "Telefonisch besproken met de directeur"})
    assert done.status_code == 303
    assert part(site, reference, SCHOOL_B).people.note == "Telefonisch besproken met de directeur"
    assert part(site, reference).people is None
    refused = me.submit(f"/incidents/{reference}", f"/incidents/{reference}/people-informed",
                        {"school": SCHOOL_A, "informed": "yes", "via": "letter"})
    assert refused.status_code == 422 and 'id="people-at-problem"' in refused.text
    assert events_of(site, reference)[-1].actor == "handler"


def test_a_low_risk_breach_is_not_marked_on_the_portal(app, site):
    confirm(site, report(site), data_kinds=["learning_performance"])
    deliver(site)
    me = browser(app)
    me.sign_in("school_a")
    assert "nodig, nog niet vastgelegd" not in me.get("/portal").text
