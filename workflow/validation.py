"""Small checks of command input, each failing with ``InvalidInput`` that names the field."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from workflow.errors import FieldProblem, InvalidInput

E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], value: str, name: str) -> E:
    """``value`` as a member of ``enum``."""
    try:
        return enum(value)
    except ValueError:
        raise InvalidInput("invalid input", [FieldProblem(name, f"'{value}' is not one of {', '.join(enum)}")]) from None


def required_text(value: str | None, name: str, what: str) -> str:
    """``value`` stripped; blank is refused."""
    if value is None or not value.strip():
        raise InvalidInput("invalid input", [FieldProblem(name, f"{what} is required")])
    return value.strip()


def optional_text(value: str | None) -> str | None:
    """``value`` stripped; blank is ``None``."""
    return value.strip() if value and value.strip() else None
