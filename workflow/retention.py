"""Retention (seed section 4): a school's personal data is destroyed two months after its contract ends.

A school is due at ``due_at(contract_ends_on)``: 00:00 in Amsterdam on the day after the contract
ended, two calendar months on. For a due school S, ``apply`` destroys, one incident at a time
(each in its own transaction, the incident locked first like every command):
- S's part of each incident it is affected by: the sealed content of the notices to S and of what
  the last notice to S said, whatever key sealed them (old ones were sealed with the incident's), none
  still to send is sent (the context's ``Notifier.forget``: the outbox is notifications' to touch);
  S's note on informing the people affected. The affected-school row is marked ``destroyed_at``; a
  ``retention_destroyed`` event names S's BRIN code and what went.
- the incident's own data key, once every school affected by it has had its part destroyed (the
  event that says so goes on the timeline before the key that seals it goes), with what is left of
  its notices (the staff's reminders); an incident shared with a school that is not due keeps its
  key, and that school its part.
Then, in a transaction per school: S's own data key (its contact addresses, contact person and every
notice sealed with it) and the personal data of its user accounts (email, password hash; sessions
ended, tokens revoked). The register row (reference, dates, states, categories, counts), the
deadline rows and the timeline's chain stay. Every destruction writes a ``retention_log`` row that
names no person. A run that stops part-way leaves each incident done or not done; the next run
finishes the rest, and a run with nothing due changes nothing.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import actions, pages, store
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.errors import DataDestroyed
from breachflow.workflow.hooks import Notifier
from breachflow.workflow.incident import ActionStatus
from breachflow.workflow.models import (
    affected_t,
    data_key_t,
    incident_t,
    retention_t,
    school_t,
    session_t,
    token_t,
    user_t,
)
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit

log = logging.getLogger("breachflow.retention")
ACTOR = "retention"
MONTHS = 2  # seed section 4: two months after the contract ends
DROPPED = "dropped by retention: the incident's personal data was destroyed"  # an open follow-up action's end


class What(StrEnum):
    """What a ``retention_log`` row says was destroyed."""

    school_part = "school_part"  # a school's part of an incident
    incident_key = "incident_key"  # an incident's data key
    school_key = "school_key"  # a school's data key
    accounts = "accounts"  # the personal data of a school's user accounts


def due_at(contract_ends_on: date) -> datetime:
    """When the data of a school whose contract ends on ``contract_ends_on`` is due for destruction
    (UTC): 00:00 in Amsterdam on the day after the last day kept, which is the same day two calendar
    months after the contract's end (the last day of that month when the contract ended on the last
    day of its month, or when that month is shorter). Never a day early: 30 December keeps until
    28 February, 30 July until 30 September."""
    months = contract_ends_on.month - 1 + MONTHS
    year, month = contract_ends_on.year + months // 12, months % 12 + 1
    last_of_month = calendar.monthrange(year, month)[1]
    ends_a_month = contract_ends_on.day == calendar.monthrange(contract_ends_on.year, contract_ends_on.month)[1]
    kept_until = date(year, month, last_of_month if ends_a_month else min(contract_ends_on.day, last_of_month))
    day = kept_until + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=AMSTERDAM).astimezone(UTC)


@dataclass(frozen=True)
class Part:
    """A due school's part of one incident, still to destroy."""

    incident_id: int
    reference: str
    note: bool  # the school's note on informing the people affected (besides its notices, always)
    incident_key: bool  # the incident's own key goes too: no school keeps a part of it


@dataclass(frozen=True)
class SchoolPlan:
    """A due school and what is still to destroy of it."""

    school_id: int
    brin: str
    contract_ends_on: date
    due_at: datetime
    parts: list[Part] = field(default_factory=list)
    school_key: bool = False  # its own data key is still there
    accounts: int = 0  # user accounts with personal data, a session or a token still there


def _due_schools(conn: Connection, now: datetime) -> list[Any]:
    rows = conn.execute(sa.select(school_t.c.id, school_t.c.brin, school_t.c.contract_ends_on,
                                  school_t.c.data_key_id, data_key_t.c.wrapped)
                        .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
                        .where(school_t.c.contract_ends_on.is_not(None)).order_by(school_t.c.brin)).all()
    return [r for r in rows if due_at(r.contract_ends_on) <= now]


def _accounts_left(conn: Connection, school_id: int) -> int:
    """The school's user accounts that still hold an email address, a password hash, a running
    session or a token that works."""
    users = sa.select(user_t.c.id).where(user_t.c.school_id == school_id)
    live_session = sa.exists().where(session_t.c.user_id == user_t.c.id, session_t.c.ended_at.is_(None))
    live_token = sa.exists().where(token_t.c.user_id == user_t.c.id, token_t.c.revoked_at.is_(None))
    return conn.execute(sa.select(sa.func.count()).select_from(user_t).where(
        user_t.c.id.in_(users),
        user_t.c.email.is_not(None) | user_t.c.password_hash.is_not(None) | live_session | live_token)).scalar_one()


