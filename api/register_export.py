"""The breach register as an account may see it: a page, or the whole register streamed as JSON
or CSV in constant memory.

One place for ``GET /register``, ``GET /register/export`` and ``breachflow register export``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Unpack

from fastapi.responses import StreamingResponse

from breachflow.api import render, schemas, views
from breachflow.workflow import pages, queries, register
from breachflow.workflow.accounts import Account
from breachflow.workflow.context import Context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


EXPORT_PAGE = 500  # incidents read, decrypted and written at a time by the streaming export
UNREADABLE = "(this record cannot be read: run 'breachflow audit verify')"


def page(ctx: Context, account: Account, *, limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None,
         **filters: Unpack[queries.Filters]) -> pages.Page[schemas.RegisterEntry]:
    """A page of the register as ``account`` may see it, newest first, dismissed ones included (a
    school: its own), narrowed by ``filters`` (those of ``queries.incident_page``: state, brin,
    responsibility); records that cannot be read are named in the page's ``unreadable``."""
    school_id = account.school_id if views.is_school(account) else None
    found = queries.incident_page(ctx, school_id=school_id, limit=limit, cursor=cursor, **filters)
    stories = register.histories(ctx, [i.id for i in found.items])
    now = datetime.now(UTC)
    return pages.Page([views.register_entry(account, i, stories[i.id], now, ctx.periods) for i in found.items],
                      found.next_cursor, found.unreadable)


def _pages(ctx: Context, account: Account,
           **filters: Unpack[queries.Filters]) -> Iterator[pages.Page[schemas.RegisterEntry]]:
    cursor = None
    while True:
        found = page(ctx, account, limit=EXPORT_PAGE, cursor=cursor, **filters)
        yield found
        if found.next_cursor is None:
            return
        cursor = found.next_cursor


def stream_json(ctx: Context, account: Account) -> Iterator[bytes]:
    """The whole register as one JSON object ``{"items": [...], "unreadable": [...]}``, a page at a
    time: memory stays that of one page however large the register grows."""
    unreadable: list[str] = []
    yield b'{"items":['
    first = True
    for found in _pages(ctx, account):
        unreadable += found.unreadable
        for entry in found.items:
            yield (b"" if first else b",") + entry.model_dump_json().encode()
            first = False
    yield b'],"unreadable":' + json.dumps(unreadable).encode() + b"}\n"


def stream_csv(ctx: Context, account: Account, **filters: Unpack[queries.Filters]) -> Iterator[bytes]:
    """The whole register (or the part ``filters`` keep, as in ``page``) as CSV, a page at a time:
    one column per field of ``RegisterEntry``, times in Amsterdam time. A record that cannot be
    read keeps its row, with its reference and a note."""
    fields = list(schemas.RegisterEntry.model_fields)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for found in _pages(ctx, account, **filters):
        for entry in found.items:
            writer.writerow({k: csv_cell(v) for k, v in render.register_csv_row(entry).items()})
        for reference in found.unreadable:
            writer.writerow({"reference": reference, "summary": UNREADABLE})
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()


def csv_download(ctx: Context, account: Account, **filters: Unpack[queries.Filters]) -> StreamingResponse:
    """``stream_csv`` as a download named for the register."""
    return StreamingResponse(stream_csv(ctx, account, **filters), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="datalekkenregister.csv"'})


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one that could start a formula gets a leading apostrophe
    (OWASP, CSV injection)."""
    if isinstance(value, list):
        value = "; ".join(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
