"""Bad input gets a clear 422 naming the field, never a 500 and never a partial write: every text,
list and count is bounded, no text holds NUL, booleans are booleans, and times are plausible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import SCHOOL_A, assert_error
from conftest import hours_ago
from freezegun import freeze_time
from pydantic import ValidationError

from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.validation import LONG_TEXT, MAX_COUNT, MAX_ITEMS, SHORT_TEXT

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def ref(api) -> str:
    return api.report(discovered_at=hours_ago(5).isoformat())


def unchanged(api, ref: str, before: dict, timeline: list) -> None:
    assert api.call("handler", "GET", f"/incidents/{ref}").json() == before
    assert api.call("handler", "GET", f"/incidents/{ref}/timeline").json() == timeline


def patch_is_refused(api, ref: str, fields: dict, *named: str) -> dict:
    """PATCH ``fields``: a 422 naming ``named``, and the incident and its timeline as they were."""
    before = api.call("handler", "GET", f"/incidents/{ref}").json()
    timeline = api.call("handler", "GET", f"/incidents/{ref}/timeline").json()
    response = api.call("handler", "PATCH", f"/incidents/{ref}", json={"version": before["version"], "fields": fields})
    error = assert_error(response, 422, "invalid_input", *named)
    unchanged(api, ref, before, timeline)
    return error


# --- the schema says it: every string, list, map and number of a request is bounded ------------


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def unbounded(spec: dict, schema: dict, where: str, seen: set[str]) -> list[str]:
    """Every place under ``schema`` where a string, array, map or integer has no upper bound."""
    if "$ref" in schema:
        name = schema["$ref"]
        if name in seen:
            return []
        seen = seen | {name}
    schema = _resolve(spec, schema)
    found = []
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found += unbounded(spec, part, where, seen)
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema and schema.get("format") not in ("date", "date-time"):
        found += [] if "maxLength" in schema else [where]
    if kind == "integer" and "maximum" not in schema:
        found.append(where)
    if kind == "array":
        found += [] if "maxItems" in schema else [where]
        found += unbounded(spec, schema.get("items", {}), where + "[]", seen)
    if kind == "object":
        for name, prop in schema.get("properties", {}).items():
            found += unbounded(spec, prop, f"{where}.{name}", seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            found += [] if "maxProperties" in schema else [where + "{}"]
            found += unbounded(spec, schema.get("propertyNames", {"type": "string"}), where + "{key}", seen)
            found += unbounded(spec, extra, where + "{}", seen)
    return found


def test_every_value_of_every_request_is_bounded_in_the_openapi_document(api):
    spec = api.client.get("/openapi.json").json()
    problems, bodies = [], 0
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                problems += unbounded(spec, parameter["schema"], f"{label} {parameter['name']}", set())
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                bodies += 1
                problems += unbounded(spec, body["schema"], f"{label} body", set())
    assert bodies >= 9
    assert problems == []


def test_the_walk_finds_an_unbounded_field():
    spec = {"components": {"schemas": {"In": {"type": "object", "properties": {
        "ok": {"type": "string", "maxLength": 5}, "free": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "map": {"type": "object", "additionalProperties": {"type": "integer", "maximum": 3}, "maxProperties": 2},
    }}}}}
    assert unbounded(spec, {"$ref": "#/components/schemas/In"}, "body", set()) == ["body.free", "body.map{key}"]


# --- lengths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"summary": "x" * (LONG_TEXT + 1)}, "fields.summary"),
    ({"reporter_contact": "x" * (SHORT_TEXT + 1)}, "fields.reporter_contact"),
    ({"affected_systems": ["parent_portal"] * (MAX_ITEMS + 1)}, "fields.affected_systems"),
    ({"affected_groups": [{"group": "pupils", "severity": "limited", "consequences": "x" * (LONG_TEXT + 1)}]},
     "fields.affected_groups.0.consequences"),
    ({"affected_groups": [{"group": "pupils", "severity": "limited", "consequences": "x"}] * (MAX_ITEMS + 1)},
     "fields.affected_groups"),
])
def test_long_texts_and_lists_are_422(api, ref, fields, field):
    patch_is_refused(api, ref, fields, field)


def test_a_length_is_that_of_the_text_as_sent_before_it_is_stripped(api, ref):
    patch_is_refused(api, ref, {"reporter_name": "x" * SHORT_TEXT + " "}, "fields.reporter_name")
    patch_is_refused(api, ref, {"summary": " " * (LONG_TEXT + 1)}, "fields.summary")  # not a clear
    version = api.call("handler", "GET", f"/incidents/{ref}").json()["version"]
    saved = api.call("handler", "PATCH", f"/incidents/{ref}",
                     json={"version": version, "fields": {"reporter_name": "  Pieter de Vries "}})
    assert saved.json()["disclosure"]["reporter_name"] == "Pieter de Vries"


def test_school_maps_and_lists_are_bounded(api, ref):
    many = {f"{n:02d}AB": 1 for n in range(MAX_ITEMS + 1)}
    assert_error(api.call("handler", "POST", "/incidents", json={"schools": many}), 422, "invalid_input", "schools")
    assert_error(api.call("handler", "POST", "/incidents", json={"schools": {"12AB0000": 1}}), 422,
                 "invalid_input", "schools.12AB0000.[key]")
    assert_error(api.call("handler", "PATCH", f"/incidents/{ref}", json={"version": 1, "remove_schools": ["12AB"] * 51}),
                 422, "invalid_input", "remove_schools")
    school = {"brin": "56EF", "name": "De Vlinder", "contacts": [f"a{n}@vlinder.nl" for n in range(MAX_ITEMS + 1)]}
    assert_error(api.call("admin", "POST", "/schools", json=school), 422, "invalid_input", "contacts")
    school["contacts"] = ["a" * 250 + "@vlinder.nl"]
    assert_error(api.call("admin", "POST", "/schools", json=school), 422, "invalid_input", "contacts.0")


@pytest.mark.parametrize("address", ["jürgen@vlinder.nl", "info@vlïnder.nl", "Info <info@vlinder.nl>",
                                     '"a b"@vlinder.nl', "info@vlinder.nl\r\nBcc: x@y.nl", "info@vlinder"])
def test_a_contact_address_is_one_bare_ascii_address_a_mail_header_can_carry(api, address):
    """A school's contacts go into the To header as they are: no name, no second address, ASCII only."""
    school = {"brin": "56EF", "name": "De Vlinder", "contacts": [address]}
    response = api.call("admin", "POST", "/schools", json=school)
    assert response.status_code == 422 and "contacts" in response.text, response.text