def _parts(conn: Connection, school_id: int, due_ids: set[int]) -> list[Part]:
    """The parts of school ``school_id`` not yet destroyed; an incident's key goes with them when
    every school affected by it is destroyed already or among ``due_ids``."""
    rows = conn.execute(
        sa.select(affected_t.c.incident_id, affected_t.c.people_informed_note, incident_t.c.reference)
        .join(incident_t, incident_t.c.id == affected_t.c.incident_id)
        .where(affected_t.c.school_id == school_id, affected_t.c.destroyed_at.is_(None))
        .order_by(incident_t.c.id)).all()
    parts = []
    for r in rows:
        kept = conn.execute(sa.select(sa.func.count()).select_from(affected_t).where(
            affected_t.c.incident_id == r.incident_id, affected_t.c.destroyed_at.is_(None),
            affected_t.c.school_id.not_in(due_ids))).scalar_one()
        parts.append(Part(r.incident_id, r.reference, r.people_informed_note is not None, kept == 0))
    return parts


def plan(ctx: Context, now: datetime) -> list[SchoolPlan]:
    """What ``apply`` at ``now`` would destroy, per due school that has anything left; changes nothing."""
    with read_transaction(ctx.engine) as conn:
        due = _due_schools(conn, now)
        due_ids = {s.id for s in due}
        found = []
        for s in due:
            entry = SchoolPlan(s.id, s.brin, s.contract_ends_on, due_at(s.contract_ends_on),
                               _parts(conn, s.id, due_ids), s.wrapped is not None, _accounts_left(conn, s.id))
            if entry.parts or entry.school_key or entry.accounts:
                found.append(entry)
    return found


def _notifier(ctx: Context) -> Notifier:
    if ctx.notifier is None:
        raise ValueError("retention needs a context with notices (notifications_context) to destroy them")
    return ctx.notifier


def apply(ctx: Context, now: datetime, actor: str = ACTOR) -> list[SchoolPlan]:
    """Destroy what is due at ``now`` (see the module's docstring); return what was due. Each
    incident in its own transaction, then each school's key and accounts in one. ``ctx`` must carry
    the notifier (``notifications.worker.notifications_context``): it forgets the notices."""
    _notifier(ctx)  # before anything is destroyed
    due = plan(ctx, now)
    by_incident: dict[tuple[int, str], list[SchoolPlan]] = defaultdict(list)
    for school in due:
        for part in school.parts:
            by_incident[part.incident_id, part.reference].append(school)
    for incident in sorted(by_incident):  # incidents in one order, like every command that locks several
        with write_transaction(ctx.engine) as conn:
            _destroy_parts(conn, ctx, incident, by_incident[incident], now, actor)
    for school in due:
        with write_transaction(ctx.engine) as conn:
            _destroy_school(conn, ctx, school, now, actor)
    if due:
        log.info("retention destroyed what was due of school(s) %s: their parts of %d incident(s), their keys and "
                 "their accounts' email addresses and passwords (see 'breachflow retention log')",
                 ", ".join(s.brin for s in due), len(by_incident))
    return due


def _log(conn: Connection, now: datetime, actor: str, what: str, *, school: SchoolPlan | None = None,
         incident: tuple[int, str] | None = None, data_key_id: int | None = None,
         detail: dict[str, Any] | None = None) -> None:
    conn.execute(sa.insert(retention_t).values(
        at=now, actor=actor, what=what, school_id=school.school_id if school else None,
        brin=school.brin if school else None, incident_id=incident[0] if incident else None,
        reference=incident[1] if incident else None, data_key_id=data_key_id,
        contract_ended_on=school.contract_ends_on if school else None, detail=detail))


