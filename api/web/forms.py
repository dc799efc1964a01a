"""Disclosure fields as form controls, and forms back into disclosure fields.

Each field of ``workflow.disclosure.Disclosure`` gets a real control from its type (``Control``):
times as ``datetime-local`` in Amsterdam time, yes/no radios for booleans, selects for enums,
checkbox groups for lists of enums and for the configured systems, number inputs for counts, and one
fieldset per group of people for the affected groups. ``parse`` reads a submitted form back: only
the fields the form showed (its hidden ``fields`` inputs) and that differ from what it showed,
validated by the same pydantic ``Disclosure`` the API uses, every problem named by its field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from breachflow.workflow.deadlines import AMSTERDAM, local
from breachflow.workflow.disclosure import TIME_FIELDS, Disclosure, Group, Severity
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.validation import SHORT_TEXT

SHOWN = "fields"  # the hidden inputs that list the fields a form shows
YES, NO = "yes", "no"
LOCAL_TIME = "%Y-%m-%dT%H:%M"
Raw = Mapping[str, list[str]]  # input name → submitted values
SEVERITIES = tuple(Severity)
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Control:
    """How one disclosure field is asked for: its ``kind`` of control and, for choices, the codes."""

    name: str
    kind: str  # time, text, longtext, bool, count, choice, choices, groups
    options: tuple[str, ...] = ()

    def inputs(self) -> list[str]:
        """The names of the inputs this control submits."""
        if self.kind == "groups":
            return [f"{self.name}.{g}{part}" for g in Group for part in ("", ".consequences", ".severity")]
        return [self.name]


@cache
def _schema() -> dict[str, Any]:
    return Disclosure.model_json_schema()


def control(name: str, systems: Iterable[str] = ()) -> Control:
    """The control of disclosure field ``name``; ``systems``: the configured affected systems."""
    if name in TIME_FIELDS:
        return Control(name, "time")
    if name == "affected_groups":
        return Control(name, "groups", tuple(Group))
    if name == "affected_systems":
        return Control(name, "choices", tuple(systems))
    schema = _schema()
    shape = next(s for s in schema["properties"][name]["anyOf"] if s.get("type") != "null")
    if "$ref" in shape or "$ref" in shape.get("items", {}):
        ref = shape.get("$ref") or shape["items"]["$ref"]
        options = tuple(schema["$defs"][ref.rpartition("/")[2]]["enum"])
        return Control(name, "choices" if shape.get("type") == "array" else "choice", options)
    kind = {"boolean": "bool", "integer": "count"}.get(shape["type"])
    if kind:
        return Control(name, kind)
    return Control(name, "longtext" if shape.get("maxLength", 0) > SHORT_TEXT else "text")


def shown(d: Disclosure, names: Iterable[str]) -> dict[str, list[str]]:
    """The inputs of fields ``names`` filled with ``d``'s values, as a form shows them."""
    raw: dict[str, list[str]] = {}
    for name in names:
        value = getattr(d, name)
        kind = control(name).kind
        if kind == "groups":
            for g in value or ():
                raw.setdefault(f"{name}.{g.group.value}", ["on"])
                raw.setdefault(f"{name}.{g.group.value}.consequences", [g.consequences])
                raw.setdefault(f"{name}.{g.group.value}.severity", [g.severity.value])
        elif value is None:
            raw[name] = []
        elif kind == "time":
            raw[name] = [f"{local(value):{LOCAL_TIME}}"]
        elif kind == "bool":
            raw[name] = [YES if value else NO]
        elif isinstance(value, list):
            raw[name] = [str(getattr(v, "value", v)) for v in value]  # codes and texts
        else:
            raw[name] = [str(getattr(value, "value", value))]
    return raw


def _same(a: list[str], b: list[str]) -> bool:
    return sorted(v.strip() for v in a if v.strip()) == sorted(v.strip() for v in b if v.strip())


def _typed(c: Control, raw: Raw) -> Any:
    """The submitted value of control ``c``, typed as far as a form can say; the rest is the model's."""
    values = [v for v in raw.get(c.name, []) if v.strip()]
    one = values[0].strip() if values else ""
    if c.kind == "groups":
        return [{"group": g.value, "consequences": (raw.get(f"{c.name}.{g}.consequences") or [""])[0],
                 "severity": (raw.get(f"{c.name}.{g}.severity") or [""])[0] or None}
                for g in Group if raw.get(f"{c.name}.{g}")] or None
    if c.kind == "choices":
        return values or None
    if c.kind == "text" or c.kind == "longtext":
        return one
    if not one:
        return None
    if c.kind == "bool":
        return {YES: True, NO: False}.get(one, one)
    if c.kind == "time":
        return typed_time(one)
    return one


def whole_number(text: str) -> int | None:
    """A whole number of 0 or more typed in a form, in ASCII digits (``int`` would also read ``١٢`` or
    fail on ``²``); anything else is ``None``."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def typed_time(text: str) -> datetime | str | None:
    """A ``datetime-local`` input as an aware time, read in Amsterdam time; blank is ``None``, and
    what is not a time stays the text it is (for the model to name)."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=AMSTERDAM)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one no calendar reaches in UTC (year 1)
        return text


def parse(raw: Raw, current: Disclosure, systems: Iterable[str] = ()) -> dict[str, Any]:
    """The fields a submitted form changes, validated; ``InvalidInput`` names every bad field
    (an affected group by its name: ``affected_groups.pupils.consequences``)."""
    was = shown(current, [n for n in raw.get(SHOWN, []) if n in Disclosure.model_fields])
    fields: dict[str, Any] = {}
    for name in dict.fromkeys(raw.get(SHOWN, [])):
        if name not in Disclosure.model_fields:
            continue
        c = control(name, systems)
        if all(_same(raw.get(i, []), was.get(i, [])) for i in c.inputs()):
            continue  # as it was shown: unchanged
        fields[name] = _typed(c, raw)
    if not fields:
        return {}
    try:
        checked = Disclosure.model_validate(current.model_dump() | fields)
    except ValidationError as exc:
        refused = InvalidInput.from_validation(exc)
        groups = fields.get("affected_groups") or []
        refused.fields = [_group_named(p, groups) for p in refused.fields]
        raise refused from None
    return {name: getattr(checked, name) for name in fields}


def _group_named(problem: FieldProblem, groups: list[dict[str, Any]]) -> FieldProblem:
    parts = problem.field.split(".")
    if parts[0] == "affected_groups" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(groups):
        return FieldProblem(".".join([parts[0], groups[int(parts[1])]["group"], *parts[2:]]), problem.problem)
    return problem


def multi(form: Any) -> dict[str, list[str]]:
    """A submitted form (Starlette's ``FormData``) as input name → every value given."""
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


def checked(model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """``values`` as the API's request ``model`` takes them: a form obeys the same bounds (lengths,
    no NUL, valid choices) as the API, and a refusal names each field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from None
