"""The breachflow command: what a handler types, what it prints, and what bad input does."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from api_support import build
from cli_process import COMMAND, breachflow, environment
from conftest import CONFIRM, EVALUATE, add_school, evaluating, hours_ago, reported
from notify_support import drain, due_now, settings_env, smtp_context
from reading import whole_timeline

from breachflow.api import render, timeline_text
from breachflow.api.cli import main
from breachflow.notifications import outbox, reminders
from breachflow.workflow import accounts, diagram, queries, schools, service, sessions
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.timeline import EventKind

DISCOVERED = (datetime.now(ZoneInfo("Europe/Amsterdam")) - timedelta(hours=2)).replace(second=0, microsecond=0)


@pytest.fixture
def incident_ref(cli) -> str:
    """A report of two hours ago (Amsterdam time on the command line): its deadlines lie ahead."""
    assert cli("school", "add", "--brin", "12ab", "--name", "De Regenboog", "--contact", "d@regenboog.nl")[0] == 0
    code, out, _ = cli("incident", "report", "--source", "school", "--school", "12AB:30",
                       "--set", "summary=Grades visible to other parents",
                       "--set", f"discovered_at={DISCOVERED:%Y-%m-%dT%H:%M}", "--json")
    assert code == 0
    return json.loads(out)["reference"]


def assert_one_line_error(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("breachflow") and ": error: " in lines[0]
    for word in words:
        assert word in lines[0]


def test_report_shows_amsterdam_time_and_what_comes_next(cli, incident_ref):
    code, out, _ = cli("incident", "show", incident_ref)
    assert code == 0
    assert f"discovered_at: {DISCOVERED:%Y-%m-%d %H:%M %Z}" in out
    assert "begin_triage: ready → triage" in out


def test_fire_with_fields_and_json_output(cli, incident_ref):
    assert cli("incident", "fire", incident_ref, "begin_triage")[0] == 0
    code, out, _ = cli("incident", "fire", incident_ref, "confirm", "--json",
                       "--set", "nature_how=Missing permission check",
                       "--set", "nature_actions=read,copied", "--set", "affected_systems=parent_portal",
                       "--set", "cause_category=unknown")
    data = json.loads(out)
    assert code == 0
    assert (data["state"], data["disclosure"]["nature_actions"]) == ("containment", ["copied", "read"])
    assert data["impact"] == {"confidentiality": True, "integrity": False, "availability": False}
    assert data["disclosure"]["discovered_at"] == f"{DISCOVERED.astimezone(UTC):%Y-%m-%dT%H:%M:00Z}"


def test_a_command_that_queues_mail_says_where_it_will_go(cli, incident_ref):
    cli("incident", "fire", incident_ref, "begin_triage")
    code, _, err = cli("incident", "fire", incident_ref, "confirm",
                       "--set", "nature_how=Missing permission check", "--set", "nature_actions=read",
                       "--set", "affected_systems=parent_portal", "--set", "cause_category=unknown")
    assert code == 0
    assert "1 message(s) wait in the outbox" in err and "maildir" in err


def test_a_guard_failure_names_every_missing_field_and_exits_3(cli, incident_ref):
    cli("incident", "fire", incident_ref, "begin_triage")
    code, _, err = cli("incident", "fire", incident_ref, "confirm")
    assert code == 3
    assert_one_line_error(err, "nature_how", "nature_actions", "affected_systems", "cause_category")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--set", "colour=red"], ["colour", "unknown field"]),
        (["--set", "group_size_min=ten"], ["group_size_min"]),
        (["--set", "affected_systems=mainframe"], ["affected_systems", "mainframe"]),
        (["--set", "summary"], ["--set", "field=value"]),
        (["--school", "99ZZ"], ["schools", "99ZZ"]),
        (["--school", "12AB:many"], ["--school", "whole number"]),
        (["--set", "discovered_at="], ["discovered_at", "give a time or leave the field out"]),
        (["--set", "discovered_at=9999-01-01T00:00"], ["discovered_at", "future"]),
        (["--set", "fix_tested=maybe"], ["fix_tested", "boolean"]),
    ],
    ids=["unknown-field", "not-a-number", "unknown-system", "no-equals", "unknown-school", "bad-count", "blank-time",
         "future-time", "not-a-boolean"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, incident_ref, ctx, argv, words):
    before = queries.get(ctx, incident_ref)
    code, out, err = cli("incident", "update", incident_ref, *argv)
    assert (code, out) == (2, "")
    assert_one_line_error(err, *words)
    after = queries.get(ctx, incident_ref)
    assert (after.version, after.disclosure, after.schools) == (before.version, before.disclosure, before.schools)
    assert len(whole_timeline(ctx, incident_ref)) == 1


@pytest.mark.parametrize(("word", "value"), [("yes", True), ("true", True), ("no", False), ("False", False)])
def test_booleans_are_words_on_the_command_line(cli, incident_ref, ctx, word, value):
    code, _, err = cli("incident", "update", incident_ref, "--set", f"fix_tested={word}")
    assert code == 0, err
    assert queries.get(ctx, incident_ref).disclosure.fix_tested is value


def test_a_blank_value_clears_a_field(cli, incident_ref, ctx):
    assert cli("incident", "update", incident_ref, "--set", "cause_category=unknown")[0] == 0
    code, _, err = cli("incident", "update", incident_ref, "--set", "cause_category=", "--set", "summary=")
    assert code == 0, err
    disclosure = queries.get(ctx, incident_ref).disclosure
    assert (disclosure.cause_category, disclosure.summary) == (None, None)


def test_usage_errors_are_one_line_too(cli):
    code, _, err = cli("incident", "report", "--school", "12AB")
    assert code == 2
    assert_one_line_error(err, "--source")


def test_unknown_incident_and_trigger(cli, incident_ref):
    code, _, err = cli("incident", "show", "DL-1999-00001")
    assert code == 2 and "DL-1999-00001 does not exist" in err
    code, _, err = cli("incident", "fire", incident_ref, "explode")
    assert code == 2
    assert_one_line_error(err, "explode", "begin_triage")


def test_timeline_deadlines_and_audit(cli, incident_ref):
    cli("incident", "fire", incident_ref, "begin_triage")
    cli("incident", "note", incident_ref, "Called the director")
    code, out, _ = cli("incident", "timeline", incident_ref)
    assert code == 0
    assert "begin_triage: reported → triage" in out and 'note: "Called the director"' in out
    code, out, _ = cli("deadlines", "--json")
    assert {d["kind"] for d in json.loads(out)["items"]} == {"school_notice", "ap_notice"}
    code, out, _ = cli("audit", "verify")
    assert (code, out.strip()) == (0, "all timelines intact and matching the records (1 incidents, 3 events checked)")


def test_the_list_tells_each_dismissal_and_reopening_with_its_reason(cli, incident_ref):
    cli("incident", "fire", incident_ref, "begin_triage")
    cli("incident", "fire", incident_ref, "dismiss", "--set", "dismissal_reason=A test account")
    cli("incident", "reopen", incident_ref, "--reason", "Real grades after all")
    code, out, _ = cli("incident", "list")
    assert code == 0
    head, dismissed, reopened = out.strip().splitlines()
    assert head.startswith(incident_ref) and "triage" in head
    assert dismissed.strip().startswith("dismissed ") and dismissed.endswith("(A test account)")
    assert reopened.strip().startswith("reopened ") and reopened.endswith("from dismissed (Real grades after all)")
    (listed,) = json.loads(cli("incident", "list", "--json")[1])["items"]
    assert (listed["reopen_count"], listed["dismissal_reason"]) == (1, "A test account")
    assert [r["reason"] for r in listed["reopenings"]] == ["Real grades after all"]


def test_the_list_tells_why_an_ap_notification_was_late(cli, ctx):
    add_school(ctx)
    ref = reported(ctx, discovered_hours_ago=80)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-7",
                                   delay_reason="Waited for the hosting party's logs")
    code, out, _ = cli("incident", "list")
    assert code == 0
    (late,) = out.strip().splitlines()[1:]
    assert late.strip().startswith("AP preliminary AP-7 late, ")
    assert late.endswith("(Waited for the hosting party's logs)")


def test_contact_and_ap_notification(cli, incident_ref):
    cli("incident", "fire", incident_ref, "begin_triage")
    code, out, _ = cli("incident", "contact", incident_ref, "--school", "12ab", "--channel", "phone",
                       "--summary", "Director informed", "--json")
    assert code == 0 and json.loads(out)["schools"][0]["informed_via"] == "phone"
    (met,) = [line for line in cli("incident", "show", incident_ref)[1].splitlines() if "school_notice" in line]
    assert re.search(r"\[met \d{4}-\d\d-\d\d \d\d:\d\d \w+\]$", met), met  # said once, with its time
    code, _, err = cli("incident", "ap-notify", incident_ref, "--kind", "preliminary", "--ap-reference", "AP-1")
    assert code == 3 and "confirmed breaches" in err


def test_diagram_check_fails_on_a_stale_file_and_write_fixes_it(cli, tmp_path):
    target = tmp_path / "diagrams"
    code, _, err = cli("diagram", "--check", "--dir", str(target))
    assert code == 1 and "run 'breachflow diagram'" in err
    assert cli("diagram", "--dir", str(target))[0] == 0
    assert cli("diagram", "--check", "--dir", str(target))[0] == 0


def test_the_committed_diagram_is_current():
    committed = Path(__file__).resolve().parent.parent / "diagrams"
    assert diagram.is_current(committed), "diagrams/ is stale: run 'breachflow diagram'"


def test_register_export_writes_what_the_api_serves_as_csv_or_json(cli, ctx, settings, tmp_path):
    api = build(ctx, settings)
    first = api.report(summary="=HYPERLINK(\"http://evil\")")
    api.report()
    api.call("handler", "POST", f"/incidents/{first}/triggers/begin_triage", json={})
    csv_served = api.call("handler", "GET", "/register/export?format=csv").text
    json_served = api.call("handler", "GET", "/register/export").json()

    code, out, _ = cli("register", "export")
    assert (code, out) == (0, csv_served)
    assert "'=HYPERLINK" in out
    code, out, _ = cli("register", "export", "--json")
    assert (code, json.loads(out)) == (0, json_served)
    assert [e["reference"] for e in json_served["items"]] == [f"DL-{first[3:7]}-00002", first]

    target = tmp_path / "datalekkenregister.csv"
    code, out, _ = cli("register", "export", "--out", str(target))
    assert code == 0 and str(target) in out and f"{len(csv_served.encode())} bytes" in out
    assert target.read_bytes().decode() == csv_served
    assert target.stat().st_mode & 0o777 == 0o600  # the register holds personal data
    code, out, _ = cli("register", "export", "--format", "json", "--out", str(target))
    assert json.loads(target.read_text()) == json_served


@pytest.mark.parametrize(
    ("argv", "exit_code", "code", "fields"),
    [
        (["incident", "fire", "{ref}", "contained"], 3, "trigger_not_allowed", []),
        (["incident", "update", "{ref}", "--set", "group_size_min=ten", "--set", "colour=red"], 2, "invalid_input",
         ["group_size_min", "colour"]),
        (["incident", "show", "DL-1999-00001"], 2, "not_found", []),
        (["incident", "report", "--school", "12AB"], 2, "invalid_input", []),  # the parser's own error
        (["incident", "ap-notify", "{ref}", "--kind", "preliminary", "--ap-reference", "AP-1", "--at", "tomorrow"],
         2, "invalid_input", []),
    ],
    ids=["state", "fields", "unknown-incident", "usage", "bad-time"],
)
def test_json_errors_have_the_apis_shape_and_the_same_exit_code(cli, incident_ref, argv, exit_code, code, fields):
    argv = [a.replace("{ref}", incident_ref) for a in argv]
    text_exit, _, text_err = cli(*argv)
    assert text_exit == exit_code
    assert_one_line_error(text_err)

    json_exit, out, err = cli(*argv, "--json")
    assert (json_exit, out) == (exit_code, "")
    (line,) = err.splitlines()
    error = json.loads(line)["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] == code and error["message"]
    assert [f["field"] for f in error["fields"]] == fields
    assert all(set(f) == {"field", "problem"} and f["problem"] for f in error["fields"])


def test_a_guard_failure_as_json_names_every_missing_field(cli, incident_ref):
    cli("incident", "fire", incident_ref, "begin_triage")
    code, _, err = cli("incident", "fire", incident_ref, "confirm", "--json")
    error = json.loads(err)["error"]
    assert (code, error["code"]) == (3, "guard_failed")
    assert {f["field"] for f in error["fields"]} >= {"nature_how", "nature_actions", "affected_systems", "cause_category"}


@pytest.mark.slow
def test_configuration_and_installation_errors_as_json(tmp_path):
    code, out, err = run_cli(tmp_path, "deadlines", "--json", BREACHFLOW_SMTP_PORT="none")
    assert (code, out) == (2, "")
    assert json.loads(err)["error"]["fields"][0]["field"] == "BREACHFLOW_SMTP_PORT"
    code, out, err = run_cli(tmp_path, "deadlines", "--json")
    assert (code, out, json.loads(err)["error"]["code"]) == (4, "", "not_initialised")


def run_cli(directory: Path, *argv: str, **variables: str) -> tuple[int, str, str]:
    done = breachflow(directory, *argv, **variables)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(("argv", "exit_code"), [
    (["incident", "list"], 128 + signal.SIGPIPE), (["register", "export"], 128 + signal.SIGPIPE),
    (["incident", "fire", "--help"], 0),  # argparse stops writing help by itself
], ids=["list", "export", "help"])
@pytest.mark.slow
def test_output_into_a_closed_pipe_ends_quietly(ctx, settings, tmp_path, argv, exit_code):
    """``breachflow … | head``: the reader is gone before the command writes; no traceback follows."""
    add_school(ctx)
    for _ in range(3):
        reported(ctx)
    reader, writer = os.pipe()
    os.close(reader)  # as head does once it has its lines
    try:
        done = subprocess.run([*COMMAND, *argv], cwd=tmp_path, env=environment(**settings_env(settings)),
                              stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (exit_code, "")


def field_blocks(help_text: str) -> dict[str, str]:
    """The field table at the end of a --help: each field's name and the lines that describe it."""
    table = help_text.split("fields for --set FIELD=VALUE", 1)[1].splitlines()[1:]
    blocks: dict[str, str] = {}
    for line in table:
        if line.startswith("  ") and not line.startswith("   "):
            name, _, rest = line.strip().partition(" ")
            blocks[name] = rest.strip()
        else:
            blocks[name] += " " + line.strip()
    return blocks


