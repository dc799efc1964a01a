"""Every message breachflow writes is exact RFC 5322 / 2045–2047, whatever goes into it.

The property test renders every template in every language with arbitrary values (non-ASCII, long
words, CR/LF, control characters, header-looking and encoded-word-looking text) for every variable
the template reads, writes the message with ``notifications.mime`` and parses the bytes with the
standard library's strict policy: no defect, CRLF only, lines within their limits, every header
and body round-trips exactly, and no value can add a header.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import meta
from markupsafe import Markup

from breachflow.notifications.mime import LIMIT, addresses, mime, new_message_id, one_line, unstructured
from breachflow.notifications.people import Draft
from breachflow.notifications.render import MessageKind, _environment, render
from breachflow.notifications.texts import LANGUAGES

STRICT = policy.strict  # policy.default that raises on every defect
HOSTILE = [
    "\r\nBcc: attacker@example.com", "\nX-Injected: yes", "=?utf-8?q?not=20ours?=", "a" * 300,
    "De Regenboog\r\n\r\n<html>", "Ünïcødé school \u2028 line", "\x00\x07\x1b[31m", "tab\there", " leading",
    "trailing ", "double  space", "Subject: fake", "\"quoted\" <x@y.z>", "é" * 120, "😀" * 40,
]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=120), st.text(alphabet="aé😀 \r\n=?:<>\"\\", max_size=90))
EMAIL = st.emails().filter(lambda a: a.isascii() and len(a) < 120)
BOOLEANS = {"overdue", "school_overdue"}
NULLABLE = {"message", "school_since", "school_name", "ap_due"}


def _variables_of(kind: MessageKind, language: str) -> set[str]:
    """The names a template (with its parts) reads."""
    environment = _environment(False)
    names: set[str] = set()
    for name in (f"{language}/{kind.value}.j2", f"{language}/_parts.j2"):
        source = environment.loader.get_source(environment, name)[0]
        names |= meta.find_undeclared_variables(environment.parse(source))
    return names - {"parts"}


@st.composite
def variables(draw: st.DrawFn, kind: MessageKind, language: str) -> dict[str, object]:
    """A value for every variable the template reads, drawn adversarially by its name."""
    found: dict[str, object] = {}
    for name in sorted(_variables_of(kind, language)):
        if name in BOOLEANS:
            found[name] = draw(st.booleans())
        elif name in {"facts", "ap_form"}:
            found[name] = draw(st.dictionaries(TEXT, TEXT, max_size=4))
        elif name == "changes":
            found[name] = draw(st.lists(st.fixed_dictionaries({"label": TEXT, "old": TEXT, "new": TEXT}), max_size=3))
        elif name == "actions":
            found[name] = draw(st.lists(st.fixed_dictionaries(
                {k: TEXT for k in ("number", "description", "owner", "due", "status")}), max_size=3))
        elif name == "people":
            found[name] = draw(st.none() | st.builds(lambda s, t: Draft(language, s, t, Markup.escape(t)), TEXT, TEXT))
        elif name == "responsibility":
            found[name] = draw(st.sampled_from(["processor", "school", "undetermined"]))
        elif name in NULLABLE:
            found[name] = draw(st.none() | TEXT)
        else:
            found[name] = draw(TEXT)
    return found


@st.composite
def messages(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(list(MessageKind)))
    language = draw(st.sampled_from(list(LANGUAGES)))
    return {"kind": kind, "language": language, "variables": draw(variables(kind, language)),
            "sender_name": draw(TEXT), "recipients": draw(st.lists(EMAIL, min_size=1, max_size=6)),
            "thread": draw(st.none() | st.just(new_message_id("BO-2026-0001", "privacy@processor.example.nl")))}


def _write(case: dict[str, object]) -> tuple[tuple[str, str, str], bytes, str]:
    subject, text, html = render(case["kind"], case["language"], case["variables"])
    message_id = new_message_id("BO-2026-0001", "privacy@processor.example.nl")
    raw = mime(sender="privacy@processor.example.nl", sender_name=case["sender_name"], recipients=case["recipients"],
               subject=subject, text=text, html=html, message_id=message_id, date=datetime.now(UTC),
               language=case["language"], thread=case["thread"])
    return (subject, text, html), raw, message_id


def _canonical(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_every_template_in_every_language_parses_strictly_and_round_trips(case):
    (subject, text, html), raw, message_id = _write(case)

    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b""), "CRLF only"
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= LIMIT or len(line.split()) == 1 for line in head.split(b"\r\n")), \
        "headers fold at 76 characters (RFC 2047 for encoded words; RFC 5322 wants 78); only a word that cannot be split (a long address) stands alone on a longer line"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert head.isascii()

    parsed = BytesParser(policy=STRICT).parsebytes(raw)
    names = [name for name, _ in parsed.items()]
    expected = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted",
                "Content-Language", "Content-Type"]
    if case["thread"]:
        expected[5:5] = ["In-Reply-To", "References"]
    assert names == expected, "no value adds, drops or repeats a header"
    assert all(not parsed[name].defects for name in names)
    assert str(parsed["Subject"]) == subject
    (sender,) = parsed["From"].addresses
    assert sender.addr_spec == "privacy@processor.example.nl"
    # CPython keeps the space between two encoded words of a display name, which RFC 2047 (and mail
    # clients) drop; the name round-trips apart from those spaces
    assert sender.display_name.replace(" ", "") == one_line(case["sender_name"]).replace(" ", "")
    assert [a.addr_spec for a in parsed["To"].addresses] == case["recipients"]
    assert parsed["Message-ID"].strip() == message_id  # a long one is folded onto its own line
    assert parsedate_to_datetime(parsed["Date"]).tzinfo is not None
    if case["thread"]:
        assert parsed["In-Reply-To"].strip() == parsed["References"].strip() == case["thread"]

    plain, rich = list(parsed.iter_parts())
    assert not parsed.defects and not plain.defects and not rich.defects
    assert _canonical(plain.get_content()) == _canonical(text)
    assert _canonical(rich.get_content()) == _canonical(html)
    assert plain.get_content_type() == "text/plain" and rich.get_content_type() == "text/html"


def test_a_long_ascii_subject_folds_at_spaces_within_76_characters():
    subject = " ".join(["Datalek BO-2026-0001 – De Regenboog"] + ["woord"] * 40)
    header = unstructured("Subject", "Datalek BO-2026-0001 " + " ".join(["woord"] * 40))
    assert len(header.split("\r\n")) > 1 and all(len(line) <= LIMIT for line in header.split("\r\n"))
    raw = mime(sender="a@b.nl", sender_name="BasisOnline", recipients=["c@d.nl"], subject=subject, text="t",
               html="<p>t</p>", message_id="<x@b.nl>", date=datetime.now(UTC))
    assert str(BytesParser(policy=STRICT).parsebytes(raw)["Subject"]) == subject


def test_a_long_non_ascii_subject_is_encoded_words_joined_by_crlf_space_only():
    """The bug of old: the stdlib's Header folded with a bare LF inside a CRLF message."""
    subject = "Datalek BO-2026-0001: melding aan Basisschool De Regenboog – locatie Überstraße " * 3
    header = unstructured("Subject", subject)
    lines = header.split("\r\n")
    assert len(lines) > 2 and "\n" not in header.replace("\r\n", "")
    assert all(len(line) <= LIMIT and re.fullmatch(r"(Subject:)? =\?utf-8\?b\?[A-Za-z0-9+/=]+\?=", line)
               for line in lines)


