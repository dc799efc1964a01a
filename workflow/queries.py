"""Reading incidents: one, a page by filter; their timelines and open deadlines.

Reads never change anything; each runs in one consistent read transaction. Lists select the ids
of one page from plain indexed columns (``deadline`` rows for the clocks) and decrypt only those.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import crypto, keycheck, lifecycle, pages, store
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.deadlines import Deadline, DeadlineKind, Status, deadlines
from breachflow.workflow.disclosure import CauseCategory
from breachflow.workflow.errors import DataDestroyed, NotFound, SecretUnavailable
from breachflow.workflow.incident import Incident
from breachflow.workflow.models import action_t, affected_t, data_key_t, deadline_t, event_t, incident_t, school_t
from breachflow.workflow.responsibility import Responsibility, responsibility_for
from breachflow.workflow.schools import ids_by_brin
from breachflow.workflow.validation import choice

log = logging.getLogger("breachflow.queries")


def get(ctx: Context, reference: str) -> Incident:
    """One incident, decrypted."""
    with read_transaction(ctx.engine) as conn:
        return get_in(conn, ctx, reference)


def get_in(conn: Connection, ctx: Context, reference: str) -> Incident:
    """One incident, decrypted, in the read transaction ``conn``."""
    return store.load(conn, ctx.keys, reference).incident


_SEEN_BY_SCHOOL = deadline_t.c.kind != DeadlineKind.follow_up.value  # the processor's own follow-up work


def _deadline_status_is(status: Status, school_id: int | None, now: datetime, due_soon: timedelta) -> Any:
    """Incidents whose most urgent clock (of those ``school_id`` sees; all when ``None``) has ``status``,
    as ``views.deadline_status`` decides it, from the indexed ``deadline`` rows."""
    def having(*conditions: Any) -> Any:
        seen = deadline_t.c.incident_id == incident_t.c.id
        if school_id is not None:
            seen &= _SEEN_BY_SCHOOL & (deadline_t.c.school_id.is_(None) | (deadline_t.c.school_id == school_id))
        return sa.exists().where(seen, *conditions)

    running = deadline_t.c.is_open == sa.true()
    overdue, soon = having(running, deadline_t.c.due_at < now), having(running, deadline_t.c.due_at <= now + due_soon)
    unmet = having(deadline_t.c.is_open == sa.false(), deadline_t.c.met_at.is_(None))  # settled without being met
    return {
        Status.overdue: overdue,
        Status.due_soon: ~overdue & soon,
        Status.ok: ~soon & having(running),
        Status.settled: ~having(running) & unmet,
        Status.met: having() & ~having(running) & ~unmet,
    }[status]


def responsibility_is(responsibility: str) -> Any:
    """Incidents whose responsibility (derived from the plain ``cause_category``) is ``responsibility``."""
    wanted = choice(Responsibility, responsibility, "responsibility")
    causes = [c.value for c in CauseCategory if responsibility_for(c) is wanted]
    matches: sa.ColumnElement[bool] = incident_t.c.cause_category.in_(causes)
    if wanted is Responsibility.unknown:
        matches = matches | incident_t.c.cause_category.is_(None)
    return matches


class Filters(TypedDict, total=False):
    """The register's filters, as ``incident_page`` takes them."""

    state: str | None
    brin: str | None
    responsibility: str | None
    deadline: str | None


