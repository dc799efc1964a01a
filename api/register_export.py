"""The breach register for export: the rows an account may see, and the same rows as CSV.

One place for ``GET /register`` and ``breachflow register export``.
"""

from __future__ import annotations

import csv
import io

from breachflow.api import render, schemas, views
from breachflow.workflow import queries, register
from breachflow.workflow.accounts import Account
from breachflow.workflow.context import Context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def entries(ctx: Context, account: Account, unreadable: list[str]) -> list[schemas.RegisterEntry]:
    """Every incident of the register as ``account`` may see it, newest first, dismissed ones
    included (a school: its own); records that cannot be read are named in ``unreadable``."""
    refs = queries.find(ctx, brin=account.school_brin if views.is_school(account) else None)
    incidents = queries.get_many(ctx, refs, unreadable)
    found = register.histories(ctx, [i.id for i in incidents])
    return [views.register_entry(account, i, found[i.id]) for i in incidents]


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one that could start a formula gets a leading apostrophe
    (OWASP, CSV injection)."""
    if isinstance(value, list):
        value = "; ".join(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: list[schemas.RegisterEntry]) -> str:
    """The register as CSV: one column per field of ``RegisterEntry``, times in Amsterdam time."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(schemas.RegisterEntry.model_fields))
    writer.writeheader()
    for entry in rows:
        writer.writerow({k: csv_cell(v) for k, v in render.register_csv_row(entry).items()})
    return out.getvalue()