def _destroy_parts(conn: Connection, ctx: Context, incident: tuple[int, str], schools: list[SchoolPlan],
                   now: datetime, actor: str) -> None:
    """In one transaction: the parts of ``schools`` in ``incident`` (its id and reference) not destroyed
    yet (another run may have done them), then the incident's key if no school keeps a part."""
    incident_id = incident[0]
    try:
        unit: Unit | None = Unit.open(conn, ctx, incident_id, actor, system=True, now=now)
    except DataDestroyed:  # its key went already (by hand, or another run while this one waited for the
        unit = None  # lock: store.load reads the key again under it): its row is locked; the rest goes without an event
    left = {r.school_id for r in conn.execute(sa.select(affected_t.c.school_id).where(
        affected_t.c.incident_id == incident_id, affected_t.c.destroyed_at.is_(None)))}
    for school in schools:
        if school.school_id not in left:
            continue
        destroyed = _destroy_part(conn, ctx, incident_id, school.school_id, now)
        if unit is not None:
            unit.record(EventKind.retention_destroyed, {"school": school.brin, **destroyed})
        _log(conn, now, actor, What.school_part, school=school, incident=incident, detail=destroyed)
        left.discard(school.school_id)
    if unit is None:
        return
    if not left:  # said while the key that seals it is still there
        for action in unit.incident.actions:  # open work no one could read or settle any more
            if action.is_open:
                actions.settle_in(unit, action, ActionStatus.dropped, DROPPED)
        unit.record(EventKind.retention_destroyed, {"incident_key": True})
    unit.finish()
    if left:
        return
    _notifier(ctx).forget(conn, incident_id, None)  # the staff's reminders, sealed with the incident's key
    store.destroy_data_key(conn, ctx.keys, unit.data_key_id, now)
    _log(conn, now, actor, What.incident_key, incident=incident, data_key_id=unit.data_key_id)


def _destroy_part(conn: Connection, ctx: Context, incident_id: int, school_id: int, now: datetime) -> dict[str, Any]:
    """Destroy one school's part of one incident; say what went (counts, no person)."""
    notices = _notifier(ctx).forget(conn, incident_id, school_id)
    ours = (affected_t.c.incident_id == incident_id) & (affected_t.c.school_id == school_id)
    note = conn.execute(sa.select(affected_t.c.people_informed_note).where(ours)).scalar() is not None
    conn.execute(sa.update(affected_t).where(ours).values(people_informed_note=None, destroyed_at=now))
    return {"notices": notices, "people_informed_note": note}


def _destroy_school(conn: Connection, ctx: Context, school: SchoolPlan, now: datetime, actor: str) -> None:
    """The school's own key, once none of its parts is left, and its accounts' personal data."""
    query = (sa.select(school_t.c.data_key_id, data_key_t.c.wrapped)
             .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id).where(school_t.c.id == school.school_id))
    if conn.dialect.name != "sqlite":  # another worker's run waits, then finds it gone (SQLite: the write lock)
        query = query.with_for_update(of=data_key_t)
    row = conn.execute(query).one()
    parts_left = conn.execute(sa.select(affected_t.c.id).where(
        affected_t.c.school_id == school.school_id, affected_t.c.destroyed_at.is_(None)).limit(1)).first()
    if row.wrapped is not None and parts_left is None:
        store.destroy_data_key(conn, ctx.keys, row.data_key_id, now)
        _log(conn, now, actor, What.school_key, school=school, data_key_id=row.data_key_id)
    users = sa.select(user_t.c.id).where(user_t.c.school_id == school.school_id).scalar_subquery()
    accounts = _accounts_left(conn, school.school_id)
    if not accounts:
        return
    sessions = conn.execute(sa.update(session_t).where(session_t.c.user_id.in_(users), session_t.c.ended_at.is_(None))
                            .values(ended_at=now)).rowcount
    tokens = conn.execute(sa.update(token_t).where(token_t.c.user_id.in_(users), token_t.c.revoked_at.is_(None))
                          .values(revoked_at=now)).rowcount
    conn.execute(sa.update(user_t).where(user_t.c.school_id == school.school_id)
                 .values(email=None, password_hash=None))
    _log(conn, now, actor, What.accounts, school=school,
         detail={"accounts": accounts, "sessions_ended": sessions, "tokens_revoked": tokens})


@dataclass(frozen=True)
class LogEntry:
    """One ``retention_log`` row as the operator reads it."""

    id: int
    at: datetime
    actor: str
    what: str
    brin: str | None
    reference: str | None
    data_key_id: int | None
    contract_ended_on: date | None
    detail: dict[str, Any] | None


def log_page(ctx: Context, *, limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None) -> pages.Page[LogEntry]:
    """A page of the retention log, oldest first."""
    query = sa.select(retention_t).order_by(retention_t.c.id).limit(limit + 1)
    after = pages.decode(cursor, pages.strict_int)
    if after is not None:
        query = query.where(retention_t.c.id > after[0])
    with read_transaction(ctx.engine) as conn:
        rows, next_cursor = pages.cut(conn.execute(query).all(), limit, lambda r: (r.id,))
    return pages.Page([LogEntry(r.id, r.at, r.actor, r.what, r.brin, r.reference, r.data_key_id,
                                r.contract_ended_on, r.detail) for r in rows], next_cursor)