# --- counts, booleans, NUL -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["group_size_min", "group_size_max", "records_count", "subjects_informed_count"])
@pytest.mark.parametrize("value", [MAX_COUNT + 1, -1, True])
def test_counts_are_whole_numbers_within_bounds(api, ref, field, value):
    patch_is_refused(api, ref, {field: value}, f"fields.{field}")


def test_school_counts_are_bounded(api):
    for count in (MAX_COUNT + 1, -1, True):
        response = api.call("handler", "POST", "/incidents", json={"schools": {SCHOOL_A: count}})
        assert_error(response, 422, "invalid_input", f"schools.{SCHOOL_A}")
    assert api.call("handler", "GET", "/incidents").json()["items"] == []
    assert api.call("handler", "POST", "/incidents", json={"schools": {SCHOOL_A: MAX_COUNT}}).status_code == 201


BOOLEANS = [name for name, spec in Disclosure.model_json_schema()["properties"].items()
            if {"type": "boolean"} in spec.get("anyOf", [])]


@pytest.mark.parametrize("value", [1, 0, "true"])
def test_booleans_are_true_or_false_not_numbers(api, ref, value):
    assert len(BOOLEANS) == 7
    for field in BOOLEANS:
        patch_is_refused(api, ref, {field: value}, f"fields.{field}")
    contact = {"school": SCHOOL_A, "channel": "phone", "summary": "Told", "told_must_notify_ap": value}
    assert_error(api.call("handler", "POST", f"/incidents/{ref}/contacts", json=contact), 422, "invalid_input",
                 "told_must_notify_ap")