@pytest.mark.parametrize("command", [["incident", "report"], ["incident", "update"], ["incident", "fire"]])
def test_help_shows_every_field_with_its_shape_allowed_values_and_meaning(monkeypatch, capsys, command):
    monkeypatch.setenv("BREACHFLOW_AFFECTED_SYSTEMS", "parent_portal,erp")
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    blocks = field_blocks(capsys.readouterr().out)
    assert list(blocks) == list(Disclosure.model_fields)
    for name, spec in Disclosure.model_json_schema()["properties"].items():
        block = blocks[name]
        assert Disclosure.model_fields[name].description in block
        for value in _enum_values(spec):
            assert value in block, (name, value)
        kinds = {s.get("type") for s in spec["anyOf"]}
        if "boolean" in kinds:
            assert "yes or no" in block
        if "integer" in kinds:
            assert "whole number from 0 to 100000000" in block
        if any(s.get("format") == "date-time" for s in spec["anyOf"]):
            assert "2026-11-28T14:30" in block and "Amsterdam" in block
        if any("maxLength" in s for s in spec["anyOf"]):
            assert f"at most {next(s['maxLength'] for s in spec['anyOf'] if 'maxLength' in s)} characters" in block
    assert "any of parent_portal, erp" in blocks["affected_systems"]  # what this installation accepts
    assert blocks["affected_groups"].startswith('a JSON list (at most 50) of {"group": …')


