"""Commands on schools (the controllers). Contact addresses and the contact person are personal
data: sealed with the school's data key. The master data the AP's form asks of a controller
(address, KvK number, sector, its DPO's registration number at the AP) is plain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Row, Select, insert, select
from sqlalchemy import update as sql_update

from breachflow.workflow import crypto, keycheck, pages
from breachflow.workflow.context import Context
from breachflow.workflow.db import inserted_id, read_transaction, write_transaction
from breachflow.workflow.errors import DataDestroyed, FieldProblem, InvalidInput, NotFound
from breachflow.workflow.models import data_key_t, school_t
from breachflow.workflow.validation import EMAIL, NOT_AN_ADDRESS, ShortText, kvk_number, one_line

BRIN = re.compile(r"^\d{2}[A-Z]{2}(\d{2})?$")
LANGUAGES = ("nl", "en")


class Sector(StrEnum):
    """The education sector a school belongs to (the AP's form asks the controller's sector)."""

    primary = "primary"  # primair onderwijs
    secondary = "secondary"  # voortgezet onderwijs
    vocational = "vocational"  # middelbaar beroepsonderwijs (mbo)
    special = "special"  # (voortgezet) speciaal onderwijs


def dpo_registration(value: str) -> str:
    """``value`` if it can be the number under which the AP registered a DPO (like FG001234)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,29}", value):
        raise ValueError(f"'{value}' is not a registration number: letters, digits and dashes, at most 30")
    return value.upper()


def email_address(value: str) -> str:
    """``value`` if it looks like one email address."""
    if not EMAIL.match(value):
        raise ValueError(f"'{value}' {NOT_AN_ADDRESS}")
    return value


def phone_number(value: str) -> str:
    """``value`` if it looks like a phone number (digits, spaces, +, -, parentheses)."""
    if not re.fullmatch(r"\+?[0-9 ()-]{6,20}", value):
        raise ValueError(f"'{value}' is not a phone number, like 040 123 45 67 or +31 40 123 45 67")
    return value


# named outside the models: inside, a field's own name would shadow its validator
KvkNumber = Annotated[str, Field(max_length=20), AfterValidator(kvk_number)]
DpoRegistration = Annotated[ShortText, Field(max_length=30), AfterValidator(dpo_registration)]
Address = Annotated[ShortText, Field(max_length=300)]
Name = Annotated[ShortText, Field(min_length=1, max_length=200), AfterValidator(one_line)]


class ContactPerson(BaseModel):
    """Who the AP may contact at the school about a notification (personal data: sealed)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: Annotated[ShortText, Field(max_length=40), AfterValidator(phone_number)] | None = None
    email: Annotated[ShortText, Field(max_length=254), AfterValidator(email_address)] | None = None


class MasterData(BaseModel):
    """What the AP's form asks about the school as the controller; every part optional (missing
    parts show as "still to collect" in the AP dossier)."""

    model_config = ConfigDict(extra="forbid")

    address: Address | None = Field(
        None, description="visiting address: street, number, postcode, town")
    kvk_number: KvkNumber | None = Field(None, description="Chamber of Commerce (KvK) number: eight digits")
    sector: Sector | None = Field(None, description="education sector")
    dpo_registration: DpoRegistration | None = Field(
        None, description="the number under which the AP registered the school's data protection officer")
    contact_person: ContactPerson | None = Field(None, description="who the AP may contact about a notification")


MASTER_FIELDS = tuple(MasterData.model_fields)


@dataclass(frozen=True)
class SchoolView:
    """A school as handlers see it."""

    id: int
    brin: str
    name: str
    language: str
    contacts: list[str]
    contract_ends_on: date | None
    address: str | None = None
    kvk_number: str | None = None
    sector: Sector | None = None
    dpo_registration: str | None = None
    contact_person: dict[str, Any] | None = None

    @property
    def master(self) -> MasterData:
        """The school's master data for the AP's form."""
        return MasterData(address=self.address, kvk_number=self.kvk_number, sector=self.sector,
                          dpo_registration=self.dpo_registration, contact_person=None if self.contact_person is None
                          else ContactPerson.model_validate(self.contact_person))


def _validate(brin: str, name: str, contacts: list[str], language: str) -> list[FieldProblem]:
    problems = []
    if not BRIN.match(brin):
        problems.append(FieldProblem("brin", f"'{brin}' is not a BRIN code (like 12AB or 12AB00)"))
    if not name.strip():
        problems.append(FieldProblem("name", "the school's name is required"))
    else:
        try:
            one_line(name)
        except ValueError as exc:
            problems.append(FieldProblem("name", f"the school's name {exc}"))
    if not contacts:
        problems.append(FieldProblem("contacts", "at least one contact email address is required"))
    problems += [
        FieldProblem("contacts", f"'{c}' {NOT_AN_ADDRESS}") for c in contacts if not EMAIL.match(c)
    ]
    if language not in LANGUAGES:
        problems.append(FieldProblem("language", f"must be one of {', '.join(LANGUAGES)}"))
    return problems


def master_data(values: dict[str, Any] | MasterData | None) -> MasterData:
    """``values`` as validated master data; ``InvalidInput`` naming each bad field."""
    if isinstance(values, MasterData):
        return values
    try:
        return MasterData.model_validate(values or {})
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from None


def _master_columns(key: bytes, master: MasterData) -> dict[str, Any]:
    person = master.contact_person
    return {"address": master.address, "kvk_number": master.kvk_number,
            "sector": master.sector.value if master.sector else None, "dpo_registration": master.dpo_registration,
            "contact_person": crypto.seal(key, person.model_dump(mode="json")) if person else None}


def add(
    ctx: Context,
    *,
    brin: str,
    name: str,
    contacts: list[str],
    language: str = "nl",
    contract_ends_on: date | None = None,
    master: dict[str, Any] | MasterData | None = None,
) -> SchoolView:
    """Register a school; its BRIN code must be new. ``master``: its master data for the AP's form."""
    brin = brin.strip().upper()
    contacts = [c.strip() for c in contacts if c.strip()]
    problems = _validate(brin, name, contacts, language)
    if problems:
        raise InvalidInput("invalid school", problems)
    data = master_data(master)
    now = datetime.now(UTC)
    with write_transaction(ctx.engine) as conn:
        if conn.execute(select(school_t.c.id).where(school_t.c.brin == brin)).first():
            raise InvalidInput("invalid school", [FieldProblem("brin", f"school {brin} already exists")])
        keycheck.master_keys_match(conn, ctx.keys)
        key, wrapped = ctx.keys.new_data_key()
        key_id = inserted_id(conn.execute(insert(data_key_t).values(wrapped=wrapped, created_at=now)))
        conn.execute(
            insert(school_t).values(
                brin=brin, name=name.strip(), language=language, contract_ends_on=contract_ends_on,
                data_key_id=key_id, contacts=crypto.seal(key, contacts), created_at=now,
                **_master_columns(key, data),
            )
        )
        return _view(ctx, conn.execute(_query().where(school_t.c.brin == brin)).one())


