"""The AP dossier: the AP's notification form in its chapter order, each answer recorded, derived
(from what) or missing, with what is still to collect on top; the new fields and the school's master
data it reads, validated; who may read it through the API and the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, assert_error
from conftest import AP_DOSSIER, AP_FORM, EVALUATE, MASTER_DATA, hours_ago
from web_support import browser, installation

from breachflow.workflow import dossier, queries, schools, service
from breachflow.workflow.config import Settings
from breachflow.workflow.deadlines import Periods
from breachflow.workflow.disclosure import Disclosure, label
from breachflow.workflow.dossier import Mark, Processor
from breachflow.workflow.dossier import build as build_dossier
from breachflow.workflow.errors import InvalidInput
from breachflow.workflow.incident import AffectedSchool, ApKind, ApNotification, Incident
from breachflow.workflow.models import incident_t, school_t
from breachflow.workflow.register import ApDelay

CHAPTER_ORDER = ["notification", "controller", "processor", "other_parties", "international", "timeline", "nature",
                 "personal_data", "people", "prior_measures", "consequences", "follow_up"]
UNKNOWN_PROCESSOR = Processor()  # no processor settings
PROCESSOR = Processor("Basisonline B.V.", "Markt 1, 5611 AB Eindhoven", "17012345", "FG009876")
COMPLETE = {
    "discovered_at": hours_ago(5), "breach_started_at": hours_ago(30), "breach_ended_at": hours_ago(4),
    "summary": "A class list went to the wrong parents", "nature_how": "Wrong distribution list chosen",
    "cause_description": "A teacher picked the wrong list", "cause_category": "user_error_employee",
    "nature_actions": ["read"], "measures": "Asked the parents to delete it", "group_size_min": 28,
    "group_size_max": 30, **{k: v for k, v in EVALUATE.items() if k not in ("group_size_min", "group_size_max")},
    **AP_FORM, **AP_DOSSIER, "data_kinds": ["contact", "special_categories"],
}


def school_view(**master) -> schools.SchoolView:
    return schools.SchoolView(1, SCHOOL_A, "De Regenboog", "nl", ["directie@12ab.example.nl"], None, **master)


def incident(fields: dict | None = None, *, schools_: list[AffectedSchool] | None = None,
             notifications: list[ApNotification] | None = None, state: str = "evaluation") -> Incident:
    return Incident(1, "DL-2026-00001", state, 3, "school", hours_ago(6), Disclosure(**(fields or {})),
                    schools_ if schools_ is not None else [AffectedSchool(1, SCHOOL_A, "De Regenboog", 28)],
                    notifications or [])


def made(found_incident: Incident, school: schools.SchoolView | None = None,
         processor: Processor = UNKNOWN_PROCESSOR, *,
         delays: list[ApDelay] | None = None, language: str = "nl") -> dossier.Dossier:
    return build_dossier(found_incident, school if school is not None else school_view(), processor,
                         delays=delays or [], periods=Periods(), now=datetime.now(UTC), language=language)


def answers(found: dossier.Dossier) -> dict[str, dossier.Answer]:
    return {a.key: a for c in found.chapters for a in c.answers}


def marks(found: dossier.Dossier) -> dict[str, Mark]:
    return {key: a.mark for key, a in answers(found).items()}


# --- the chapters and their marks -----------------------------------------------------------------


def test_the_chapters_follow_the_ap_forms_order():
    assert [c.key for c in made(incident()).chapters] == CHAPTER_ORDER


def test_an_incident_just_reported_lists_what_the_form_still_needs_on_top():
    found = made(incident({"discovered_at": hours_ago(1)}))
    todo = [a.key for a in found.still_to_collect]
    assert todo == [a.key for c in found.chapters for a in c.answers if a.mark is Mark.missing]  # in the form's order
    for key in ("controller.kvk_number", "controller.contact_person", "processor.name", "nature.summary",
                "personal_data.special_categories", "consequences.severity", "follow_up.subjects_informed",
                "other_parties.other_parties", "international.other_eu_countries"):
        assert key in todo, key
    assert "timeline.discovered_at" not in todo and marks(found)["timeline.discovered_at"] is Mark.recorded
    assert marks(found)["controller.name"] is Mark.recorded


def test_a_complete_record_leaves_nothing_to_collect():
    found = made(incident(COMPLETE), school_view(**MASTER_DATA), PROCESSOR)
    assert found.still_to_collect == []
    got = answers(found)
    assert got["controller.kvk_number"].value == "41234567" and got["controller.sector"].value == "primary"
    assert got["controller.contact_person"].value["name"] == "J. de Vries"
    assert got["processor.dpo_registration"].value == "FG009876"
    assert got["personal_data.special_categories"].value == ["health"]
    assert got["international.other_eu_countries"].value == ["BE"]
    assert got["people.count"].value == {"min": 28, "max": 30}
    assert got["consequences.severity"].mark is Mark.recorded and got["consequences.severity"].value == "limited"


def test_the_processors_data_comes_from_the_settings_and_is_missing_while_unset():
    configured = Processor.from_settings(Settings(processor_name="Basisonline B.V.", processor_kvk="1701 2345"))
    found = marks(made(incident(), processor=configured))
    assert found["processor.name"] is found["processor.kvk_number"] is Mark.recorded
    assert configured.kvk_number == "17012345"
    assert found["processor.address"] is found["processor.dpo_registration"] is Mark.missing


def test_no_school_leaves_the_controller_chapter_missing():
    found = build_dossier(incident(schools_=[]), None, PROCESSOR, delays=[], periods=Periods(),
                          now=datetime.now(UTC))
    assert {a.mark for a in found.chapters[1].answers} == {Mark.missing}


def test_a_first_notification_is_preliminary_while_answers_are_missing_and_new_once_complete():
    incomplete = answers(made(incident({"discovered_at": hours_ago(1)})))["notification.kind"]
    assert (incomplete.value, incomplete.mark) == ("preliminary", Mark.derived)
    assert "nog te verzamelen" in incomplete.derived_from
    complete = answers(made(incident(COMPLETE), school_view(**MASTER_DATA), PROCESSOR))["notification.kind"]
    assert complete.value == "new"


@pytest.mark.parametrize(("notified", "state", "kind"), [
    ([], "evaluation", "preliminary"),
    ([ApKind.preliminary], "evaluation", "final"),
    ([ApKind.preliminary, ApKind.final], "closed", "supplement"),
    ([ApKind.final], "dismissed", "withdrawal"),
], ids=["none yet", "after a preliminary", "after a final", "dismissed after notifying"])
def test_the_kind_of_notification_is_derived_from_the_notifications_recorded(notified, state, kind):
    recorded = [ApNotification(k, f"AP-{n}", hours_ago(2), [1]) for n, k in enumerate(notified)]
    got = answers(made(incident({"discovered_at": hours_ago(5)}, notifications=recorded, state=state)))
    assert got["notification.kind"].value == kind and got["notification.kind"].mark is Mark.derived
    assert "AP" in got["notification.kind"].derived_from
    assert got["notification.earlier"].mark is (Mark.recorded if notified else Mark.derived)


def test_a_withdrawn_notification_is_no_longer_in_force_and_another_schools_is_not_this_ones():
    recorded = [ApNotification(ApKind.final, "AP-1", hours_ago(2), [1]),
                ApNotification(ApKind.withdrawal, "AP-1", hours_ago(1), [1]),
                ApNotification(ApKind.final, "AP-2", hours_ago(1), [2])]
    two = [AffectedSchool(1, SCHOOL_A, "De Regenboog", 10), AffectedSchool(2, SCHOOL_B, "Het Anker", 5)]
    got = answers(made(incident({"discovered_at": hours_ago(5)}, schools_=two, notifications=recorded)))
    assert got["notification.kind"].value == "preliminary"  # as if none was made: AP-1 was withdrawn
    assert [n["ap_reference"] for n in got["notification.earlier"].value] == ["AP-1", "AP-1"]


def test_special_categories_are_a_list_none_derived_from_the_kinds_or_missing():
    named = answers(made(incident({"data_kinds": ["special_categories"], "special_categories": ["health", "criminal"]})))
    assert named["personal_data.special_categories"].value == ["criminal", "health"]
    assert named["personal_data.special_categories"].mark is Mark.recorded
    none = answers(made(incident({"data_kinds": ["contact"]})))["personal_data.special_categories"]
    assert (none.mark, none.value) == (Mark.derived, [])
    assert none.derived_from == label("data_kinds", "nl")
    flagged = made(incident({"data_kinds": ["special_categories"]}))
    assert marks(flagged)["personal_data.special_categories"] is Mark.missing


def test_other_supervisors_are_not_asked_when_no_other_country_is_involved():
    none = answers(made(incident({"other_eu_countries": []})))
    assert none["international.other_eu_countries"].mark is Mark.recorded
    assert none["international.other_supervisors"].mark is Mark.derived
    some = marks(made(incident({"other_eu_countries": ["DE"]})))
    assert some["international.other_supervisors"] is Mark.missing


def test_what_was_asked_of_other_parties_is_asked_once_there_are_any():
    assert "other_parties.other_parties_asked" not in marks(made(incident()))
    assert marks(made(incident({"other_parties": "The wrong parent"})))["other_parties.other_parties_asked"] is Mark.missing


def test_the_people_counted_are_the_schools_own_when_several_schools_are_affected():
    two = [AffectedSchool(1, SCHOOL_A, "De Regenboog", 10), AffectedSchool(2, SCHOOL_B, "Het Anker", 5)]
    several = answers(made(incident({"group_size_min": 15, "group_size_max": 15}, schools_=two)))["people.count"]
    assert (several.mark, several.value) == (Mark.derived, {"min": 10, "max": 10})
    one = answers(made(incident({"group_size_min": 20, "group_size_max": 30})))["people.count"]
    assert (one.mark, one.value) == (Mark.recorded, {"min": 20, "max": 30})
    derived = answers(made(incident()))["people.count"]
    assert (derived.mark, derived.value) == (Mark.derived, {"min": 28, "max": 28})
    unknown = made(incident(schools_=[AffectedSchool(1, SCHOOL_A, "De Regenboog")]))
    assert marks(unknown)["people.count"] is Mark.missing


def test_the_overall_severity_is_recorded_or_the_gravest_groups():
    groups = [{"group": "pupils", "consequences": "Seen", "severity": "limited"},
              {"group": "parents", "consequences": "Phished", "severity": "considerable"}]
    derived = answers(made(incident({"affected_groups": groups})))["consequences.severity"]
    assert (derived.mark, derived.value) == (Mark.derived, "considerable")
    recorded = answers(made(incident({"affected_groups": groups, "severity": "very_large"})))["consequences.severity"]
    assert (recorded.mark, recorded.value) == (Mark.recorded, "very_large")
    assert marks(made(incident()))["consequences.severity"] is Mark.missing
    assert answers(made(incident({"affected_groups": groups})))["consequences.people"].mark is Mark.derived


def test_how_data_was_made_unreadable_is_asked_only_when_it_was():
    assert "prior_measures.data_unreadable_how" not in marks(made(incident({"data_unreadable": False})))
    assert marks(made(incident({"data_unreadable": True})))["prior_measures.data_unreadable_how"] is Mark.missing


def test_informing_the_people_asks_how_or_why_not():
    informed = marks(made(incident({"subjects_informed": True})))
    assert informed["follow_up.subjects_informed_how"] is informed["follow_up.subjects_informed_count"] is Mark.missing
    assert "follow_up.subjects_not_informed_reason" not in informed
    not_informed = marks(made(incident({"subjects_informed": False})))
    assert not_informed["follow_up.subjects_not_informed_reason"] is Mark.missing


def test_the_delay_reason_is_missing_once_the_deadline_passed_and_recorded_when_given():
    late = {"discovered_at": hours_ago(80), "cause_category": "system_technical"}
    assert marks(made(incident(late)))["timeline.delay_reason"] is Mark.missing
    on_time = answers(made(incident({"discovered_at": hours_ago(5), "cause_category": "system_technical"})))
    assert on_time["timeline.delay_reason"].mark is Mark.derived
    notified = [ApNotification(ApKind.final, "AP-9", hours_ago(1), [1])]
    given = answers(made(incident(late, notifications=notified),
                         delays=[ApDelay(ApKind.final, "AP-9", hours_ago(1), [1], "The supplier's logs came late")]))
    assert (given["timeline.delay_reason"].mark, given["timeline.delay_reason"].value) == (
        Mark.recorded, "The supplier's logs came late")
    assert given["timeline.notified_at"].mark is Mark.recorded


def test_the_confidentiality_integrity_availability_answer_is_derived_from_what_happened():
    got = answers(made(incident({"nature_actions": ["stolen"]})))["nature.cia"]
    assert got.mark is Mark.derived
    assert got.value == {"confidentiality": True, "integrity": False, "availability": True}
    assert marks(made(incident()))["nature.cia"] is Mark.missing


def test_labels_are_dutch_by_default_and_english_on_request():
    dutch, english = made(incident()), made(incident(), language="en")
    assert dutch.chapters[1].title.startswith("Verwerkingsverantwoordelijke")
    assert english.chapters[1].title.startswith("Controller")
    assert answers(english)["personal_data.special_categories"].label == label("special_categories", "en")
    assert answers(dutch)["personal_data.special_categories"].label == label("special_categories", "nl")


# --- the new fields, stored and validated -----------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"other_eu_countries": ["XX"]}, "other_eu_countries"),
    ({"other_eu_countries": ["NL"]}, "other_eu_countries"),  # the Netherlands is no *other* country
    ({"special_categories": ["shoe_size"]}, "special_categories"),
    ({"severity": "dreadful"}, "severity"),
])
def test_a_wrong_value_of_a_new_field_is_refused_naming_it(ctx, fields, field):
    schools.add(ctx, brin=SCHOOL_A, name="De Regenboog", contacts=["directie@12ab.example.nl"])
    reference = service.report(ctx, actor="hanna", source="school", schools={SCHOOL_A: 3}).reference
    with pytest.raises(InvalidInput) as refused:
        service.update(ctx, reference=reference, actor="hanna", fields=fields)
    assert field in [p.field.split(".")[0] for p in refused.value.fields]


def test_the_new_facts_are_plain_columns_and_their_texts_sealed(ctx):
    schools.add(ctx, brin=SCHOOL_A, name="De Regenboog", contacts=["directie@12ab.example.nl"])
    reference = service.report(ctx, actor="hanna", source="school", schools={SCHOOL_A: 3},
                               fields={**AP_DOSSIER, "other_eu_countries": ["de", "BE"]}).reference
    stored = queries.get(ctx, reference).disclosure
    assert [c.value for c in stored.other_eu_countries] == ["BE", "DE"]  # upper case, sorted
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(incident_t).where(incident_t.c.reference == reference)).one()
    assert (row.severity, row.special_categories, row.other_eu_countries) == ("limited", ["health"], ["BE", "DE"])
    assert b"parents of group 7" not in row.personal  # other parties: free text, sealed


def test_a_schools_master_data_is_validated_naming_each_field(ctx):
    with pytest.raises(InvalidInput) as refused:
        schools.add(ctx, brin=SCHOOL_A, name="De Regenboog", contacts=["directie@12ab.example.nl"],
                    master={"kvk_number": "1234", "sector": "university", "dpo_registration": "FG 12",
                            "contact_person": {"name": "J", "email": "not-an-address", "phone": "call me"}})
    named = {p.field for p in refused.value.fields}
    assert named == {"kvk_number", "sector", "dpo_registration", "contact_person.email", "contact_person.phone"}
    assert any("eight digits" in p.problem for p in refused.value.fields)


def test_the_processors_kvk_number_setting_is_checked():
    with pytest.raises(ValueError, match="eight digits"):
        Settings(processor_kvk="KVK123")


def test_a_schools_master_data_is_updated_and_its_contact_person_sealed(ctx):
    schools.add(ctx, brin=SCHOOL_A, name="De Regenboog", contacts=["directie@12ab.example.nl"])
    updated = schools.update(ctx, brin=SCHOOL_A, changes=MASTER_DATA)
    assert updated.kvk_number == "41234567" and updated.sector is schools.Sector.primary
    assert schools.get(ctx, SCHOOL_A).contact_person == MASTER_DATA["contact_person"]
    with ctx.engine.connect() as conn:
        sealed = conn.execute(sa.select(school_t.c.contact_person).where(school_t.c.brin == SCHOOL_A)).scalar_one()
    assert b"de Vries" not in sealed and b"040 123" not in sealed
    cleared = schools.update(ctx, brin=SCHOOL_A, changes={"contact_person": None, "name": "OBS De Regenboog"})
    assert cleared.contact_person is None and cleared.kvk_number == "41234567" and cleared.name == "OBS De Regenboog"
    with pytest.raises(InvalidInput) as refused:
        schools.update(ctx, brin=SCHOOL_A, changes={"kvk_number": "123"})
    assert [p.field for p in refused.value.fields] == ["kvk_number"]


# --- who reads it: the API --------------------------------------------------------------------------


def report(api, *, cause: str = "user_error_employee", schools_: dict | None = None) -> str:
    return api.report(schools=schools_, cause_category=cause, discovered_at=hours_ago(3).isoformat(),
                      other_parties="Parents of group 8")


@pytest.mark.parametrize(("user", "status"), [
    ("handler", 200), ("manager", 200), ("school_a", 200), ("school_b", 404), ("admin", 403), (None, 401)])
def test_who_reads_a_responsible_schools_dossier(api, user, status):
    reference = report(api)
    response = api.call(user, "GET", f"/incidents/{reference}/ap-dossier")
    assert response.status_code == status, response.text
    if status == 200:
        body = response.json()
        assert body["school"] == SCHOOL_A and [c["key"] for c in body["chapters"]] == CHAPTER_ORDER
        assert {a["mark"] for a in body["still_to_collect"]} == {"missing"}


def test_another_schools_replay_of_the_url_is_the_404_of_a_missing_incident(api):
    reference = report(api)
    foreign = api.call("school_b", "GET", f"/incidents/{reference}/ap-dossier?school={SCHOOL_A}")
    missing = api.call("school_b", "GET", "/incidents/DL-2026-99999/ap-dossier")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["message"].replace(reference, "X") == \
        missing.json()["error"]["message"].replace("DL-2026-99999", "X")


def test_a_school_reads_no_dossier_where_the_processor_notifies(api):
    for cause in ("system_technical", "unknown"):
        reference = report(api, cause=cause)
        assert_error(api.call("school_a", "GET", f"/incidents/{reference}/ap-dossier"), 403, "forbidden")
        assert api.call("handler", "GET", f"/incidents/{reference}/ap-dossier").status_code == 200


def test_a_school_reads_only_its_own_chapter_of_an_incident_of_several_schools(api):
    reference = report(api, schools_={SCHOOL_A: 10, SCHOOL_B: 5})
    own = api.call("school_a", "GET", f"/incidents/{reference}/ap-dossier")
    assert own.status_code == 200 and own.json()["school"] == SCHOOL_A
    assert "Het Anker" not in own.text and SCHOOL_B not in own.text
    counted = next(a for c in own.json()["chapters"] for a in c["answers"] if a["key"] == "people.count")
    assert counted["value"] == {"min": 10, "max": 10}
    other = api.call("school_a", "GET", f"/incidents/{reference}/ap-dossier?school={SCHOOL_B}")
    assert other.status_code == 404


def test_staff_name_the_school_when_several_are_affected(api):
    reference = report(api, schools_={SCHOOL_A: 10, SCHOOL_B: 5})
    assert_error(api.call("handler", "GET", f"/incidents/{reference}/ap-dossier"), 422, "invalid_input", "school")
    chosen = api.call("manager", "GET", f"/incidents/{reference}/ap-dossier?school={SCHOOL_B.lower()}")
    assert chosen.status_code == 200 and chosen.json()["school_name"] == "Het Anker"
    assert api.call("handler", "GET", f"/incidents/{reference}/ap-dossier?school=99ZZ").status_code == 404


def test_the_dossier_speaks_english_on_request_and_puts_values_in_words(api):
    reference = report(api)
    api.call("handler", "PATCH", f"/incidents/{reference}", json={
        "version": 1, "fields": {"special_categories": ["health"], "data_kinds": ["special_categories"]}})
    body = api.call("handler", "GET", f"/incidents/{reference}/ap-dossier?lang=en").json()
    assert body["chapters"][1]["title"] == "Controller (the school)"
    special = next(a for c in body["chapters"] for a in c["answers"] if a["key"] == "personal_data.special_categories")
    assert (special["value"], special["text"], special["mark"]) == (["health"], "health", "recorded")
    dutch = api.call("handler", "GET", f"/incidents/{reference}/ap-dossier").json()
    special = next(a for c in dutch["chapters"] for a in c["answers"] if a["key"] == "personal_data.special_categories")
    assert special["text"] == "gezondheid" and dutch["still_to_collect"][0]["text"] == "nog te verzamelen"


def test_an_admin_updates_a_schools_master_data_through_the_api(api):
    path = f"/schools/{SCHOOL_A}"
    assert api.call("handler", "PATCH", path, json={"kvk_number": "41234567"}).status_code == 403
    assert_error(api.call("admin", "PATCH", path, json={"kvk_number": "4123"}), 422, "invalid_input", "kvk_number")
    assert api.call("admin", "PATCH", "/schools/99ZZ", json={"kvk_number": "41234567"}).status_code == 404
    changed = api.call("admin", "PATCH", path, json=MASTER_DATA)
    assert changed.status_code == 200, changed.text
    assert changed.json()["contact_person"]["name"] == "J. de Vries" and changed.json()["sector"] == "primary"
    reference = report(api)
    body = api.call("school_a", "GET", f"/incidents/{reference}/ap-dossier").json()
    assert not [a for a in body["still_to_collect"] if a["key"].startswith("controller.")]


def test_a_school_is_added_with_its_master_data_through_the_api(api):
    added = api.call("admin", "POST", "/schools", json={
        "brin": "56EF", "name": "De Vlinder", "contacts": ["directie@56ef.example.nl"], **MASTER_DATA})
    assert added.status_code == 201, added.text
    assert added.json()["kvk_number"] == "41234567"


# --- who reads it: the page -----------------------------------------------------------------------------


@pytest.fixture
def app(ctx, settings):
    return installation(ctx, settings)


def page_incident(ctx, *, cause: str = "user_error_employee", brins: tuple[str, ...] = (SCHOOL_A,)) -> str:
    return service.report(ctx, actor="hanna", source="school", schools={b: 4 for b in brins},
                          fields={"discovered_at": hours_ago(2), "cause_category": cause,
                                  "summary": "Report cards sent to the wrong parents"}).reference


def test_the_dossier_page_shows_what_is_still_to_collect_and_every_chapter(app, ctx):
    reference = page_incident(ctx)
    me = browser(app)
    me.sign_in("school_a")
    shown = me.get(f"/incidents/{reference}/dossier")
    assert shown.status_code == 200
    assert "Nog te verzamelen" in shown.text and "Verwerkingsverantwoordelijke (de school)" in shown.text
    assert 'href="#controller-kvk_number"' in shown.text and 'id="controller-kvk_number"' in shown.text
    assert "Report cards sent to the wrong parents" in shown.text


@pytest.mark.parametrize(("user", "status"), [("handler", 200), ("manager", 200), ("school_b", 404), ("admin", 403)])
def test_who_opens_the_dossier_page(app, ctx, user, status):
    reference = page_incident(ctx)
    me = browser(app)
    me.sign_in(user)
    shown = me.get(f"/incidents/{reference}/dossier")
    assert shown.status_code == status and shown.headers["content-type"].startswith("text/html")


def test_an_anonymous_visitor_is_sent_to_sign_in(app, ctx):
    reference = page_incident(ctx)
    assert browser(app).get(f"/incidents/{reference}/dossier").headers["location"].startswith("/signin?next=")


def test_a_school_opens_no_dossier_page_where_the_processor_notifies(app, ctx):
    reference = page_incident(ctx, cause="system_technical")
    me = browser(app)
    me.sign_in("school_a")
    refused = me.get(f"/incidents/{reference}/dossier")
    assert refused.status_code == 403 and "De verwerker meldt dit datalek" in refused.text


def test_staff_choose_the_school_of_an_incident_with_several(app, ctx):
    reference = page_incident(ctx, brins=(SCHOOL_A, SCHOOL_B))
    me = browser(app)
    me.sign_in("handler")
    chooser = me.get(f"/incidents/{reference}/dossier")
    assert chooser.status_code == 200 and "Kies de school" in chooser.text
    assert f"/incidents/{reference}/dossier?school={SCHOOL_B}" in chooser.text
    chosen = me.get(f"/incidents/{reference}/dossier?school={SCHOOL_B}")
    assert chosen.status_code == 200 and "Het Anker" in chosen.text and "Kies de school" not in chosen.text
    school = browser(app)
    school.sign_in("school_a")
    assert school.get(f"/incidents/{reference}/dossier?school={SCHOOL_B}").status_code == 404
    own = school.get(f"/incidents/{reference}/dossier")
    assert own.status_code == 200 and "Het Anker" not in own.text


def test_the_delay_reason_is_asked_by_the_moment_the_dossier_is_drawn_up():
    late = incident({"discovered_at": hours_ago(50), "cause_category": "system_technical"})
    later = build_dossier(late, school_view(), Processor(), delays=[], periods=Periods(),
                          now=datetime.now(UTC) + timedelta(hours=30))
    assert marks(later)["timeline.delay_reason"] is Mark.missing
    assert marks(made(late))["timeline.delay_reason"] is Mark.derived
