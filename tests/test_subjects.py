"""Data-subject requests (seed section 5): a school asks what breachflow holds about one person, or
to erase it where no duty keeps it; it only ever reaches its own part of its own incidents."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, assert_error, build
from conftest import CONFIRM, hours_ago
from reading import whole_timeline

from breachflow.api.render import Words
from breachflow.api.timeline_text import entry_text, said
from breachflow.notifications.models import outbox_t
from breachflow.notifications.worker import notifications_context
from breachflow.workflow import accounts, crypto, queries, schools, store, subjects, unit
from breachflow.workflow.models import incident_t, school_t, user_t
from breachflow.workflow.timeline import EventKind

PIETER, PIETER_MAIL, PUPIL = "Pieter de Vries", "pieter.devries@ouders.example.nl", "40123"
KLAAS = "Klaas Bakker"
JAN_MAIL, DIRECTIE_MAIL = "jan.jansen@12ab.example.nl", "directie@12ab.example.nl"
SUBJECT_EVENTS = (EventKind.subject_exported, EventKind.subject_erased)
REPORTED = "timeline[1].payload.changes"  # the ``reported`` event: every field as reported, [before, after]


class World:
    """School A's own incident reported by Pieter, A's second incident where he is in a contact's
    summary, an incident shared by A and B with B-only traces of him, and B's own incident of Klaas."""

    def __init__(self, ctx, settings) -> None:
        self.ctx, self.api = ctx, build(ctx, settings)
        schools.update(ctx, brin=SCHOOL_A, changes={"contacts": [DIRECTIE_MAIL, JAN_MAIL]})
        api, when = self.api, hours_ago(3).isoformat()
        self.own = api.report(schools={SCHOOL_A: 10}, discovered_at=when, reporter_name=PIETER,
                              reporter_contact=PIETER_MAIL, summary=f"{PIETER} saw the grades of pupil {PUPIL}")
        self.second = api.report(schools={SCHOOL_A: 5}, discovered_at=when, summary="A USB stick was lost")
        self.contact(self.second, SCHOOL_A, f"Spoke with {PIETER.upper()}, father of pupil {PUPIL}1 and {PUPIL}")
        self.shared = api.report(schools={SCHOOL_A: 10, SCHOOL_B: 20}, discovered_at=when, reporter_name=KLAAS,
                                 reporter_contact="06-12345678")
        self.move(self.shared, "begin_triage")
        self.move(self.shared, "confirm", {"fields": CONFIRM | {"summary": f"The grades of {PIETER}'s child leaked"}})
        self.contact(self.shared, SCHOOL_B, f"Called B about {PIETER}")
        self.ok(api.call("handler", "POST", f"/incidents/{self.shared}/notes", json={"text": f"Internal: {PIETER}"}))
        self.ok(api.call("school_b", "POST", f"/incidents/{self.shared}/acknowledgements",
                         json={"comment": f"{PIETER} read it at B"}))
        self.b_only = api.report(schools={SCHOOL_B: 3}, discovered_at=when, reporter_name=KLAAS,
                                 summary=f"{KLAAS} lost a laptop with notes on {PIETER}")
        with ctx.engine.connect() as conn:
            notices = conn.execute(sa.select(outbox_t.c.message_id, school_t.c.brin)
                                   .join(school_t, school_t.c.id == outbox_t.c.school_id)).all()
        self.notice_to = {brin: mid for mid, brin in notices}
        assert set(self.notice_to) == {SCHOOL_A, SCHOOL_B}

    @staticmethod
    def ok(response) -> dict:
        assert response.status_code in (200, 201), response.text
        return response.json()

    def move(self, ref: str, trigger: str, body: dict | None = None) -> None:
        self.ok(self.api.call("handler", "POST", f"/incidents/{ref}/triggers/{trigger}", json=body))

    def contact(self, ref: str, brin: str, summary: str) -> None:
        self.ok(self.api.call("handler", "POST", f"/incidents/{ref}/contacts",
                              json={"school": brin, "channel": "phone", "summary": summary}))

    def ask(self, user: str, what: str, **body) -> dict:
        return self.ok(self.api.call(user, "POST", f"/subjects/{what}", json=body))

    def seq(self, ref: str, kind: EventKind) -> int:
        return next(e.seq for e in whole_timeline(self.ctx, ref) if e.kind == kind)

    def subject_events(self, ref: str) -> list:
        return [e for e in whole_timeline(self.ctx, ref) if e.kind in SUBJECT_EVENTS]