def test_nul_characters_are_refused_everywhere(api, ref):
    error = patch_is_refused(api, ref, {"summary": "Lists\x00visible"}, "fields.summary")
    assert "NUL" in error["fields"][0]["problem"]
    patch_is_refused(api, ref, {"affected_systems": ["parent\x00portal"]}, "fields.affected_systems.0")
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    bad = [
        ("POST", f"/incidents/{ref}/notes", {"text": "a\x00b"}, "text"),
        ("POST", f"/incidents/{ref}/contacts", {"school": SCHOOL_A, "channel": "phone", "summary": "\x00"}, "summary"),
        ("POST", f"/incidents/{ref}/ap-notifications", {"kind": "preliminary", "ap_reference": "2026\x00"},
         "ap_reference"),
        ("POST", "/incidents", {"schools": {"12A\x00": 1}}, "schools.12A\x00.[key]"),
    ]
    for method, path, body, field in bad:
        assert_error(api.call("handler", method, path, json=body), 422, "invalid_input", field)
    school = {"brin": "56EF", "name": "De\x00Vlinder", "contacts": ["info@vlinder.nl"]}
    assert_error(api.call("admin", "POST", "/schools", json=school), 422, "invalid_input", "name")
    assert_error(api.call("handler", "GET", "/incidents/DL-2026%00"), 422, "invalid_input", "reference")
    error = assert_error(api.call("handler", "GET", "/incidents?school=12A%00"), 422, "invalid_input", "school")
    assert "NUL" in error["fields"][0]["problem"]  # refused before any lookup
    assert len(api.call("handler", "GET", f"/incidents/{ref}/timeline").json()["items"]) == 2


# --- times ------------------------------------------------------------------------------------


def test_a_year_9999_discovery_is_422_and_nothing_is_saved(api, ref):
    patch_is_refused(api, ref, {"discovered_at": "9999-12-31T23:59:59-01:00"}, "fields.discovered_at")
    for path in ("/incidents", "/deadlines", "/register"):
        assert api.call("manager", "GET", path).status_code == 200
    response = api.call("handler", "POST", "/incidents",
                        json={"schools": {SCHOOL_A: 1}, "fields": {"discovered_at": "9999-01-01T00:00:00Z"}})
    assert_error(response, 422, "invalid_input", "fields.discovered_at")
    assert len(api.call("handler", "GET", "/incidents").json()["items"]) == 1


@pytest.mark.parametrize("field", ["discovered_at", "breach_started_at", "breach_ended_at"])
def test_times_before_2000_are_422(api, ref, field):
    patch_is_refused(api, ref, {field: "1999-12-31T23:59:59Z"}, f"fields.{field}")


@pytest.mark.parametrize("field", ["discovered_at", "breach_started_at", "breach_ended_at"])
def test_a_blank_time_is_422_not_a_clear(api, ref, field):
    error = patch_is_refused(api, ref, {field: ""}, f"fields.{field}")
    assert error["fields"][0]["problem"] == "give a time or leave the field out"


@pytest.mark.parametrize("field", ["nature_actions", "cause_category", "group_size_min", "fix_tested"])
def test_a_blank_for_anything_but_text_is_422(api, ref, field):
    patch_is_refused(api, ref, {field: ""}, f"fields.{field}")


def test_a_blank_text_still_clears_and_null_clears_a_time(api, ref):
    version = api.call("handler", "GET", f"/incidents/{ref}").json()["version"]
    cleared = api.call("handler", "PATCH", f"/incidents/{ref}",
                       json={"version": version, "fields": {"summary": "  ", "discovered_at": None}}).json()
    assert cleared["disclosure"]["summary"] is None and cleared["disclosure"]["discovered_at"] is None


