"""Checks of command input: small ones failing with ``InvalidInput`` that names the field, and the
bounded types (text, lists, counts, times) that every user-given value is declared with."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from breachflow.workflow.errors import FieldProblem, InvalidInput

E = TypeVar("E", bound=StrEnum)

# one address as a mail header writes it bare: an ASCII dot-atom local part and domain (an
# international domain in its xn-- form), nothing a header would read as a second address or a name
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
NOT_AN_ADDRESS = "is not an email address (ASCII only; write an international domain in its xn-- form)"
# control characters (line breaks among them), and the invisible marks that reorder or hide text
_NOT_ON_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def one_line(value: str) -> str:
    """``value`` if it is one line of visible text: a name that a notice's greeting and subject carry."""
    if _NOT_ON_ONE_LINE.search(value):
        raise ValueError("must be one line of text, without control or invisible direction characters")
    return value


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


# --- bounds of every value a user gives (API request bodies and the disclosure fields) -----------

SHORT_TEXT = 1_000  # a name, an address, a reference, one line
LONG_TEXT = 20_000  # a description
MAX_ITEMS = 50  # entries in one list
MAX_COUNT = 100_000_000  # people or records: more than the Netherlands has
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no breach at a school is older
CLOCK_SKEW = timedelta(minutes=5)  # how far a client's clock may run ahead of ours
LATEST_DATE = date(2100, 1, 1)  # dates (not times) may lie ahead, but not this far


def no_nul(value: str) -> str:
    """``value``, if free of NUL characters (PostgreSQL refuses them in text)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _time_given(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("give a time or leave the field out")
    return value


def kvk_number(value: str) -> str:
    """``value`` without spaces, if it is a KvK number (the Chamber of Commerce's): eight digits."""
    value = value.replace(" ", "")
    if not (len(value) == 8 and value.isascii() and value.isdigit()):
        raise ValueError(f"'{value}' is not a KvK number: eight digits, like 41234567")
    return value


def plausible_time(value: datetime) -> datetime:
    """``value`` in UTC if it lies between 2000-01-01 and now (plus clock skew)."""
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01")
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value.astimezone(UTC)


T = TypeVar("T")
# the length is that of the text as sent (what the schema's maxLength promises), then it is stripped
ShortText = Annotated[str, Field(max_length=SHORT_TEXT), AfterValidator(no_nul), AfterValidator(str.strip)]
LongText = Annotated[str, Field(max_length=LONG_TEXT), AfterValidator(no_nul), AfterValidator(str.strip)]
Items = Annotated[list[T], Field(max_length=MAX_ITEMS)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_not_bool)]
Moment = Annotated[AwareDatetime, BeforeValidator(_time_given), AfterValidator(plausible_time)]


def plausible_date(value: date) -> date:
    """``value`` if it lies in this century (a contract's end, say)."""
    if not EARLIEST.date() <= value < LATEST_DATE:
        raise ValueError(f"must lie between {EARLIEST.date()} and {LATEST_DATE}")
    return value