@pytest.fixture
def world(ctx, settings) -> World:
    return World(ctx, settings)


def places(found: dict) -> set[tuple[str | None, str]]:
    return {(i["reference"], i["where"]) for i in found["items"]}


def test_an_export_finds_the_person_across_incidents_saying_where_each_item_sits(world):
    found = world.ask("handler", "export", name="  pieter   DE vries ", school=SCHOOL_A)
    contact_seq = world.seq(world.second, EventKind.contact)
    assert places(found) == {
        (world.own, "incident.reporter_name"), (world.own, "incident.summary"),
        (world.own, f"{REPORTED}.reporter_name[1]"), (world.own, f"{REPORTED}.summary[1]"),  # staff read A's whole timeline
        (world.second, f"timeline[{contact_seq}].payload.summary"),
        (world.shared, "incident.summary"), (world.shared, f"notice {world.notice_to[SCHOOL_A]} body"),
    }
    values = {(i["reference"], i["where"]): i["value"] for i in found["items"]}
    assert values[(world.own, "incident.summary")] == f"{PIETER} saw the grades of pupil {PUPIL}"  # the whole value
    assert values[(world.second, f"timeline[{contact_seq}].payload.summary")].startswith("Spoke with PIETER")
    assert (found["school"], found["identifier"], found["unreadable"]) == (SCHOOL_A, "name", [])


def test_an_email_or_pupil_number_matches_only_as_a_whole_token(world):
    by_mail = world.ask("handler", "export", email=PIETER_MAIL.upper(), school=SCHOOL_A)
    assert places(by_mail) == {(world.own, "incident.reporter_contact"), (world.own, f"{REPORTED}.reporter_contact[1]")}
    assert world.ask("school_a", "export", email="devries@ouders.example.nl")["items"] == []
    contact_seq = world.seq(world.second, EventKind.contact)
    assert places(world.ask("school_a", "export", pupil_number=PUPIL)) == {
        (world.own, "incident.summary"), (world.second, f"timeline[{contact_seq}].payload.summary")}
    assert world.ask("school_a", "export", pupil_number=PUPIL[:-1])["items"] == []
    assert world.ask("school_a", "export", name="Pieter de Vrie")["items"] == []  # whole words only


def test_a_shared_incident_gives_a_school_only_its_own_part(world):
    found = world.ask("school_a", "export", name=PIETER)
    text = json.dumps(found)
    assert world.notice_to[SCHOOL_B] not in text  # B's notice
    for b_only in ("Called B", "Internal:", "read it at B", world.b_only):  # B's contact, staff's note, B's acknowledgement, B's incident
        assert b_only not in text
    assert places(world.ask("handler", "export", name=KLAAS, school=SCHOOL_B)) == {  # the shared one's reporter: no one school's
        (world.b_only, "incident.reporter_name"), (world.b_only, "incident.summary"),
        (world.b_only, f"{REPORTED}.reporter_name[1]"), (world.b_only, f"{REPORTED}.summary[1]")}
    b_found = world.ask("handler", "export", name=PIETER, school=SCHOOL_B)  # B's own part, symmetrically
    assert (world.shared, f"notice {world.notice_to[SCHOOL_B]} body") in places(b_found)
    assert world.notice_to[SCHOOL_A] not in json.dumps(b_found)


