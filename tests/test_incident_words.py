"""The lifecycle picture and the words the pages and the command line share."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from breachflow.api.render import CLI, Words
from breachflow.api.timeline_text import entry_text, said
from breachflow.api.web.render import amsterdam
from breachflow.workflow import diagram
from breachflow.workflow.disclosure import AffectedGroup
from breachflow.workflow.lifecycle import STEPS, State
from breachflow.workflow.queries import Entry

SVG = "{http://www.w3.org/2000/svg}"
AT = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)  # a summer time: Amsterdam is two hours ahead


def test_the_picture_draws_every_state_and_step_and_marks_only_the_current_one():
    drawn = ET.fromstring(diagram.svg(State.remediation))  # noqa: S314 our own picture, not untrusted input
    groups = list(drawn.iter(f"{SVG}g"))
    assert {g.get("data-state") for g in groups if g.get("data-state")} == {s.value for s in State}
    assert {(g.get("data-trigger"), g.get("data-from")) for g in groups if g.get("data-trigger")} == {
        (step.trigger.value, source.value) for step in STEPS for source in step.sources}
    assert [g.get("data-state") for g in groups if g.get("data-current")] == ["remediation"]
    assert "current state: remediation" in drawn.find(f"{SVG}title").text
    assert not any(e.get("style") for e in drawn.iter()) and drawn.find(f"{SVG}style") is None  # CSP: no inline styles
    assert diagram.svg(State.remediation) == diagram.svg("remediation")  # the same picture every time
    unmarked = ET.fromstring(diagram.svg())  # noqa: S314 our own picture
    assert not [g for g in unmarked.iter(f"{SVG}g") if g.get("data-current")]


def test_the_picture_speaks_the_readers_words():
    words = {"triage": "in analyse", "confirm": "bevestigen"}
    drawn = diagram.svg("triage", words=lambda name: words.get(name, name), title="Levenscyclus; nu: in analyse")
    assert ">in analyse</text>" in drawn and ">bevestigen</text>" in drawn and "Levenscyclus; nu: in analyse" in drawn


def test_values_are_words_in_either_language_and_codes_for_the_operator():
    nl, en = Words("nl", time=amsterdam), Words("en")
    group = AffectedGroup(group="pupils", consequences="Grades seen", severity="considerable")
    assert nl.field("affected_groups", [group.model_dump(mode="json")]) == "leerlingen (aanzienlijk): Grades seen"
    assert en.field("nature_actions", ["read", "stolen"]) == "read, stolen"
    assert nl.field("data_unreadable", False) == "nee" and en.field("fix_tested", True) == "yes"
    assert nl.field("discovered_at", AT.isoformat()) == "01-07-2026 10:30"
    assert nl.field("cause_category", "unknown") == "nog onbekend" and CLI.field("cause_category", "unknown") == "unknown"
    assert nl.field("summary", "read") == "read"  # free text is never taken for a code


def test_one_event_in_the_words_of_each_reader():
    entry = Entry(4, AT, "hanna", "transition", "triage", "containment",
                  {"trigger": "confirm", "changes": {"cause_category": [None, "system_technical"]}}, "h")
    assert said(entry, Words("nl")) == ("bevestigen: in analyse → wordt ingedamd",
                                        ["categorie van de oorzaak: — → systeemtechnisch"])
    assert said(entry, Words("en"))[0] == "confirm: being analysed → being contained"
    assert entry_text(entry) == ("  4  2026-07-01 10:30 CEST  hanna  confirm: triage → containment\n"
                                 "      category of the cause: — → system_technical")
    gone = Entry(5, AT, "hanna", "note", None, None, None, "h")
    assert said(gone, Words("nl"))[0] == "note [persoonsgegevens vernietigd]"
