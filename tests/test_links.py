"""Signed links: bound to one incident, one school and an expiry; nothing else opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from breachflow.workflow import links

KEY = bytes(range(32))
NOW = datetime.now(UTC).replace(microsecond=0)


def a_link(**kwargs) -> str:
    values = {"reference": "DL-2026-00012", "brin": "12AB", "valid_for": timedelta(days=30), "now": NOW} | kwargs
    return links.make(KEY, **values)


def test_a_link_opens_its_incident_for_its_school_until_it_expires():
    token = a_link()
    opened = links.opened(KEY, token, NOW)
    assert (opened.reference, opened.brin) == ("DL-2026-00012", "12AB")
    assert links.opened(KEY, token, NOW + timedelta(days=30) - timedelta(seconds=1)) is not None
    assert links.opened(KEY, token, NOW + timedelta(days=30)) is None


@pytest.mark.parametrize("bend", [
    lambda t: t.replace("DL-2026-00012", "DL-2026-00013"),  # another incident
    lambda t: t.replace(".12AB.", ".34CD."),  # another school
    lambda t: t.replace(t.split(".")[2], str(int(t.split(".")[2]) + 86400)),  # a later expiry
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # another signature
    lambda t: t + "x",
    lambda t: "",
])
def test_a_link_bent_in_any_part_opens_nothing(bend):
    assert links.opened(KEY, bend(a_link()), NOW) is None


def test_a_link_signed_under_another_key_opens_nothing():
    assert links.opened(bytes(32), a_link(), NOW) is None


def test_a_form_token_belongs_to_one_session():
    token = links.form_token(KEY, "s:1")
    assert links.form_token_matches(KEY, "s:1", token)
    assert not links.form_token_matches(KEY, "s:2", token)
    assert not links.form_token_matches(KEY, "", links.form_token(KEY, ""))
    assert links.form_token(KEY, "s:1") != links.make(KEY, reference="s", brin="1", valid_for=timedelta(1))