def incident_page(
    ctx: Context,
    *,
    state: str | None = None,
    brin: str | None = None,
    responsibility: str | None = None,
    deadline: str | None = None,
    school_id: int | None = None,
    now: datetime | None = None,
    limit: int = pages.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> pages.Page[Incident]:
    """A page of the register's incidents, newest first, by state, school (``brin``), responsibility
    and the most urgent deadline's status; ``school_id`` limits it to one school's incidents, whose
    deadline status counts only the clocks that school sees. Only the page's rows are decrypted."""
    query = sa.select(incident_t.c.id).order_by(incident_t.c.id.desc()).limit(limit + 1)
    after = pages.decode(cursor, pages.strict_int)
    if after is not None:
        query = query.where(incident_t.c.id < after[0])
    if state is not None:
        query = query.where(incident_t.c.state == choice(lifecycle.State, state, "state"))
    if responsibility is not None:
        query = query.where(responsibility_is(responsibility))
    if deadline is not None:
        status = choice(Status, deadline, "deadline")
        query = query.where(_deadline_status_is(status, school_id, now or datetime.now(UTC), ctx.periods.due_soon))
    with read_transaction(ctx.engine) as conn:
        schools = [school_id] if school_id is not None else []
        if brin is not None:
            schools.append(ids_by_brin(conn, [brin], "school")[brin.strip().upper()])
        for one in schools:
            part = affected_t.c.school_id == one
            if one == school_id:  # a school's own list: not the incidents whose part of it retention destroyed
                part &= affected_t.c.destroyed_at.is_(None)
            query = query.where(incident_t.c.id.in_(sa.select(affected_t.c.incident_id).where(part)))
        ids, next_cursor = pages.cut(list(conn.execute(query).scalars()), limit, lambda i: (i,))
        page: pages.Page[Incident] = pages.Page([], next_cursor)
        page.items = readable(ctx, conn, ids, page.unreadable)
    return page


def readable(ctx: Context, conn: Connection, ids: Sequence[int], unreadable: list[str]) -> list[Incident]:
    """The incidents ``ids`` in that order, decrypted in a few queries for them all.

    One record that cannot be read or whose clocks cannot be computed (a forged or damaged row, a
    data key no master key opens) never breaks the read for the rest: it is left out, logged with
    its reference, and named in ``unreadable``. When no record of the page opens, the master keys
    are tried on the newest data keys: if they open none, the configuration lacks them and that is
    raised (503), not hidden; if they do, these records alone are unreadable.
    """
    found = store.load_many(conn, ctx.keys, ids) if ids else {}
    incidents, unopened = [], []
    for incident_id in ids:
        incident = found.get(incident_id)
        if incident is None:  # deleted since its id was read: gone, not damaged
            continue
        try:
            if isinstance(incident, store.Unreadable):
                raise incident.error
            deadlines(incident, ctx.periods)  # a clock that cannot be computed breaks every view of it
        except SecretUnavailable as exc:  # this record's key, or (when none opens) the configuration
            unopened.append(exc)
            log.warning("incident %s: no master key opens its data key; left out", incident.reference)
            unreadable.append(incident.reference)
            continue
        except Exception as exc:  # noqa: BLE001  (whatever is wrong with it, the others are read)
            log.warning("incident %s cannot be read and is left out: %s: %s", incident.reference,
                        type(exc).__name__, exc)
            unreadable.append(incident.reference)
            continue
        incidents.append(incident)
    if unopened and not incidents:
        try:
            keycheck.master_keys_match(conn, ctx.keys)
        except SecretUnavailable:  # the keys, not these records, are missing: the first refusal says which
            raise unopened[0] from None
    return incidents


@dataclass(frozen=True)
class Entry:
    """One timeline event as people read it; ``payload`` is ``None`` once its key is destroyed."""

    seq: int
    at: datetime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any] | None
    hash: str


def timeline_page(ctx: Context, reference: str, *, limit: int = pages.DEFAULT_LIMIT,
                  cursor: str | None = None, newest_first: bool = False) -> pages.Page[Entry]:
    """A page of the incident's timeline, oldest first (or newest first)."""
    after = pages.decode(cursor, pages.strict_int)
    beyond: sa.ColumnElement[bool]
    order: sa.ColumnElement[Any]
    if newest_first:  # the first page starts at the newest event, whatever its number
        beyond, order = (event_t.c.seq < after[0]) if after else sa.true(), event_t.c.seq.desc()
    else:
        beyond, order = event_t.c.seq > (after[0] if after else 0), event_t.c.seq
    with read_transaction(ctx.engine) as conn:
        row = conn.execute(
            sa.select(incident_t.c.id, data_key_t.c.wrapped)
            .join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id)
            .where(incident_t.c.reference == reference)
        ).first()
        if row is None:
            raise NotFound(f"incident {reference} does not exist")
        try:
            key = ctx.keys.unwrap(row.wrapped)
        except DataDestroyed:  # retention; a missing master key is the configuration's fault: 503
            key = None
        events = conn.execute(sa.select(event_t).where(event_t.c.incident_id == row.id, beyond)
                              .order_by(order).limit(limit + 1)).all()
    events, next_cursor = pages.cut(events, limit, lambda e: (e.seq,))
    return pages.Page([
        Entry(e.seq, e.at, e.actor, e.kind, e.from_state, e.to_state,
              crypto.open_sealed(key, e.payload) if key and e.payload is not None else ({} if key else None),
              e.hash)
        for e in events
    ], next_cursor)


