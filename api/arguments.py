"""Turning command-line text into command input: fields, schools, times (Amsterdam unless told)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.disclosure import TIME_FIELDS, Disclosure
from breachflow.workflow.errors import FieldProblem, InvalidInput

LIST_FIELDS = {"nature_actions", "affected_systems", "data_kinds"}
JSON_FIELDS = {"affected_groups"}
BOOL_FIELDS = {name for name, spec in Disclosure.model_json_schema()["properties"].items()
               if {"type": "boolean"} in spec.get("anyOf", [])}
BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def parse_time(text: str) -> datetime:
    """An ISO time; without a zone it is read as Europe/Amsterdam time."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=AMSTERDAM) if moment.tzinfo is None else moment


def time_arg(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a time like 2026-11-28T14:30") from None


def port_arg(text: str) -> int:
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (1 to 65535, or 0 for any free one)")
    return int(text)


def count_arg(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 1")
    return int(text)


def date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-12-31") from None


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``field=value`` pairs; ``field=@path`` reads the value from a file."""
    fields: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInput("invalid input", [FieldProblem("--set", f"'{item}' is not field=value")])
        if raw.startswith("@"):
            try:
                raw = Path(raw[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidInput("invalid input", [FieldProblem(name, f"cannot read {raw[1:]}: {exc.strerror}")]) from None
        fields[name] = _coerce(name, raw)
    return fields


def _coerce(name: str, raw: str) -> Any:
    text = raw.strip()
    if not text and name not in TIME_FIELDS:
        return None  # 'field=' clears it (a blank time is refused: give one or leave it out)
    if name in JSON_FIELDS or (name in LIST_FIELDS and text.startswith("[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("invalid input", [FieldProblem(name, f"not valid JSON ({exc.msg})")]) from None
    if name in LIST_FIELDS:
        return [part.strip() for part in text.split(",") if part.strip()]
    if name in BOOL_FIELDS and text.lower() in BOOL_WORDS:  # the model is strict: JSON true/false only
        return BOOL_WORDS[text.lower()]
    if name in TIME_FIELDS and text:
        try:
            return parse_time(text)
        except ValueError:
            return text  # the model names the field and the problem
    return raw


def parse_schools(items: Sequence[str]) -> dict[str, int | None]:
    """``BRIN`` or ``BRIN:COUNT`` items."""
    result: dict[str, int | None] = {}
    for item in items:
        brin, _, count = item.partition(":")
        if count and not count.strip().isdigit():
            raise InvalidInput("invalid input", [FieldProblem("--school", f"'{item}': the count must be a whole number")])
        result[brin.strip().upper()] = int(count) if count.strip() else None
    return result