def test_a_school_asking_itself_never_learns_who_reported_its_breach(world):
    """A school never sees the reporter's details; asking by a name or an address must not tell it
    whether that person reported: only the processor's staff, acting on its request, reach them."""
    by_name = places(world.ask("school_a", "export", name=PIETER))
    assert (world.own, "incident.summary") in by_name and (world.own, "incident.reporter_name") not in by_name
    assert world.ask("school_a", "export", email=PIETER_MAIL)["items"] == []
    assert world.ask("school_a", "erase", email=PIETER_MAIL)["erased"] == []
    kept = world.ok(world.api.call("handler", "GET", f"/incidents/{world.own}"))["disclosure"]
    assert (kept["reporter_name"], kept["reporter_contact"]) == (PIETER, PIETER_MAIL)
    assert (world.own, "incident.reporter_contact") in places(
        world.ask("handler", "export", email=PIETER_MAIL, school=SCHOOL_A))


def test_a_person_only_in_another_schools_incidents_is_nothing_to_a_school(world):
    assert world.ask("school_a", "export", name=KLAAS)["items"] == []  # B's reporter, and reporter of the shared one
    erased = world.ask("school_a", "erase", name=KLAAS)
    assert erased["erased"] == erased["kept"] == []
    for ref in (world.own, world.second, world.shared, world.b_only):
        assert world.subject_events(ref) == []
    assert world.ok(world.api.call("handler", "GET", f"/incidents/{world.shared}"))["disclosure"]["reporter_name"] == KLAAS


def test_a_school_naming_another_school_is_refused_and_nothing_is_written(world):
    for what in ("export", "erase"):
        refused = world.api.call("school_a", "POST", f"/subjects/{what}", json={"name": PIETER, "school": SCHOOL_B})
        assert_error(refused, 403, "forbidden")
        assert "Pieter" not in refused.text
    assert world.subject_events(world.shared) == world.subject_events(world.b_only) == []
    own = world.ask("school_a", "export", name=PIETER, school=SCHOOL_A.lower())  # its own, however typed
    assert own["school"] == SCHOOL_A


@pytest.mark.parametrize("user", ["manager", "admin"])
def test_only_schools_and_handlers_make_requests(world, user):
    for what in ("export", "erase"):
        assert_error(world.api.call(user, "POST", f"/subjects/{what}", json={"name": PIETER, "school": SCHOOL_A}),
                     403, "forbidden")


def test_a_replayed_request_still_shows_only_the_callers_own(world):
    body, key = {"name": PIETER}, {"Idempotency-Key": "subject-request-1"}
    first = world.ok(world.api.call("school_a", "POST", "/subjects/export", json=body, headers=key))
    again = world.ok(world.api.call("school_a", "POST", "/subjects/export", json=body, headers=key))
    assert first == again
    replayed_by_b = world.ok(world.api.call("school_b", "POST", "/subjects/export", json=body, headers=key))
    assert replayed_by_b["school"] == SCHOOL_B
    assert {i["reference"] for i in replayed_by_b["items"]} <= {world.shared, world.b_only}
    assert world.notice_to[SCHOOL_A] not in json.dumps(replayed_by_b)
    assert {i["reference"] for i in first["items"]} <= {world.own, world.second, world.shared}
    assert len(world.subject_events(world.own)) == 2  # each request answered is on the timeline


def test_an_export_is_on_the_timeline_of_each_incident_it_found_something_in_without_the_identifier(world):
    world.ask("handler", "export", email=PIETER_MAIL, school=SCHOOL_A)
    world.ask("handler", "export", name=PIETER, school=SCHOOL_A)
    for ref in (world.own, world.second, world.shared):
        events = world.subject_events(ref)
        assert {e.kind for e in events} == {EventKind.subject_exported}
        assert all(e.actor == "handler" and e.payload["school"] == SCHOOL_A for e in events)
        assert all("pieter" not in json.dumps(e.payload).lower() for e in events)
    own = world.subject_events(world.own)
    assert [(e.payload["identifier"], e.payload["found"], e.payload["count"]) for e in own] == [
        ("email", ["incident.reporter_contact", f"{REPORTED}.reporter_contact[1]"], 2),
        ("name", ["incident.reporter_name", "incident.summary", f"{REPORTED}.reporter_name[1]", f"{REPORTED}.summary[1]"],
         4)]
    assert world.subject_events(world.b_only) == []
    timeline = world.ok(world.api.call("school_a", "GET", f"/incidents/{world.own}/timeline"))["items"]
    assert EventKind.subject_exported not in {e["kind"] for e in timeline}  # the school's view is unchanged


