"""The dashboard's read: incidents in progress, the most urgent running clock first, from plain
columns only (nothing is decrypted).

An incident in progress (neither dismissed nor closed) is listed once, and so is a closed (or
dismissed) one while a follow-up action of it is open: that is work still to do. Those with a running clock
come first, ordered by their most urgent one, so the overdue lead; those without one (no discovery
time yet, or every clock met) follow, newest first. The first part of the list walks the
``deadline`` rows in due order (``ix_deadline_open_due``) and keeps each incident's soonest, with
one probe of ``ix_deadline_incident`` per row: a page costs the same however many incidents are
open. The rest of a page (its schools, clocks and handler) is read for the page's incidents at
once, in a fixed number of queries.

Who handles an incident: breachflow has no assignment. The dashboard names the actor of the
incident's latest event of a kind only handlers record (``HANDLING``: an update, a trigger, a note,
a contact, an AP notification, an update notice), not the dispatcher, the deadline scanner, a
reporter or a school's acknowledgement; read for the whole page in one query over the
``(incident_id, seq)`` index. ``None`` while nobody has acted on it yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import counts, pages, queries
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.deadlines import DeadlineKind
from breachflow.workflow.disclosure import CauseCategory
from breachflow.workflow.errors import InvalidInput
from breachflow.workflow.lifecycle import FINAL_STATES, State
from breachflow.workflow.models import action_t, affected_t, deadline_t, event_t, incident_t, school_t
from breachflow.workflow.responsibility import Responsibility, responsibility_for
from breachflow.workflow.schools import ids_by_brin
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.validation import choice

OPEN_STATES = tuple(s for s in State if s not in FINAL_STATES)
IN_PROGRESS = [s.value for s in OPEN_STATES]
HANDLING = (EventKind.updated, EventKind.transition, EventKind.note, EventKind.contact, EventKind.ap_notification,
            EventKind.notice_requested)
KINDS = [kind.value for kind in DeadlineKind]
TOP = pages.MAX_ID  # the position before the newest incident without a running clock


@dataclass(frozen=True)
class Clock:
    """A running clock; ``brin`` names the school of a per-school clock, ``action`` and ``owner`` the
    follow-up action of a ``follow_up`` clock."""

    kind: DeadlineKind
    due_at: datetime
    brin: str | None
    action: int | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Row:
    """One incident in progress as the dashboard lists it."""

    reference: str
    state: State
    responsibility: Responsibility
    schools: list[tuple[str, str]]  # (BRIN, name)
    handler: str | None
    clocks: list[Clock]  # soonest first


@dataclass(frozen=True)
class Overview:
    """A page of the dashboard, the number of incidents in each state, and the schools to filter by."""

    page: pages.Page[Row]
    by_state: dict[str, int]
    schools: list[tuple[str, str]]  # (BRIN, name), by BRIN


def overview(ctx: Context, *, state: str | None = None, brin: str | None = None,
             responsibility: str | None = None, limit: int = pages.DEFAULT_LIMIT,
             cursor: str | None = None) -> Overview:
    """A page of the incidents in progress, by state, school (``brin``) and responsibility, the most
    urgent running clock first; with the counts per state and the schools, in one read transaction."""
    position = _position(cursor)
    with read_transaction(ctx.engine) as conn:
        conditions = _conditions(conn, state, brin, responsibility)
        ids, next_cursor = _page_ids(conn, conditions, position, limit)
        page = pages.Page(_rows(conn, ids), next_cursor)
        by_state = counts.incidents_by_state(conn)
        found = _schools(conn)
    return Overview(page, by_state, found)


def schools(ctx: Context) -> list[tuple[str, str]]:
    """Every school as ``(BRIN, name)``, by BRIN: the choices of a school filter."""
    with read_transaction(ctx.engine) as conn:
        return _schools(conn)


def _schools(conn: Connection) -> list[tuple[str, str]]:
    return [(r.brin, r.name) for r in conn.execute(sa.select(school_t.c.brin, school_t.c.name).order_by(school_t.c.brin))]


def _position(cursor: str | None) -> tuple[Any, ...] | None:
    """A cursor's place: ``(due_at, deadline id)`` among the incidents with a running clock, or
    ``(incident id,)`` among those without."""
    if cursor is None:
        return None
    try:
        return pages.decode(cursor, pages.strict_time, pages.strict_int)
    except InvalidInput:
        return pages.decode(cursor, pages.strict_int)


def _conditions(conn: Connection, state: str | None, brin: str | None, responsibility: str | None) -> list[Any]:
    conditions = []
    if state is not None:
        conditions.append(incident_t.c.state == choice(State, state, "state"))
    if responsibility is not None:
        conditions.append(queries.responsibility_is(responsibility))
    if brin is not None:
        school_id = ids_by_brin(conn, [brin], "school")[brin.strip().upper()]
        conditions.append(incident_t.c.id.in_(sa.select(affected_t.c.incident_id)
                                              .where(affected_t.c.school_id == school_id)))
    return conditions


def _page_ids(conn: Connection, conditions: list[Any], position: tuple[Any, ...] | None,
              limit: int) -> tuple[list[int], str | None]:
    """The ids of one page, in the dashboard's order, and the next page's cursor."""
    ids: list[int] = []
    if position is None or len(position) == 2:
        first, earlier = deadline_t.alias("first"), deadline_t.alias("earlier")
        sooner = sa.exists().where(
            earlier.c.incident_id == first.c.incident_id, earlier.c.is_open == sa.true(),
            earlier.c.kind.in_(KINDS),
            (earlier.c.due_at < first.c.due_at) | ((earlier.c.due_at == first.c.due_at) & (earlier.c.id < first.c.id)))
        query = (sa.select(first.c.incident_id, first.c.due_at, first.c.id)
                 .join(incident_t, incident_t.c.id == first.c.incident_id)
                 .where(first.c.is_open == sa.true(), first.c.kind.in_(KINDS), ~sooner,
                        incident_t.c.state.in_(IN_PROGRESS) | (first.c.kind == DeadlineKind.follow_up.value),
                        *conditions)
                 .order_by(first.c.due_at, first.c.id).limit(limit + 1))
        if position is not None:
            due, last = position
            query = query.where((first.c.due_at > due) | ((first.c.due_at == due) & (first.c.id > last)))
        rows = conn.execute(query).all()
        if len(rows) > limit:
            return [r.incident_id for r in rows[:limit]], pages.encode(rows[limit - 1].due_at, rows[limit - 1].id)
        ids, position = [r.incident_id for r in rows], None
    start = position[0] if position is not None else TOP
    left = limit - len(ids)
    running = sa.exists().where(deadline_t.c.incident_id == incident_t.c.id, deadline_t.c.is_open == sa.true(),
                                deadline_t.c.kind.in_(KINDS))
    query = (sa.select(incident_t.c.id).where(incident_t.c.state.in_(IN_PROGRESS), ~running,
                                              *conditions)
             .order_by(incident_t.c.id.desc()).limit(left + 1))
    if start != TOP:
        query = query.where(incident_t.c.id < start)
    quiet = list(conn.execute(query).scalars())
    taken = quiet[:left]
    next_cursor = pages.encode(taken[-1] if taken else start) if len(quiet) > left else None
    return ids + taken, next_cursor


_IDS: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
_FACTS = sa.select(incident_t.c.id, incident_t.c.reference, incident_t.c.state,
                   incident_t.c.cause_category).where(incident_t.c.id.in_(_IDS))
_SCHOOLS = (sa.select(affected_t.c.incident_id, school_t.c.brin, school_t.c.name)
            .join(school_t, school_t.c.id == affected_t.c.school_id)
            .where(affected_t.c.incident_id.in_(_IDS)).order_by(school_t.c.brin))
_LATEST = (sa.select(event_t.c.incident_id, sa.func.max(event_t.c.seq).label("seq"))
           .where(event_t.c.incident_id.in_(_IDS), event_t.c.kind.in_([k.value for k in HANDLING]))
           .group_by(event_t.c.incident_id).subquery())
_HANDLERS = sa.select(event_t.c.incident_id, event_t.c.actor).join(
    _LATEST, (event_t.c.incident_id == _LATEST.c.incident_id) & (event_t.c.seq == _LATEST.c.seq))


def _clocks(dialect: str) -> sa.Select:
    """The running clocks of the incidents ``ids``, soonest first, read through each incident's rows."""
    return (sa.select(deadline_t.c.incident_id, deadline_t.c.kind, deadline_t.c.due_at, school_t.c.brin,
                      action_t.c.number, action_t.c.owner)
            .outerjoin(school_t, school_t.c.id == deadline_t.c.school_id)
            .outerjoin(action_t, action_t.c.id == deadline_t.c.action_id)
            .where(deadline_t.c.incident_id.in_(_IDS), queries.deadline_open(dialect, by_incident=True),
                   deadline_t.c.kind.in_(KINDS))
            .order_by(deadline_t.c.due_at, deadline_t.c.id))


_CLOCKS = {dialect: _clocks(dialect) for dialect in ("sqlite", "postgresql")}


def _rows(conn: Connection, ids: list[int]) -> list[Row]:
    """The dashboard rows of the incidents ``ids``, in that order, in four queries for them all
    (statements built once, so each page reuses their compiled form)."""
    if not ids:
        return []
    given = {"ids": ids}
    facts = {r.id: r for r in conn.execute(_FACTS, given)}
    schools: dict[int, list[tuple[str, str]]] = {i: [] for i in ids}
    for r in conn.execute(_SCHOOLS, given):
        schools[r.incident_id].append((r.brin, r.name))
    clocks: dict[int, list[Clock]] = {i: [] for i in ids}
    for r in conn.execute(_CLOCKS[conn.dialect.name], given):
        clocks[r.incident_id].append(Clock(DeadlineKind(r.kind), r.due_at, r.brin, r.number, r.owner))
    handlers: dict[int, str] = dict(conn.execute(_HANDLERS, given).all())  # see the module's docstring
    return [Row(facts[i].reference, State(facts[i].state),
                responsibility_for(CauseCategory(facts[i].cause_category) if facts[i].cause_category else None),
                schools[i], handlers.get(i), clocks[i])
            for i in ids if i in facts]
