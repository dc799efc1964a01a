"""Cursor pagination, shared by every list.

A page holds at most ``limit`` items and, when more follow, a ``next_cursor``: an opaque token
naming the last item's position in the list's order. The next page starts right after it, so
pages neither skip nor repeat rows when incidents are added or changed in between (unlike an
offset), and each page costs an indexed seek however deep it lies. A cursor only says where to
start: what a caller may see is decided anew on every page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from breachflow.workflow.errors import FieldProblem, InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 200  # characters; every cursor breachflow hands out is far shorter
MAX_ID = 2**31 - 1  # the largest id or sequence number PostgreSQL's 4-byte integer columns hold
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


@dataclass
class Page(Generic[T]):
    """Items of one page, the cursor of the next (``None`` on the last) and the references of
    records left out because they cannot be read."""

    items: list[T]
    next_cursor: str | None = None
    unreadable: list[str] = field(default_factory=list)


def encode(*position: int | str | datetime) -> str:
    """The cursor of a position (the sort key of a page's last item)."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in position]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, *kinds: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The position in ``cursor``, each value converted by its kind (``int``, ``str``,
    ``datetime.fromisoformat``); ``InvalidInput`` naming ``cursor`` if it is not one of ours."""
    if cursor is None:
        return None
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(kind(value) for kind, value in zip(kinds, values, strict=True))
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid input", [FieldProblem(
            "cursor", "not a cursor of this list: pass the next_cursor of the previous page unchanged")]) from None


def cut(rows: Sequence[T], limit: int, position: Callable[[T], tuple[Any, ...]]) -> tuple[Sequence[T], str | None]:
    """``rows`` (fetched with ``limit + 1``) cut to ``limit``, and the next cursor if there was more."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode(*position(rows[-1]))


def strict_int(value: Any) -> int:
    """An id from a cursor: an int a database column holds, never a float, a string or a bool."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise TypeError("not an id")
    return value


def strict_str(value: Any) -> str:
    """A short printable string from a cursor (a BRIN code)."""
    if not isinstance(value, str) or len(value) > 20 or not value.isprintable():
        raise TypeError("not a key")
    return value


def strict_time(value: Any) -> datetime:
    """An aware time from a cursor, in UTC, within the years any stored time lies in."""
    if not isinstance(value, str) or len(value) > 40:
        raise TypeError("not a time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive time")
    moment = moment.astimezone(UTC)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError("out of range")
    return moment