def test_erase_clears_the_reporters_details_keeps_the_rest_with_reasons(world):
    before = world.ok(world.api.call("handler", "GET", f"/incidents/{world.own}"))
    done = world.ask("handler", "erase", name=PIETER, school=SCHOOL_A)
    after = world.ok(world.api.call("handler", "GET", f"/incidents/{world.own}"))
    assert after["disclosure"]["reporter_name"] is after["disclosure"]["reporter_contact"] is None
    assert after["disclosure"]["summary"] == before["disclosure"]["summary"]
    assert not set(subjects.REPORTER_FIELDS) & unit.CLOCK_FIELDS  # the reporter's details drive no clock…
    assert after["version"] == before["version"] + 1 and after["deadlines"] == before["deadlines"]  # …none moved
    assert {(e["reference"], e["where"]) for e in done["erased"]} == {
        (world.own, "incident.reporter_name"), (world.own, "incident.reporter_contact")}
    why = {(k["reference"], k["where"]): k["why"] for k in done["kept"]}
    assert "33(5)" in why[(world.own, "incident.summary")] and "33(5)" in why[(world.shared, "incident.summary")]
    assert "informed" in why[(world.shared, f"notice {world.notice_to[SCHOOL_A]} body")]
    assert "append-only" in why[(world.own, f"{REPORTED}.reporter_name[1]")]  # the name as reported stays there
    contact_seq = world.seq(world.second, EventKind.contact)
    assert "append-only" in why[(world.second, f"timeline[{contact_seq}].payload.summary")]
    assert world.ask("school_a", "export", email=PIETER_MAIL)["items"] == []
    with world.ctx.engine.connect() as conn:  # sealed anew: the stored record no longer holds him
        loaded = store.load(conn, world.ctx.keys, world.own)
        personal = conn.execute(sa.select(incident_t.c.personal).where(incident_t.c.id == loaded.id)).scalar()
    assert set(subjects.REPORTER_FIELDS).isdisjoint(crypto.open_sealed(loaded.data_key, personal))


def test_staff_search_the_whole_timeline_of_a_schools_own_incident_and_it_stays_after_an_erase(world):
    """The ``reported`` event holds the reporter's name and address, which the school's view of the
    timeline leaves out: staff asking for a sole controller find them there, before and after an erase."""
    assert (world.own, f"{REPORTED}.reporter_contact[1]") in places(
        world.ask("handler", "export", email=PIETER_MAIL, school=SCHOOL_A))
    assert (world.own, f"{REPORTED}.reporter_name[1]") in places(world.ask("handler", "export", name=PIETER, school=SCHOOL_A))
    done = world.ask("handler", "erase", email=PIETER_MAIL, school=SCHOOL_A)
    assert {(e["reference"], e["where"]) for e in done["erased"]} == {
        (world.own, "incident.reporter_name"), (world.own, "incident.reporter_contact")}
    why = {(k["reference"], k["where"]): k["why"] for k in done["kept"]}
    assert "append-only" in why[(world.own, f"{REPORTED}.reporter_contact[1]")]
    after = {(i["where"], i["value"]) for i in world.ask("handler", "export", email=PIETER_MAIL, school=SCHOOL_A)["items"]}
    assert after == {(f"{REPORTED}.reporter_contact[1]", PIETER_MAIL)}  # what the timeline keeps is still told
    assert (world.own, f"{REPORTED}.reporter_name[1]") in places(world.ask("handler", "export", name=PIETER, school=SCHOOL_A))


