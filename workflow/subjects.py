"""Requests of data subjects (seed section 5; GDPR art. 15 and 17, which the school answers as the
controller and breachflow helps it answer as its processor, art. 28(3)(e)).

A school asks, for one person identified as it recorded them (an email address, a name or a pupil
number), what breachflow holds about them (``export``), or to erase what no legal duty keeps
(``erase``). Both look only at the incidents that school is affected by, and of each only at what the
school may see of it (``workflow.visibility``): the disclosure fields (the reporter's details, which a
school never sees, only when the processor's staff act on the school's request — ``staff`` — and the
school is the incident's only controller; a school user asking by name must not learn who reported
its breach), the timeline events it reads with what it reads of them (for staff asking for an only
controller: every event, whole, as the reported reporter's details sit there),
the AP notifications covering it, its own record of informing the people affected, the notices sent to
it (sealed with its own key: a destroyed key leaves nothing to read), its own contacts and its own
user accounts that are the person's.

Matching is case-insensitive: an email address or pupil number matches as a whole token of a text, a
name as a whole-word phrase (any whitespace between its words), never inside an email address. An
erasure acts only on a recorded value that is exactly the one given (``Person.is_``). An incident that
cannot be read (a damaged row) is named as unreadable and the rest is answered.

Each is one command in one transaction: the incidents are locked in ascending id order, before the
school's row (the lock order of every command), and every incident in which something was found gets
a ``subject_exported`` or ``subject_erased`` event naming the kind of identifier, where it was found
and what was erased, never the identifier itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import crypto, schools, visibility
from breachflow.workflow.context import Context
from breachflow.workflow.db import write_transaction
from breachflow.workflow.errors import Conflict, DataDamaged, DataDestroyed, FieldProblem, InvalidInput
from breachflow.workflow.hooks import HeldNotice, Notifier
from breachflow.workflow.models import affected_t, ap_t, data_key_t, event_t, school_t, user_t
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit
from breachflow.workflow.validation import EMAIL

REPORTER_FIELDS = ("reporter_name", "reporter_contact")
MAX_IDENTIFIER = 254  # the longest email address; names and pupil numbers are shorter

ART_33_5 = ("the processor must document every breach and what was done about it (GDPR art. 33(5)); "
            "a wrong fact is corrected with an update, which the timeline keeps")
WHY_KEPT = {
    "incident": ART_33_5,
    "ap_notification": ART_33_5,
    "timeline": "the timeline is an append-only audit record: its events, earlier values among them, stay "
                "so that every chain still verifies",
    "notice": "a notice sent is the proof that the school was informed (GDPR art. 33(2) and 33(5))",
    "affected_school": "the school's own record of informing the people affected (GDPR art. 34): the school "
                       "changes it itself",
    "contact_person": "the school's contact person for the AP is the school's own master data: change it with "
                      "'breachflow school update' or PATCH /api/v1/schools/{brin}",
    "user_account": "a user account is the school's access to breachflow, not part of a breach's record: the "
                    "processor's staff change or remove it ('breachflow user'), a data-subject request does not",
    "not_exact": "only a recorded name or address that is exactly the one given is erased: this one merely "
                 "contains it, and may be someone else's",
    "last_contact": "the school's only notice address: a school must keep one to be told of breaches; add "
                    "another address first",
}


class IdentifierKind(StrEnum):
    """How a person is identified in a request."""

    email = "email"
    name = "name"
    pupil_number = "pupil_number"


@dataclass(frozen=True)
class Person:
    """The person a request is about, and how to find them in a text."""

    kind: IdentifierKind
    value: str
    pattern: re.Pattern[str] = field(repr=False, compare=False)

    @classmethod
    def of(cls, *, email: str | None = None, name: str | None = None, pupil_number: str | None = None) -> Person:
        """The person identified by exactly one of ``email``, ``name`` or ``pupil_number``;
        ``InvalidInput`` names each field that is wrong."""
        given = {k: v for k, v in (("email", email), ("name", name), ("pupil_number", pupil_number))
                 if v is not None}
        if len(given) != 1:
            names = given or dict.fromkeys(IdentifierKind)
            raise InvalidInput("invalid input", [FieldProblem(n, "give exactly one of email, name or pupil_number")
                                                 for n in names])
        kind, raw = IdentifierKind(next(iter(given))), next(iter(given.values()))
        value = " ".join(raw.split())
        problem = None
        if "\x00" in raw or len(raw) > MAX_IDENTIFIER:
            problem = f"must be at most {MAX_IDENTIFIER} characters, without NUL characters"
        elif kind is IdentifierKind.email and not EMAIL.match(value):
            problem = f"'{value}' is not an email address"
        elif kind is IdentifierKind.name and len(value) < 2:
            problem = "give the name as recorded, at least 2 characters"
        elif kind is IdentifierKind.pupil_number and not value:
            problem = "give the pupil number as recorded"
        if problem:
            raise InvalidInput("invalid input", [FieldProblem(kind.value, problem)])
        return cls(kind, value, _pattern(kind, value))

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds the person; a name never matches inside an email address."""
        if self.kind is IdentifierKind.name:
            text = _ADDRESS.sub(" ", text)
        return self.pattern.search(text) is not None

    def is_(self, value: str | None) -> bool:
        """Whether a recorded value is exactly this person's (case-insensitive, whitespace normalised):
        the only match an erasure acts on."""
        return value is not None and " ".join(value.split()).casefold() == self.value.casefold()


