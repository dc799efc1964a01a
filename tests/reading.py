"""Reading in tests: whole lists page by page, as a client that follows ``next_cursor`` would, and
the statements a read runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from breachflow.workflow import pages, queries
from breachflow.workflow.context import Context
from breachflow.workflow.incident import Incident
from breachflow.workflow.queries import Entry


def whole_timeline(ctx: Context, reference: str) -> list[Entry]:
    """Every event of the incident's timeline, oldest first."""
    entries, cursor = [], None
    while True:
        page = queries.timeline_page(ctx, reference, limit=pages.MAX_LIMIT, cursor=cursor)
        entries += page.items
        if (cursor := page.next_cursor) is None:
            return entries


def all_incidents(ctx: Context, **filters: str | None) -> list[Incident]:
    """Every readable incident of the register, newest first."""
    incidents, cursor = [], None
    while True:
        page = queries.incident_page(ctx, limit=pages.MAX_LIMIT, cursor=cursor, **filters)
        incidents += page.items
        if (cursor := page.next_cursor) is None:
            return incidents


@contextmanager
def statements(ctx: Context) -> Iterator[list[str]]:
    """The SQL statements run through the installation's engine inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ctx.engine, "before_cursor_execute", record)