def test_in_a_shared_incident_staff_search_only_the_schools_view_of_the_timeline(world):
    """The shared incident's reporter (Klaas) is in its ``reported`` event: no one school's to ask about."""
    assert world.ask("handler", "export", name=KLAAS, school=SCHOOL_A)["items"] == []
    a_found = world.ask("handler", "export", name=PIETER, school=SCHOOL_A)["items"]
    assert not [i for i in a_found if i["reference"] == world.shared and i["where"].startswith("timeline[")]
    b_found = json.dumps(world.ask("handler", "export", name=PIETER, school=SCHOOL_B))
    assert "read it at B" in b_found and "Called B" in b_found and "Internal:" not in b_found  # B's own, not staff's note


def test_erase_is_on_the_timeline_of_every_incident_it_touched_without_the_identifier(world):
    world.ask("handler", "erase", email=PIETER_MAIL, school=SCHOOL_A)
    world.ask("handler", "erase", name=PIETER, school=SCHOOL_A)
    for ref in (world.own, world.second, world.shared):
        events = world.subject_events(ref)
        assert events and {e.kind for e in events} == {EventKind.subject_erased}
        for e in events:
            assert "pieter" not in json.dumps(e.payload).lower() and "40123" not in json.dumps(e.payload)
    first, second = world.subject_events(world.own)
    assert (first.payload["identifier"], first.payload["erased"]) == ("email", ["reporter_name", "reporter_contact"])
    assert (second.payload["identifier"], second.payload["erased"], second.payload["kept"]) == (
        "name", [], ["incident.summary", f"{REPORTED}.reporter_name[1]", f"{REPORTED}.summary[1]"])
    assert world.subject_events(world.b_only) == []


def test_erase_in_a_shared_incident_leaves_the_reporter_the_school_cannot_see(world):
    world.ask("handler", "erase", name=KLAAS, school=SCHOOL_B)
    shared = world.ok(world.api.call("handler", "GET", f"/incidents/{world.shared}"))
    assert shared["disclosure"]["reporter_name"] == KLAAS  # hidden from A and B alike: not B's alone to erase
    b_only = world.ok(world.api.call("handler", "GET", f"/incidents/{world.b_only}"))
    assert b_only["disclosure"]["reporter_name"] is None


def test_erase_takes_the_address_out_of_the_schools_contacts_but_never_the_last(world):
    done = world.ask("school_a", "erase", email=JAN_MAIL)
    assert done["erased"] == [{"reference": None, "where": "school.contacts[1]"}]
    assert schools.get(world.ctx, SCHOOL_A).contacts == [DIRECTIE_MAIL]
    last = world.ask("school_a", "erase", email=DIRECTIE_MAIL)
    why = {(k["reference"], k["where"]): k["why"] for k in last["kept"]}
    assert last["erased"] == [] and "only notice address" in why[(None, "school.contacts[0]")]
    assert "informed" in why[(world.shared, f"notice {world.notice_to[SCHOOL_A]} recipients[0]")]
    assert schools.get(world.ctx, SCHOOL_A).contacts == [DIRECTIE_MAIL]


def test_a_name_never_matches_inside_an_email_address(world):
    """"nl" is in every Dutch address, "Directie" in the school's notice address: neither is a name there."""
    ref = world.api.report(schools={SCHOOL_A: 2}, discovered_at=hours_ago(2).isoformat(), summary="A letter went astray",
                           reporter_name=PIETER, reporter_contact="p.devries@example.nl")
    assert world.ask("handler", "export", name="nl", school=SCHOOL_A)["items"] == []
    done = world.ask("handler", "erase", name="nl", school=SCHOOL_A)
    assert done["erased"] == done["kept"] == []
    reporter = world.ok(world.api.call("handler", "GET", f"/incidents/{ref}"))["disclosure"]
    assert (reporter["reporter_name"], reporter["reporter_contact"]) == (PIETER, "p.devries@example.nl")
    assert world.ask("school_a", "erase", name="Directie")["erased"] == []
    assert schools.get(world.ctx, SCHOOL_A).contacts == [DIRECTIE_MAIL, JAN_MAIL]


