"""Commands on schools (the controllers). Contact addresses are personal data: sealed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, insert, select

from breachflow.workflow import crypto, keycheck, pages
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.errors import DataDestroyed, FieldProblem, InvalidInput, NotFound
from breachflow.workflow.models import data_key_t, school_t

BRIN = re.compile(r"^\d{2}[A-Z]{2}(\d{2})?$")
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
LANGUAGES = ("nl", "en")


@dataclass(frozen=True)
class SchoolView:
    """A school as handlers see it."""

    id: int
    brin: str
    name: str
    language: str
    contacts: list[str]
    contract_ends_on: date | None


def _validate(brin: str, name: str, contacts: list[str], language: str) -> list[FieldProblem]:
    problems = []
    if not BRIN.match(brin):
        problems.append(FieldProblem("brin", f"'{brin}' is not a BRIN code (like 12AB or 12AB00)"))
    if not name.strip():
        problems.append(FieldProblem("name", "the school's name is required"))
    if not contacts:
        problems.append(FieldProblem("contacts", "at least one contact email address is required"))
    problems += [
        FieldProblem("contacts", f"'{c}' is not an email address") for c in contacts if not EMAIL.match(c)
    ]
    if language not in LANGUAGES:
        problems.append(FieldProblem("language", f"must be one of {', '.join(LANGUAGES)}"))
    return problems


def add(
    ctx: Context,
    *,
    brin: str,
    name: str,
    contacts: list[str],
    language: str = "nl",
    contract_ends_on: date | None = None,
) -> SchoolView:
    """Register a school; its BRIN code must be new."""
    brin = brin.strip().upper()
    contacts = [c.strip() for c in contacts if c.strip()]
    problems = _validate(brin, name, contacts, language)
    if problems:
        raise InvalidInput("invalid school", problems)
    now = datetime.now(UTC)
    with write_transaction(ctx.engine) as conn:
        if conn.execute(select(school_t.c.id).where(school_t.c.brin == brin)).first():
            raise InvalidInput("invalid school", [FieldProblem("brin", f"school {brin} already exists")])
        keycheck.master_keys_match(conn, ctx.keys)
        key, wrapped = ctx.keys.new_data_key()
        key_id = conn.execute(insert(data_key_t).values(wrapped=wrapped, created_at=now)).inserted_primary_key[0]
        school_id = conn.execute(
            insert(school_t).values(
                brin=brin, name=name.strip(), language=language, contract_ends_on=contract_ends_on,
                data_key_id=key_id, contacts=crypto.seal(key, contacts), created_at=now,
            )
        ).inserted_primary_key[0]
    return SchoolView(school_id, brin, name.strip(), language, contacts, contract_ends_on)


def _view(ctx: Context, row) -> SchoolView:
    try:
        contacts = crypto.open_sealed(ctx.keys.unwrap(row.wrapped), row.contacts)
    except DataDestroyed:  # retention; a missing master key is an error, not an empty list
        contacts = []
    return SchoolView(row.id, row.brin, row.name, row.language, contacts, row.contract_ends_on)


def _query():
    return select(school_t, data_key_t.c.wrapped).join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)


def page(ctx: Context, *, limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None) -> pages.Page[SchoolView]:
    """A page of the schools, by BRIN code."""
    query = _query().order_by(school_t.c.brin).limit(limit + 1)
    after = pages.decode(cursor, pages.strict_str)
    if after is not None:
        query = query.where(school_t.c.brin > after[0])
    with read_transaction(ctx.engine) as conn:
        rows, next_cursor = pages.cut(conn.execute(query).all(), limit, lambda r: (r.brin,))
        return pages.Page([_view(ctx, row) for row in rows], next_cursor)


def ids_by_brin(conn: Connection, brins: list[str], field: str) -> dict[str, int]:
    """School ids for BRIN codes; every unknown code is named under ``field``."""
    wanted = [b.strip().upper() for b in brins]
    found = dict(conn.execute(select(school_t.c.brin, school_t.c.id).where(school_t.c.brin.in_(wanted))).all())
    unknown = [b for b in wanted if b not in found]
    if unknown:
        raise InvalidInput(
            "unknown school", [FieldProblem(field, f"no school with BRIN code {b}") for b in unknown]
        )
    return {b: found[b] for b in wanted}


def get(ctx: Context, brin: str) -> SchoolView:
    """One school by BRIN code."""
    with read_transaction(ctx.engine) as conn:
        row = conn.execute(_query().where(school_t.c.brin == brin.strip().upper())).first()
    if row is None:
        raise NotFound(f"school {brin} does not exist")
    return _view(ctx, row)