def test_times_in_the_future_are_refused_beyond_five_minutes_of_clock_skew():
    with freeze_time(NOW):
        assert Disclosure(discovered_at=NOW + timedelta(minutes=5)).discovered_at == NOW + timedelta(minutes=5)
        with pytest.raises(ValidationError, match="discovered_at\n  Value error, must not be in the future"):
            Disclosure(discovered_at=NOW + timedelta(minutes=5, seconds=1))
        with pytest.raises(ValidationError, match="breach_ended_at"):
            Disclosure(breach_ended_at=(NOW + timedelta(hours=1)).isoformat())


def test_contact_and_ap_times_are_plausible(api, ref):
    api.call("handler", "POST", f"/incidents/{ref}/triggers/begin_triage")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    contact = {"school": SCHOOL_A, "channel": "phone", "summary": "Told"}
    for at in (tomorrow, "1999-01-01T00:00:00Z", "", "9999-12-31T23:59:59-01:00"):
        assert_error(api.call("handler", "POST", f"/incidents/{ref}/contacts", json=contact | {"at": at}),
                     422, "invalid_input", "at")
        ap = {"kind": "preliminary", "ap_reference": "2026-1", "notified_at": at}
        assert_error(api.call("handler", "POST", f"/incidents/{ref}/ap-notifications", json=ap),
                     422, "invalid_input", "notified_at")
    assert len(api.call("handler", "GET", f"/incidents/{ref}/timeline").json()["items"]) == 2


def test_times_are_in_order_on_the_whole_record(api, ref):
    discovered = datetime.fromisoformat(api.call("handler", "GET", f"/incidents/{ref}").json()
                                        ["disclosure"]["discovered_at"])
    later = (discovered + timedelta(hours=1)).isoformat()
    earlier = (discovered - timedelta(hours=1)).isoformat()
    # only the start is sent: the service checks it against the stored discovery (and names the
    # field of the merged record)
    error = patch_is_refused(api, ref, {"breach_started_at": later}, "breach_started_at")
    assert "discovered_at" in error["fields"][0]["problem"]
    version = api.call("handler", "GET", f"/incidents/{ref}").json()["version"]
    started = api.call("handler", "PATCH", f"/incidents/{ref}",
                       json={"version": version, "fields": {"breach_started_at": earlier}})
    assert started.status_code == 200
    # and a new discovery time against the stored start
    patch_is_refused(api, ref, {"discovered_at": (discovered - timedelta(hours=2)).isoformat()},
                     "breach_started_at")
    patch_is_refused(api, ref, {"breach_ended_at": (discovered - timedelta(hours=3)).isoformat()},
                     "breach_ended_at")
    both = {"breach_started_at": earlier, "breach_ended_at": (discovered - timedelta(hours=3)).isoformat()}
    patch_is_refused(api, ref, both, "fields.breach_ended_at")  # within one request the schema sees it


# --- what the schema does not name -----------------------------------------------------------


def test_an_unknown_query_parameter_is_422_not_ignored(api):
    assert_error(api.call("handler", "GET", "/incidents?stat=triage"), 422, "invalid_input", "stat")
    assert_error(api.client.get("/api/v1/healthz?verbose=1"), 422, "invalid_input", "verbose")
    assert api.call("handler", "GET", "/incidents?state=triage&limit=5").status_code == 200
    assert api.call("manager", "GET", "/register/export?format=csv").status_code == 200
    assert_error(api.call("manager", "GET", "/register?format=csv"), 422, "invalid_input", "format")


def test_a_body_that_is_not_utf8_is_422_like_any_bad_body(api):
    response = api.client.post("/api/v1/incidents", content=b"\xff\xfe{",
                               headers=api.headers("handler") | {"Content-Type": "application/json"})
    assert_error(response, 422, "invalid_input", "body")