def test_erase_acts_only_on_a_recorded_value_that_is_exactly_the_one_given(world):
    """A phrase found inside a longer name or contact may be someone else: it is listed, kept, not erased."""
    ref = world.api.report(schools={SCHOOL_A: 2}, discovered_at=hours_ago(2).isoformat(), summary="A letter went astray",
                           reporter_name=f"{PIETER} Jr", reporter_contact=f"Pieter Sr, {PIETER_MAIL}")
    done = world.ask("handler", "erase", name=PIETER, school=SCHOOL_A)
    assert (ref, "incident.reporter_name") not in {(e["reference"], e["where"]) for e in done["erased"]}
    why = {(k["reference"], k["where"]): k["why"] for k in done["kept"]}
    assert "exactly" in why[(ref, "incident.reporter_name")]
    done = world.ask("handler", "erase", email=PIETER_MAIL, school=SCHOOL_A)  # the contact holds more than the address
    assert "exactly" in {(k["reference"], k["where"]): k["why"] for k in done["kept"]}[(ref, "incident.reporter_contact")]
    reporter = world.ok(world.api.call("handler", "GET", f"/incidents/{ref}"))["disclosure"]
    assert (reporter["reporter_name"], reporter["reporter_contact"]) == (f"{PIETER} Jr", f"Pieter Sr, {PIETER_MAIL}")
    done = world.ask("handler", "erase", name="  pieter DE vries   jr ", school=SCHOOL_A)  # exactly, however typed
    assert {(e["reference"], e["where"]) for e in done["erased"]} >= {
        (ref, "incident.reporter_name"), (ref, "incident.reporter_contact")}  # the same person's contact with it


def test_a_schools_address_is_erased_only_when_it_is_the_address_given(world):
    shared_box = f"info/{JAN_MAIL}"  # holds Jan's address as a token, and is not his
    schools.update(world.ctx, brin=SCHOOL_A, changes={"contacts": [DIRECTIE_MAIL, shared_box]})
    assert (None, "school.contacts[1]") in places(world.ask("school_a", "export", email=JAN_MAIL))
    done = world.ask("school_a", "erase", email=JAN_MAIL)
    assert done["erased"] == [] and "exactly" in {k["where"]: k["why"] for k in done["kept"]}["school.contacts[1]"]
    assert schools.get(world.ctx, SCHOOL_A).contacts == [DIRECTIE_MAIL, shared_box]


def test_the_schools_own_user_accounts_are_exported_and_kept_with_the_reason(world):
    marieke = "Marieke@12ab.example.nl"
    accounts.add_user(world.ctx, username="marieke", role="school", school=SCHOOL_A, email=marieke)
    accounts.add_user(world.ctx, username="marieke_b", role="school", school=SCHOOL_B, email=marieke)  # B's user
    accounts.add_user(world.ctx, username="marieke_staff", role="handler", email=marieke)  # the processor's own
    found = world.ask("school_a", "export", email=marieke.lower())
    assert [(i["reference"], i["where"], i["value"]) for i in found["items"]] == [
        (None, "user_account[marieke].email", marieke)]
    assert places(world.ask("handler", "export", name=" MARIEKE ", school=SCHOOL_A)) == {
        (None, "user_account[marieke].username")}
    assert world.ask("school_a", "export", name="marieke_b")["items"] == []
    done = world.ask("school_a", "erase", email=marieke)
    assert done["erased"] == []
    assert "breachflow user" in {k["where"]: k["why"] for k in done["kept"]}["user_account[marieke].email"]
    with world.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(user_t.c.email).where(user_t.c.username == "marieke")).scalar() == marieke