_ADDRESS = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")  # an email address in a text


def _pattern(kind: IdentifierKind, value: str) -> re.Pattern[str]:
    if kind is IdentifierKind.name:  # a whole-word phrase, any whitespace between the words
        return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, value.split())) + r"(?!\w)", re.IGNORECASE)
    # a whole token: not part of a longer address or number (a full stop may end a sentence)
    return re.compile(r"(?<![\w.%+@-])" + re.escape(value) + r"(?![\w%+@-]|\.\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    """One place that holds the person: the incident (``None`` for the school's own record), where
    in it, and the whole value there."""

    reference: str | None
    where: str
    value: Any


@dataclass(frozen=True)
class Kept:
    """A place that holds the person and stays, and why."""

    reference: str | None
    where: str
    why: str


@dataclass
class Export:
    """What breachflow holds about one person for one school."""

    school: str
    identifier: IdentifierKind
    items: list[Item] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # incidents that could not be read

    def as_json(self) -> dict[str, Any]:
        return {"school": self.school, "identifier": self.identifier.value,
                "items": [item.__dict__ for item in self.items], "unreadable": self.unreadable}


@dataclass
class Erasure:
    """What an erasure removed, and what it kept and why."""

    school: str
    identifier: IdentifierKind
    erased: list[Item] = field(default_factory=list)  # ``value``: ``None``, the value is gone
    kept: list[Kept] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"school": self.school, "identifier": self.identifier.value,
                "erased": [{"reference": e.reference, "where": e.where} for e in self.erased],
                "kept": [k.__dict__ for k in self.kept], "unreadable": self.unreadable}


def _leaves(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every text inside ``value`` (JSON-like), with where it sits below ``where``."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{where}[{i}]")


def _found(person: Person, value: Any, where: str, reference: str | None) -> list[Item]:
    return [Item(reference, w, text) for w, text in _leaves(value, where) if person.found_in(text)]


@dataclass(frozen=True)
class _School:
    id: int
    brin: str
    key: bytes | None  # ``None``: destroyed by retention


def _school(conn: Connection, ctx: Context, brin: str) -> _School:
    school_id = schools.ids_by_brin(conn, [brin], "school")[brin.strip().upper()]
    row = conn.execute(sa.select(school_t.c.brin, data_key_t.c.wrapped)
                       .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
                       .where(school_t.c.id == school_id)).one()
    try:
        key = ctx.keys.unwrap(row.wrapped)
    except DataDestroyed:
        key = None
    return _School(school_id, row.brin, key)


def _incident_ids(conn: Connection, school_id: int) -> list[int]:
    """The incidents whose part of the school retention has not destroyed, in lock order."""
    return list(conn.execute(sa.select(affected_t.c.incident_id)
                             .where(affected_t.c.school_id == school_id, affected_t.c.destroyed_at.is_(None))
                             .order_by(affected_t.c.incident_id)).scalars())


def _notifier(ctx: Context) -> Notifier:
    if ctx.notifier is None:
        raise Conflict("notices are not configured in this process: their texts cannot be read")
    return ctx.notifier


class _Opened:
    """One locked incident, and the places the school may see of it that hold the person."""

    def __init__(self, conn: Connection, school: _School, person: Person, unit: Unit,
                 notices: list[HeldNotice], staff: bool) -> None:
        self.unit = unit
        incident = unit.incident  # DataDamaged here: the record cannot be read
        self.reference = incident.reference
        sole = [s.school_id for s in incident.schools] == [school.id]  # the only controller of its record
        reporter = staff and sole  # staff judge what of the reporter to pass on; a school never sees it
        disclosure = incident.disclosure if reporter else visibility.disclosure_for_school(incident.disclosure)
        found = _found(person, disclosure.model_dump(mode="json"), "incident", self.reference)
        ap_rows = conn.execute(sa.select(ap_t.c.school_ids, ap_t.c.delay_reason)
                               .where(ap_t.c.incident_id == unit.loaded.id).order_by(ap_t.c.id)).all()
        for i, (covered, sealed) in enumerate(ap_rows):
            if school.id in covered and sealed is not None:
                found += _found(person, crypto.open_sealed(unit.data_key, sealed), f"ap_notification[{i}].delay_reason",
                                self.reference)
        for seq, kind, sealed in conn.execute(sa.select(event_t.c.seq, event_t.c.kind, event_t.c.payload)
                                              .where(event_t.c.incident_id == unit.loaded.id).order_by(event_t.c.seq)):
            payload = crypto.open_sealed(unit.data_key, sealed) if sealed is not None else {}
            # staff on a sole controller's request read the whole event (the reporter's details among its
            # changes); otherwise what the school reads of it
            shown, details = (True, payload) if reporter else visibility.event_for_school(kind, payload, school.brin)
            if shown:
                found += _found(person, details, f"timeline[{seq}].payload", self.reference)
        if school.key is not None:
            note = conn.execute(sa.select(affected_t.c.people_informed_note).where(
                affected_t.c.incident_id == unit.loaded.id, affected_t.c.school_id == school.id)).scalar()
            if note is not None:
                found += _found(person, crypto.open_sealed(school.key, note), "affected_school.people_informed_note",
                                self.reference)
        for notice in notices:
            found += [Item(self.reference, f"notice {notice.message_id} {part}", text)
                      for part, text in notice.texts.items() if person.found_in(text)]
        self.found = found


def _each_incident(conn: Connection, ctx: Context, school: _School, person: Person, actor: str, *,
                   system: bool, staff: bool, unreadable: list[str]) -> Iterator[_Opened]:
    """The school's incidents, each locked (ascending ids) and searched; one that cannot be read is
    named in ``unreadable`` and the others are searched all the same."""
    ids = _incident_ids(conn, school.id)
    notices: dict[int, list[HeldNotice]] = {}
    for notice in _notifier(ctx).notices_to(conn, school.id, ids):
        notices.setdefault(notice.incident_id, []).append(notice)
    for incident_id in ids:
        try:
            unit = Unit.open(conn, ctx, incident_id, actor, system=system)
        except DataDestroyed:
            continue  # retention destroyed its personal data: nothing of the person is left there
        try:
            opened = _Opened(conn, school, person, unit, notices.get(incident_id, []), staff)
        except (DataDamaged, ValueError):  # a damaged row: named, and the rest is answered
            unreadable.append(unit.loaded.reference)
            continue
        yield opened


def _where_kinds(items: list[Item]) -> list[str]:
    """Where things were found, without the values (for the timeline)."""
    return sorted({i.where for i in items})


def export(ctx: Context, brin: str, person: Person, actor: str, *, staff: bool = False) -> Export:
    """Everything breachflow holds about ``person`` that school ``brin`` may see, across its incidents
    and its own record; a ``subject_exported`` event on each incident where something was found.
    ``staff``: the processor's staff ask on the school's behalf (the reporter's details included)."""
    with write_transaction(ctx.engine) as conn:
        school = _school(conn, ctx, brin)
        result = Export(school.brin, person.kind)
        for opened in _each_incident(conn, ctx, school, person, actor, system=True, staff=staff,
                                     unreadable=result.unreadable):
            if not opened.found:
                continue
            result.items += opened.found
            opened.unit.record(EventKind.subject_exported, {
                "school": school.brin, "identifier": person.kind.value, "found": _where_kinds(opened.found),
                "count": len(opened.found)})
            opened.unit.finish()
        result.items += _school_record(conn, ctx, school, person)
    return result


def _school_record(conn: Connection, ctx: Context, school: _School, person: Person) -> list[Item]:
    users = _user_accounts(conn, school, person)
    if school.key is None:
        return users
    view = schools.get_in(conn, ctx, school.brin)
    return (_found(person, view.contacts, "school.contacts", None)
            + _found(person, view.contact_person, "school.contact_person", None) + users)


def _user_accounts(conn: Connection, school: _School, person: Person) -> list[Item]:
    """The school's own user accounts that are the person's: their email address is the one given, or
    their username is the name given (no other school's users)."""
    column = {IdentifierKind.email: "email", IdentifierKind.name: "username"}.get(person.kind)
    if column is None:
        return []
    rows = conn.execute(sa.select(user_t.c.username, user_t.c[column]).where(user_t.c.school_id == school.id)
                        .order_by(user_t.c.username)).all()
    return [Item(None, f"user_account[{username}].{column}", value) for username, value in rows if person.is_(value)]


def _why(where: str) -> str:
    """Why what sits at ``where`` stays."""
    for start, why in (("incident.", "incident"), ("ap_notification[", "ap_notification"), ("timeline[", "timeline"),
                       ("notice ", "notice"), ("affected_school.", "affected_school")):
        if where.startswith(start):
            return WHY_KEPT[why]
    raise ValueError(f"no reason known to keep {where}")


def erase(ctx: Context, brin: str, person: Person, actor: str, *, staff: bool = False) -> Erasure:
    """Erase ``person``'s details where no legal duty keeps them, for school ``brin``: the reporter's
    name and contact where the recorded name or contact is exactly this person's (only when ``staff``
    act on the school's request, in the school's own incidents: a school never sees them), through the
    same path as any field update (validated, sealed anew; they drive no clock), and their address
    among the school's contacts (unless it is the last). Everything else found stays and is named with the reason; a ``subject_erased`` event goes
    on each incident where something was found."""
    with write_transaction(ctx.engine) as conn:
        school = _school(conn, ctx, brin)
        result = Erasure(school.brin, person.kind)
        for opened in _each_incident(conn, ctx, school, person, actor, system=False, staff=staff,
                                     unreadable=result.unreadable):
            if not opened.found:
                continue
            disclosure = opened.unit.incident.disclosure
            reporter = {f"incident.{f}" for f in REPORTER_FIELDS}
            erased = []
            # the reporter is this person only when a recorded value is exactly theirs: the name for a
            # name, the contact for an email; found among the fields the school sees (in a shared
            # incident the reporter's are not among them)
            field_of = {IdentifierKind.name: "reporter_name", IdentifierKind.email: "reporter_contact"}.get(person.kind)
            if any(i.where == f"incident.{field_of}" and person.is_(i.value) for i in opened.found):
                erased = [f for f in REPORTER_FIELDS if getattr(disclosure, f) is not None]  # the reporter's details
                opened.unit.apply(dict.fromkeys(erased))
            result.erased += [Item(opened.reference, f"incident.{f}", None) for f in erased]
            kept = [i for i in opened.found if i.where.removeprefix("incident.") not in erased]
            result.kept += [Kept(opened.reference, i.where, WHY_KEPT["not_exact"] if i.where in reporter
                                 else _why(i.where)) for i in kept]
            opened.unit.record(EventKind.subject_erased, {
                "school": school.brin, "identifier": person.kind.value, "erased": erased,
                # the replay of the record (``workflow.audit``) reads the new values; the old ones
                # would repeat the person's details, so they are not written again
                "changes": {f: [None, None] for f in erased},
                "kept": _where_kinds(kept), "count": len(opened.found)})
            opened.unit.finish()
        _erase_contact(conn, ctx, school, person, result)
    return result


def _erase_contact(conn: Connection, ctx: Context, school: _School, person: Person, result: Erasure) -> None:
    """Take the person's address out of the school's contacts (not the last one); name the contact
    person's details and the school's user accounts that are the person's, which stay."""
    result.kept += [Kept(None, i.where, WHY_KEPT["user_account"]) for i in _user_accounts(conn, school, person)]
    if school.key is None:
        return
    view = schools.get_in(conn, ctx, school.brin)
    found = _found(person, view.contacts, "school.contacts", None)
    exact = [i for i in found if person.kind is IdentifierKind.email and person.is_(i.value)]
    remaining = [c for c in view.contacts if not (person.kind is IdentifierKind.email and person.is_(c))]
    if exact and remaining:
        schools.update_in(conn, ctx, brin=school.brin, changes={"contacts": remaining})
        result.erased += [Item(None, i.where, None) for i in exact]
    elif exact:
        result.kept += [Kept(None, i.where, WHY_KEPT["last_contact"]) for i in exact]
    result.kept += [Kept(None, i.where, WHY_KEPT["not_exact"]) for i in found if i not in exact]
    result.kept += [Kept(None, i.where, WHY_KEPT["contact_person"])
                    for i in _found(person, view.contact_person, "school.contact_person", None)]
