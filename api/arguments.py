"""Turning command-line text into command input: fields, schools, times (Amsterdam unless told)."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.disclosure import TIME_FIELDS, Disclosure
from breachflow.workflow.errors import FieldProblem, InvalidInput

_SCHEMA = Disclosure.model_json_schema()
BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def _resolved(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` without its ``null`` alternative and with a ``$ref`` looked up."""
    spec = next((s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"), spec)
    if "$ref" in spec:
        return _SCHEMA["$defs"][spec["$ref"].rsplit("/", 1)[1]]
    return spec


FIELD_SPECS = {name: _resolved(spec) for name, spec in _SCHEMA["properties"].items()}
# how each field is written on the command line follows from its type in the model
JSON_FIELDS = {n for n, s in FIELD_SPECS.items() if s.get("type") == "array" and _resolved(s["items"]).get("type") == "object"}
LIST_FIELDS = {n for n, s in FIELD_SPECS.items() if s.get("type") == "array"} - JSON_FIELDS
BOOL_FIELDS = {n for n, s in FIELD_SPECS.items() if s.get("type") == "boolean"}


def shape(spec: dict[str, Any], allowed: Sequence[str] = ()) -> str:
    """How to write a value of JSON schema ``spec`` after ``--set field=``, in words; ``allowed``
    names the values a list of texts may hold (they come from the configuration)."""
    spec = _resolved(spec)
    kind = spec.get("type")
    if "enum" in spec:
        return "one of " + ", ".join(spec["enum"])
    if kind == "boolean":
        return "yes or no"
    if kind == "integer":
        return f"a whole number from {spec.get('minimum', 0)} to {spec['maximum']}"
    if kind == "string" and spec.get("format") == "date-time":
        return "a time like 2026-11-28T14:30 (Amsterdam time unless it has a zone, e.g. +01:00 or Z)"
    if kind == "string":
        return f"text of at most {spec['maxLength']} characters"
    if kind == "object":
        keys = spec["properties"]
        return ("{" + ", ".join(f'"{k}": …' for k in keys) + "} where "
                + "; ".join(f"{k} is {shape(v)}" for k, v in keys.items()))
    items = _resolved(spec["items"])
    if items.get("type") == "object":
        return f"a JSON list (at most {spec['maxItems']}) of {shape(items)}"
    values = items.get("enum") or allowed
    return f"comma-separated, any of {', '.join(values)}" if values else f"comma-separated, each {shape(items)}"


def fields_help(allowed: dict[str, Sequence[str]]) -> str:
    """Every disclosure field with its shape, allowed values and meaning, for ``--help``."""
    lines = ["fields for --set FIELD=VALUE ('FIELD=' clears a field, 'FIELD=@path' reads the value from a file):"]
    for name, spec in FIELD_SPECS.items():
        lines += textwrap.wrap(shape(spec, allowed.get(name, ())), 100, initial_indent=f"  {name:<30}",
                               subsequent_indent=" " * 32)
        lines.append(" " * 32 + (Disclosure.model_fields[name].description or ""))
    return "\n".join(lines)


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


def parse_actions(items: Sequence[str]) -> list[Any]:
    """``--action`` values: one JSON object each (``workflow.actions.NewAction`` checks its fields)."""
    found = []
    for n, item in enumerate(items):
        try:
            found.append(json.loads(item))
        except ValueError:
            raise InvalidInput("invalid input", [FieldProblem(f"actions.{n}", "give a JSON object, e.g. "
                                                              '{"description": "…", "owner": "hanna", "due": "2026-12-31"}')]) from None
    return found


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