def test_erase_of_a_person_with_no_match_touches_nothing(world):
    before = {ref: (len(whole_timeline(world.ctx, ref)), world.ok(world.api.call("handler", "GET", f"/incidents/{ref}")))
              for ref in (world.own, world.second, world.shared, world.b_only)}
    done = world.ask("school_a", "erase", name="Nobody Known")
    assert done["erased"] == done["kept"] == done["unreadable"] == []
    after = {ref: (len(whole_timeline(world.ctx, ref)), world.ok(world.api.call("handler", "GET", f"/incidents/{ref}")))
             for ref in before}
    assert after == before
    assert schools.get(world.ctx, SCHOOL_A).contacts == [DIRECTIE_MAIL, JAN_MAIL]


def test_an_erasure_is_one_transaction(world, monkeypatch):
    def fails(*_args, **_kwargs):
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(schools, "get_in", fails)  # the last step, after the incidents: the school's contacts
    with pytest.raises(RuntimeError):
        subjects.erase(notifications_context(world.ctx), SCHOOL_A, subjects.Person.of(name=PIETER), "hanna")
    assert world.ok(world.api.call("handler", "GET", f"/incidents/{world.own}"))["disclosure"]["reporter_name"] == PIETER
    assert world.subject_events(world.own) == []


BAD = [
    ({}, ["email", "name", "pupil_number"]),
    ({"email": "pieter at home"}, ["email"]),
    ({"name": " P "}, ["name"]),
    ({"pupil_number": "   "}, ["pupil_number"]),
    ({"email": PIETER_MAIL, "name": PIETER}, ["email", "name"]),
    ({"name": "x" * 255}, ["name"]),
    ({"name": PIETER, "school": "nonsense!"}, ["school"]),
    ({"name": PIETER, "age": 12}, ["age"]),
]


@pytest.mark.parametrize(("body", "fields"), BAD, ids=[",".join(f) for _, f in BAD])
def test_bad_input_is_a_422_naming_the_field(world, body, fields):
    for what in ("export", "erase"):
        assert_error(world.api.call("school_a", "POST", f"/subjects/{what}", json=body), 422, "invalid_input", *fields)
    assert world.subject_events(world.own) == []


def test_a_handler_names_a_known_school(world):
    assert_error(world.api.call("handler", "POST", "/subjects/export", json={"name": PIETER}), 422, "invalid_input",
                 "school")
    assert_error(world.api.call("handler", "POST", "/subjects/export", json={"name": PIETER, "school": "99ZZ"}), 422,
                 "invalid_input", "school")


@pytest.mark.tampers  # the record is damaged on purpose
def test_a_damaged_incident_is_named_unreadable_and_the_rest_is_exported(world):
    with world.ctx.engine.begin() as conn:
        conn.execute(sa.update(incident_t).where(incident_t.c.reference == world.own)
                     .values(personal=b"\x01" + b"planted, not sealed" * 3))
    found = world.ask("school_a", "export", name=PIETER)
    assert found["unreadable"] == [world.own]
    assert {i["reference"] for i in found["items"]} == {world.second, world.shared}
    assert world.subject_events(world.own) == [] and world.subject_events(world.second)


def test_a_destroyed_school_key_leaves_no_notice_to_export(world):
    with world.ctx.engine.begin() as conn:
        key_id = conn.execute(sa.select(school_t.c.data_key_id).where(school_t.c.brin == SCHOOL_A)).scalar()
        store.destroy_data_key(conn, world.ctx.keys, key_id, hours_ago(0))
    found = world.ask("school_a", "export", name=PIETER)
    assert not [i for i in found["items"] if i["where"].startswith("notice ")]
    assert (world.shared, "incident.summary") in places(found)


# --- the command line ---------------------------------------------------------------------------