def test_a_header_value_cannot_start_a_header_of_its_own():
    raw = mime(sender="a@b.nl", sender_name="x\r\nBcc: evil@example.com", recipients=["c@d.nl"],
               subject="s\r\nBcc: evil@example.com", text="t\r\nBcc: evil@example.com", html="h",
               message_id="<x@b.nl>", date=datetime.now(UTC))
    parsed = BytesParser(policy=STRICT).parsebytes(raw)
    assert parsed["Bcc"] is None and parsed["From"].addresses[0].display_name == "x Bcc: evil@example.com"
    assert str(parsed["Subject"]) == "s\r\nBcc: evil@example.com"


def test_many_recipients_fold_between_addresses():
    recipients = [f"directie{n}@basisschool-de-regenboog.example.nl" for n in range(6)]
    header = addresses("To", [("", r) for r in recipients])
    assert all(len(line) <= LIMIT for line in header.split("\r\n"))
    assert [Address(addr_spec=r).addr_spec for r in recipients] == recipients
    raw = mime(sender="a@b.nl", sender_name="BasisOnline", recipients=recipients, subject="s", text="t", html="h",
               message_id="<x@b.nl>", date=datetime.now(UTC))
    assert [a.addr_spec for a in BytesParser(policy=STRICT).parsebytes(raw)["To"].addresses] == recipients