@dataclass(frozen=True)
class OpenDeadline:
    """An open deadline as the deadlines view shows it: plain columns only, nothing decrypted."""

    reference: str
    deadline: Deadline
    brin: str | None
    clock_moved_at: datetime | None
    clock_moved_by: str | None
    owner: str | None = None  # of a follow-up action


_OPEN_DEADLINES = (
    sa.select(deadline_t, incident_t.c.reference, incident_t.c.clock_moved_at, incident_t.c.clock_moved_by,
              school_t.c.brin, action_t.c.number, action_t.c.owner)
    .join(incident_t, incident_t.c.id == deadline_t.c.incident_id)
    .outerjoin(school_t, school_t.c.id == deadline_t.c.school_id)
    .outerjoin(action_t, action_t.c.id == deadline_t.c.action_id)
    .where(deadline_t.c.kind.in_([kind.value for kind in DeadlineKind]))  # a row planted past breachflow is the audit's
    .order_by(deadline_t.c.due_at, deadline_t.c.id)
)


def deadline_open(dialect: str, *, by_incident: bool) -> Any:
    """``deadline.is_open``, as a condition. When a page is read from a few incidents' rows, SQLite
    must not use it to walk every open deadline in due order looking for theirs: it keeps no
    statistics to know they are few, and a unary ``+`` takes a term out of its index choice.
    PostgreSQL's planner knows."""
    if by_incident and dialect == "sqlite":
        return sa.literal_column("+deadline.is_open") == 1
    return deadline_t.c.is_open == sa.true()


def open_deadline_page(ctx: Context, *, school_id: int | None = None, limit: int = pages.DEFAULT_LIMIT,
                       cursor: str | None = None) -> pages.Page[OpenDeadline]:
    """A page of the unmet deadlines, soonest first (those of incidents in progress, and the open
    follow-up actions of any); with ``school_id``, those that school sees (its own clocks, and the
    processor's AP clock of its incidents; not the processor's follow-up actions)."""
    query = _OPEN_DEADLINES.limit(limit + 1)
    after = pages.decode(cursor, pages.strict_time, pages.strict_int)
    if after is not None:
        due, last = after
        query = query.where((deadline_t.c.due_at > due) | ((deadline_t.c.due_at == due) & (deadline_t.c.id > last)))
    with read_transaction(ctx.engine) as conn:
        if school_id is not None:  # its incidents first: a page is then sorted from theirs, not sought among all
            its_incidents = sa.select(affected_t.c.incident_id).where(affected_t.c.school_id == school_id)
            query = query.where(deadline_t.c.incident_id.in_(its_incidents), _SEEN_BY_SCHOOL,
                                deadline_t.c.school_id.is_(None) | (deadline_t.c.school_id == school_id))
        query = query.where(deadline_open(conn.dialect.name, by_incident=school_id is not None))
        rows = conn.execute(query).all()
    rows, next_cursor = pages.cut(rows, limit, lambda r: (r.due_at, r.id))
    return pages.Page([
        OpenDeadline(r.reference, Deadline(DeadlineKind(r.kind), r.due_at, r.met_at, r.school_id,
                                           action_id=r.action_id, action_number=r.number),
                     r.brin, r.clock_moved_at, r.clock_moved_by, r.owner)
        for r in rows
    ], next_cursor)