def test_the_cli_exports_json_to_stdout_or_an_owner_only_file(world, cli, tmp_path):
    code, out, _ = cli("subject", "export", "--school", SCHOOL_A.lower(), "--name", PIETER)
    assert code == 0
    assert json.loads(out) == world.ask("handler", "export", name=PIETER, school=SCHOOL_A)  # staff, as the CLI's user
    target = tmp_path / "pieter.json"
    code, out, err = cli("subject", "export", "--school", SCHOOL_A, "--email", PIETER_MAIL, "--out", str(target))
    assert code == 0 and out == "" and "2 item(s)" in err
    assert target.stat().st_mode & 0o777 == 0o600  # it holds the person's data
    assert [i["where"] for i in json.loads(target.read_text())["items"]] == [
        "incident.reporter_contact", f"{REPORTED}.reporter_contact[1]"]
    assert {e.actor for e in world.subject_events(world.own)} == {"hanna", "handler"}


def test_the_cli_erases_and_says_what_it_kept_and_why(world, cli):
    code, out, _ = cli("subject", "erase", "--school", SCHOOL_A, "--pupil-number", PUPIL)
    assert code == 0
    assert "erased: nothing" in out and f"kept: {world.own} incident.summary: the processor must document" in out
    code, out, _ = cli("subject", "erase", "--school", SCHOOL_A, "--email", PIETER_MAIL)
    assert code == 0 and f"erased: {world.own} incident.reporter_contact" in out.splitlines()
    assert queries.get(world.ctx, world.own).disclosure.reporter_name is None
    code, out, _ = cli("subject", "erase", "--school", SCHOOL_B, "--name", KLAAS, "--json")
    assert code == 0 and json.loads(out)["erased"] == [
        {"reference": world.b_only, "where": "incident.reporter_name"}]


@pytest.mark.parametrize(("argv", "field"), [
    (("--name", "P"), "name"), (("--email", "nope"), "email"), (("--pupil-number", " "), "pupil_number")])
def test_the_cli_refuses_bad_input_naming_the_field(world, cli, argv, field):
    for what in ("export", "erase"):
        code, out, err = cli("subject", what, "--school", SCHOOL_A, *argv)
        assert code == 2 and out == "" and f"{field}:" in err
    code, _, err = cli("subject", "export", "--school", SCHOOL_A, "--name", PIETER, "--email", PIETER_MAIL)
    assert code == 2 and "not allowed with argument" in err
    assert world.subject_events(world.own) == []


def test_the_timeline_puts_the_requests_into_words_without_the_person(world):
    world.ask("handler", "export", name=PIETER, school=SCHOOL_A)
    world.ask("handler", "erase", email=PIETER_MAIL, school=SCHOOL_A)
    exported, erased = world.subject_events(world.own)
    assert said(exported, Words("nl")) == ("inzageverzoek van 12AB, op naam: 4 vindplaats(en) meegegeven", [
        "gevonden in incident.reporter_name", "gevonden in incident.summary",
        f"gevonden in {REPORTED}.reporter_name[1]", f"gevonden in {REPORTED}.summary[1]"])
    assert said(erased, Words("en"))[0] == ("erasure request by 12AB, by email address: erased: who reported it, "
                                            "the reporter's email address or phone number")
    assert said(erased, Words("nl"))[0].endswith("gewist: wie het heeft gemeld, e-mailadres of telefoonnummer van de melder")
    assert "Pieter" not in entry_text(exported) + entry_text(erased)


def test_incidents_are_locked_in_one_order_before_the_schools_row(world, monkeypatch):
    """Ascending ids, as the dispatcher records outcomes (``outbox.record``), then the school: two
    commands that lock some of the same rows always wait for each other, never deadlock."""
    locked: list = []
    open_unit, update_school = subjects.Unit.open, schools.update_in
    monkeypatch.setattr(subjects.Unit, "open", lambda conn, ctx, key, *a, **k: (
        locked.append(("incident", key)), open_unit(conn, ctx, key, *a, **k))[1])
    monkeypatch.setattr(schools, "update_in", lambda conn, ctx, **k: (
        locked.append(("school", k["brin"])), update_school(conn, ctx, **k))[1])
    world.ask("school_a", "erase", email=JAN_MAIL)
    ids = [key for what, key in locked if what == "incident"]
    assert ids == sorted(ids) and len(ids) == 3 and locked[-1] == ("school", SCHOOL_A)