def update(ctx: Context, *, brin: str, changes: dict[str, Any]) -> SchoolView:
    """Change a school: only the keys of ``changes`` change (``name``, ``contacts``, ``language``,
    ``contract_ends_on`` or a part of its master data); a master-data part given as ``None`` is cleared."""
    with write_transaction(ctx.engine) as conn:
        return update_in(conn, ctx, brin=brin, changes=changes)


def update_in(conn: Connection, ctx: Context, *, brin: str, changes: dict[str, Any]) -> SchoolView:
    """``update`` inside the transaction ``conn`` of a larger command (the school row is locked on
    PostgreSQL: a command that also changes incidents locks them first)."""
    unknown = set(changes) - {"name", "contacts", "language", "contract_ends_on", *MASTER_FIELDS}
    if unknown:
        raise InvalidInput("invalid school", [FieldProblem(name, "unknown field") for name in sorted(unknown)])
    if not changes:
        raise InvalidInput("nothing to update", [FieldProblem("fields", "give at least one field to change")])
    query = _query().where(school_t.c.brin == brin.strip().upper())
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(of=school_t)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"school {brin} does not exist")
    current = _view(ctx, row)
    merged = {name: changes.get(name, getattr(current, name))
              for name in ("name", "contacts", "language", "contract_ends_on")}
    merged["contacts"] = [c.strip() for c in merged["contacts"] or [] if c.strip()]
    problems = _validate(current.brin, merged["name"] or "", merged["contacts"], merged["language"])
    if problems:
        raise InvalidInput("invalid school", problems)
    master = master_data(current.master.model_dump() | {k: v for k, v in changes.items() if k in MASTER_FIELDS})
    key = ctx.keys.unwrap(row.wrapped)
    conn.execute(sql_update(school_t).where(school_t.c.id == row.id).values(
        name=merged["name"].strip(), contacts=crypto.seal(key, merged["contacts"]), language=merged["language"],
        contract_ends_on=merged["contract_ends_on"], **_master_columns(key, master)))
    return _view(ctx, conn.execute(_query().where(school_t.c.id == row.id)).one())


def _view(ctx: Context, row: Row[Any]) -> SchoolView:
    try:
        key = ctx.keys.unwrap(row.wrapped)
        contacts = crypto.open_sealed(key, row.contacts)
        person = crypto.open_sealed(key, row.contact_person) if row.contact_person is not None else None
    except DataDestroyed:  # retention; a missing master key is an error, not an empty list
        contacts, person = [], None
    return SchoolView(row.id, row.brin, row.name, row.language, contacts, row.contract_ends_on,
                      address=row.address, kvk_number=row.kvk_number, sector=Sector(row.sector) if row.sector else None,
                      dpo_registration=row.dpo_registration, contact_person=person)


def _query() -> Select[Any]:
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


def ids_by_brin(conn: Connection, brins: list[str], field: str, *, retained: bool = False) -> dict[str, int]:
    """School ids for BRIN codes; every unknown code is named under ``field``, and with ``retained``
    every school whose data retention destroyed (its contract ended: nothing may be stored for it)."""
    wanted = [b.strip().upper() for b in brins]
    rows = conn.execute(select(school_t.c.brin, school_t.c.id, data_key_t.c.wrapped)
                        .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
                        .where(school_t.c.brin.in_(wanted))).all()
    found = {r.brin: r.id for r in rows}
    problems = [FieldProblem(field, f"no school with BRIN code {b}") for b in wanted if b not in found]
    if retained:
        problems += [FieldProblem(field, f"school {r.brin}'s contract ended and its data was destroyed (retention)")
                     for r in rows if r.wrapped is None]
    if problems:
        raise InvalidInput("unknown school", problems)
    return {b: found[b] for b in wanted}


def get(ctx: Context, brin: str) -> SchoolView:
    """One school by BRIN code."""
    with read_transaction(ctx.engine) as conn:
        return get_in(conn, ctx, brin)


def get_in(conn: Connection, ctx: Context, brin: str) -> SchoolView:
    """``get`` in the transaction ``conn``."""
    row = conn.execute(_query().where(school_t.c.brin == brin.strip().upper())).first()
    if row is None:
        raise NotFound(f"school {brin} does not exist")
    return _view(ctx, row)