def _enum_values(spec: dict) -> list[str]:
    """Every enum value ``spec`` refers to, at any depth (the model's own schema)."""
    defs = Disclosure.model_json_schema()["$defs"]
    found, todo = [], [spec]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "$ref" in node:
                todo.append(defs[node["$ref"].rsplit("/", 1)[1]])
            found += node.get("enum", [])
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    return found


REPR = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|\d{4}-\d\d-\d\dT\d|[+-]\d\d:\d\d\b|\d\dZ\b")
SHOWN_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d( \w+)?")


def test_the_timeline_is_told_in_words_and_amsterdam_time(cli, ctx, smtp):
    """Every kind of event, written to the timeline by the real commands, the dispatcher and the
    deadline scanner, reads as words: no Python repr, no UTC ISO time."""
    mail = smtp_context(ctx, smtp.port)
    for brin, name in [("12AB", "De Regenboog"), ("34CD", "Het Anker"), ("56EF", "De Linde")]:
        add_school(ctx, brin, name)
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@basisonline.example")
    ref = reported(ctx, discovered_hours_ago=80)  # the AP deadline has passed: reminder and late notification
    service.update(mail, reference=ref, actor="hanna", schools={"34CD": None, "56EF": 3, "12AB": 30},
                   fields={"fix_tested": True, "affected_groups": EVALUATE["affected_groups"]})
    service.update(mail, reference=ref, actor="hanna", remove_schools=["56EF"])
    service.fire(mail, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(mail, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    smtp.handler.data_replies.append("550 mailbox unavailable")  # the first notice is refused for good
    drain(mail)
    outbox.requeue(mail, ids=None, actor="hanna", now=datetime.now(UTC))
    smtp.handler.data_replies.append("451 try again later")
    drain(mail)
    due_now(mail)
    drain(mail)
    service.add_note(mail, reference=ref, actor="hanna", text="Called the director")
    service.log_contact(mail, reference=ref, actor="hanna", brin="12AB", channel="phone",
                        summary="Director informed", told_must_notify_ap=True)
    service.acknowledge(mail, reference=ref, actor="school", brin="12AB", comment="Received, thank you")
    service.send_update(mail, reference=ref, actor="hanna", message="The portal is closed")
    earlier = hours_ago(81)
    service.update(mail, reference=ref, actor="hanna", fields={"discovered_at": earlier}, reason="The log starts earlier")
    assert reminders.scan(mail, datetime.now(UTC)) == 1
    service.record_ap_notification(mail, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-7",
                                   delay_reason="Waited for the hosting party's logs")

    code, out, _ = cli("incident", "timeline", ref)
    assert code == 0
    assert not REPR.search(out), REPR.search(out)
    assert SHOWN_TIME.findall(out) and set(SHOWN_TIME.findall(out)) <= {" CET", " CEST"}
    for line in [
        f"reported as {ref} (source: monitoring)", "school 12AB added, 28 affected",
        "school 34CD added, number affected unknown", "school 12AB: 28 affected → 30 affected", "school 56EF removed",
        "the fix was tested thoroughly: — → yes", "groups affected and consequences: — → pupils (limited): "
        + EVALUATE["affected_groups"][0]["consequences"],
        "begin_triage: reported → triage", "confirm: triage → containment",
        f'how it happened: — → "{CONFIRM["nature_how"]}"', "category of the cause: — → unknown",
        "notices queued (2)", "first notice to 12AB", "notices given up (dead letters) (1)",
        "1 dead letter(s) queued again", "notices failed, to be tried again (1)", "451 try again later; next try ",
        "notices sent (", 'note: "Called the director"', 'contact with 12AB by phone at ',
        "told that the school must notify the AP itself", '12AB acknowledged the notice: "Received, thank you"',
        'update notice requested: "The portal is closed"', "updated (reason: The log starts earlier)",
        f"date and time the breach was discovered: {render.when(hours_ago(80))[:10]}",
        f"→ {render.when(earlier)}", "reminder, overdue: deadline ap_notice due ", "to 1 handler(s) and manager(s)",
        "AP notification (preliminary) AP-7 at ", "covering 12AB, 34CD",
        "late, because: \"Waited for the hosting party's logs\"",
    ]:
        assert line in out, line


def test_every_kind_of_event_has_its_words():
    assert set(timeline_text.SAYS) == set(EventKind)


def test_a_schools_master_data_is_set_and_changed_on_the_command_line(cli, ctx):
    code, _, err = cli("school", "add", "--brin", "56EF", "--name", "De Vlinder", "--contact", "directie@56ef.example.nl",
                       "--kvk", "4123", "--sector", "primary")
    assert code == 2 and "kvk_number" in err and "eight digits" in err
    code, _, err = cli("school", "add", "--brin", "56EF", "--name", "De Vlinder", "--contact", "directie@56ef.example.nl",
                       "--kvk", "4123 4567", "--sector", "primary", "--contact-name", "J. de Vries")
    assert code == 0, err
    code, out, err = cli("school", "update", "56EF", "--sector", "special", "--dpo-registration", "fg001234",
                         "--contact-name", "A. Jansen", "--contact-email", "fg@56ef.example.nl", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["kvk_number"], shown["sector"], shown["dpo_registration"]) == ("41234567", "special", "FG001234")
    assert shown["contact_person"] == {"name": "A. Jansen", "phone": None, "email": "fg@56ef.example.nl"}
    assert cli("school", "update", "56EF", "--clear", "contact_person")[0] == 0
    assert schools.get(ctx, "56EF").contact_person is None and schools.get(ctx, "56EF").kvk_number == "41234567"
    assert cli("school", "update", "99ZZ", "--kvk", "41234567")[0] == 2


def test_user_add_sets_a_password_from_stdin_and_resets_it_for_an_existing_user(cli, ctx, monkeypatch):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("first long password\n"))
    assert cli("user", "add", "ria", "--role", "manager", "--password-stdin")[0] == 0
    assert sessions.sign_in(ctx, username="ria", password="first long password") is not None
    monkeypatch.setattr("sys.stdin", io.StringIO("second long password\n"))
    code, out, _ = cli("user", "add", "ria", "--role", "manager", "--password-stdin")
    assert code == 0 and "reset" in out
    assert sessions.sign_in(ctx, username="ria", password="first long password") is None
    assert sessions.sign_in(ctx, username="ria", password="second long password") is not None
    monkeypatch.setattr("sys.stdin", io.StringIO("third long password\n"))
    code, _, err = cli("user", "add", "ria", "--role", "handler", "--password-stdin")
    assert code != 0 and "role" in err  # a reset is not a way to change a role
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = cli("user", "add", "kees", "--role", "handler", "--password-stdin")
    assert code != 0 and "password" in err
    assert accounts.find_user(ctx, "kees") is None  # refused before the user was made



def test_follow_up_actions_from_the_command_line(cli, ctx):
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler")
    ref = evaluating(ctx)
    service.update(ctx, reference=ref, actor="hanna", fields=EVALUATE)
    due = (datetime.now(UTC) + timedelta(days=20)).astimezone(ZoneInfo("Europe/Amsterdam")).date()
    lesson = json.dumps({"description": "Extend the release checklist", "owner": "hanna", "due": due.isoformat(),
                         "blocking": True})
    code, _, err = cli("incident", "fire", ref, "evaluated", "--action", "{not json")
    assert code == 2 and "actions.0" in err
    code, out, _ = cli("incident", "fire", ref, "evaluated", "--action", lesson)
    assert code == 0, out
    assert f"action 1 (blocking): 'Extend the release checklist', owner hanna, due {due:%Y-%m-%d} 23:59" in out
    assert cli("incident", "action-add", ref, "--description", "Train the team", "--owner", "nobody",
               "--due", due.isoformat())[0] == 2
    code, out, _ = cli("incident", "action-add", ref, "--description", "Train the team", "--owner", "hanna",
                       "--due", due.isoformat(), "--json")
    assert code == 0 and [a["number"] for a in json.loads(out)["actions"]] == [1, 2]
    code, out, _ = cli("incident", "action-settle", ref, "1", "--status", "done", "--note", "Item 14")
    assert code == 0 and "[done " in out
    assert cli("incident", "action-settle", ref, "7", "--status", "done")[0] != 0
    _, out, _ = cli("deadlines")
    assert "follow_up 2 (hanna)" in out

