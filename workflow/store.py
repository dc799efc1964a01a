"""Rows ↔ the engine's ``Incident``: sealing personal fields, loading with the row lock, destroying
a data key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, select, update

from breachflow.workflow import crypto
from breachflow.workflow.disclosure import FACT_FIELDS, PERSONAL_FIELDS, Disclosure
from breachflow.workflow.errors import DataDamaged, DataDestroyed, NotFound
from breachflow.workflow.incident import (
    Action,
    ActionStatus,
    AffectedSchool,
    ApKind,
    ApNotification,
    Incident,
    InformedVia,
    PeopleInformed,
)
from breachflow.workflow.models import action_t, affected_t, ap_t, data_key_t, incident_t, school_t


class Loaded:
    """An incident as a command holds it: its chain head and data key at once, the decrypted
    incident (disclosure, schools, AP notifications) built only when asked for."""

    def __init__(self, id: int, reference: str, version: int, event_count: int, head_hash: str,
                 data_key: bytes, build: Callable[[], Incident], data_key_id: int) -> None:
        self.id, self.reference, self.version = id, reference, version
        self.event_count, self.head_hash, self.data_key = event_count, head_hash, data_key
        self.data_key_id = data_key_id
        self._build = build
        self._incident: Incident | None = None

    @property
    def incident(self) -> Incident:
        # not functools.cached_property: before Python 3.12 it holds one lock for every instance
        # while it builds, so concurrent reads would wait for each other's queries
        if self._incident is None:
            self._incident = self._build()
        return self._incident


def _incident(conn: Connection, row: Any, key: bytes, keys: crypto.KeyRing) -> Incident:
    return Incident(
        id=row.id, reference=row.reference, state=row.state, version=row.version, source=row.source,
        reported_at=row.reported_at, disclosure=disclosure_of(row, key),
        schools=load_schools(conn, keys, row.id), ap_notifications=load_ap_notifications(conn, row.id),
        confirmed_at=row.confirmed_at, clock_moved_at=row.clock_moved_at, clock_moved_by=row.clock_moved_by,
        actions=load_actions(conn, row.id, key),
    )


def seal_disclosure(key: bytes, disclosure: Disclosure) -> dict[str, Any]:
    """Column values for a disclosure: facts plain, personal fields sealed together."""
    values = disclosure.model_dump(mode="json", include=set(FACT_FIELDS))
    for name in ("discovered_at", "breach_started_at", "breach_ended_at"):
        values[name] = getattr(disclosure, name)
    personal = disclosure.model_dump(mode="json", include=set(PERSONAL_FIELDS), exclude_none=True)
    values["personal"] = crypto.seal(key, personal)
    return values


def disclosure_of(row: Any, key: bytes | None) -> Disclosure:
    """An incident row's disclosure fields, the sealed ones opened with ``key`` (``None``: its key
    was destroyed by retention, the plain facts alone remain); ``DataDamaged`` when what is stored
    is no disclosure (a row written past breachflow)."""
    values = {name: getattr(row, name) for name in FACT_FIELDS}
    if row.personal is not None and key is not None:
        values.update(crypto.open_sealed(key, row.personal))
    try:
        return Disclosure.model_validate(values)
    except ValidationError as exc:
        raise DataDamaged(f"incident {row.reference} holds values no handler could have stored: "
                          + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


# The hot path's statements are built once: building and cache-keying a statement per call
# costs more than executing it (bench/engine.py).
_SELECT = select(incident_t, data_key_t.c.wrapped).join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id)
_BY_REFERENCE = _SELECT.where(incident_t.c.reference == bindparam("key"))
_BY_ID = _SELECT.where(incident_t.c.id == bindparam("key"))
_FOR_UPDATE = {query: query.with_for_update(of=incident_t) for query in (_BY_REFERENCE, _BY_ID)}
_SCHOOL_KEY = data_key_t.alias("school_key")  # seals the school's own part: its record of informing people
_SCHOOL_COLUMNS = (affected_t, school_t.c.brin, school_t.c.name, _SCHOOL_KEY.c.wrapped.label("school_key"))
_SCHOOLS = (
    select(*_SCHOOL_COLUMNS)
    .join(school_t, school_t.c.id == affected_t.c.school_id)
    .join(_SCHOOL_KEY, _SCHOOL_KEY.c.id == school_t.c.data_key_id)
    .where(affected_t.c.incident_id == bindparam("incident_id"))
    .order_by(school_t.c.brin)
)
_AP_NOTIFICATIONS = select(ap_t).where(ap_t.c.incident_id == bindparam("incident_id")).order_by(ap_t.c.id)
_ACTIONS = select(action_t).where(action_t.c.incident_id == bindparam("incident_id")).order_by(action_t.c.number)


def load(conn: Connection, keys: crypto.KeyRing, reference: str | int, *, for_update: bool = False) -> Loaded:
    """The incident ``reference`` (or its id); ``NotFound`` if absent.

    ``for_update`` locks the row on PostgreSQL; SQLite's write transaction already holds the lock.
    """
    query = _BY_ID if isinstance(reference, int) else _BY_REFERENCE
    locking = for_update and conn.dialect.name != "sqlite"
    if locking:
        query = _FOR_UPDATE[query]
    row = conn.execute(query, {"key": reference}).first()
    if row is None:
        raise NotFound(f"incident {reference} does not exist")
    wrapped = row.wrapped
    if locking:  # after waiting for the lock PostgreSQL re-reads the incident, not its joined key:
        wrapped = conn.execute(_WRAPPED, {"key_id": row.data_key_id}).scalar()  # retention may have destroyed it
    key = keys.unwrap(wrapped)
    return Loaded(row.id, row.reference, row.version, row.event_count, row.head_hash, key,
                  lambda: _incident(conn, row, key, keys), row.data_key_id)


_MANY_SCHOOL_KEY = data_key_t.alias("school_key")  # seals the school's own part: its record of informing people
_SCHOOL_COLUMNS = (affected_t, school_t.c.brin, school_t.c.name, _SCHOOL_KEY.c.wrapped.label("school_key"))
_MANY_SCHOOLS = (
    select(*_SCHOOL_COLUMNS)
    .join(school_t, school_t.c.id == affected_t.c.school_id)
    .join(_SCHOOL_KEY, _SCHOOL_KEY.c.id == school_t.c.data_key_id)
    .where(affected_t.c.incident_id.in_(bindparam("ids", expanding=True)))
    .order_by(school_t.c.brin)
)
_MANY = _SELECT.where(incident_t.c.id.in_(bindparam("ids", expanding=True)))
_MANY_AP = select(ap_t).where(ap_t.c.incident_id.in_(bindparam("ids", expanding=True))).order_by(ap_t.c.id)
_MANY_ACTIONS = (select(action_t).where(action_t.c.incident_id.in_(bindparam("ids", expanding=True)))
                 .order_by(action_t.c.incident_id, action_t.c.number))


@dataclass(frozen=True)
class Unreadable:
    """A record ``load_many`` could not read, and why."""

    reference: str
    error: Exception


def load_many(conn: Connection, keys: crypto.KeyRing, ids: Sequence[int]) -> dict[int, Incident | Unreadable]:
    """The incidents ``ids``, decrypted, in four queries: each id maps to its incident, or to why
    it cannot be read (an unopenable data key, a damaged row); absent ids are left out. An incident
    whose key retention destroyed is read without its personal fields and action descriptions: the
    register keeps it."""
    schools: dict[int, list[AffectedSchool]] = defaultdict(list)
    for r in conn.execute(_MANY_SCHOOLS, {"ids": ids}):
        schools[r.incident_id].append(_school(r, keys))
    notified: dict[int, list[ApNotification]] = defaultdict(list)
    for r in conn.execute(_MANY_AP, {"ids": ids}):
        notified[r.incident_id].append(_ap_notification(r))
    actions: dict[int, list[Any]] = defaultdict(list)
    for r in conn.execute(_MANY_ACTIONS, {"ids": ids}):
        actions[r.incident_id].append(r)
    found: dict[int, Incident | Unreadable] = {}
    for row in conn.execute(_MANY, {"ids": ids}):
        try:
            key = _key_or_none(keys, row.wrapped)
            found[row.id] = Incident(
                id=row.id, reference=row.reference, state=row.state, version=row.version, source=row.source,
                reported_at=row.reported_at, disclosure=disclosure_of(row, key),
                schools=schools[row.id], ap_notifications=notified[row.id], confirmed_at=row.confirmed_at,
                clock_moved_at=row.clock_moved_at, clock_moved_by=row.clock_moved_by,
                actions=[_action(r, key) for r in actions[row.id]])
        except Exception as exc:  # noqa: BLE001  (the caller decides what an unreadable record means)
            found[row.id] = Unreadable(row.reference, exc)
    return found


def _key_or_none(keys: crypto.KeyRing, wrapped: bytes | None) -> bytes | None:
    try:
        return keys.unwrap(wrapped)
    except DataDestroyed:  # retention; a missing master key raises
        return None


def _school(r: Any, keys: crypto.KeyRing) -> AffectedSchool:
    return AffectedSchool(
        school_id=r.school_id, brin=r.brin, name=r.name, affected_count=r.affected_count,
        informed_at=r.informed_at, informed_via=r.informed_via,
        told_to_notify_ap_at=r.told_to_notify_ap_at, acknowledged_at=r.acknowledged_at,
        people=_people_informed(r, keys), destroyed_at=r.destroyed_at,
    )


def _people_informed(r: Any, keys: crypto.KeyRing) -> PeopleInformed | None:
    """The school's record of informing the people affected; its note opened with the school's key
    (``None`` once that key, or this school's part, was destroyed)."""
    if r.people_informed is None:
        return None
    note = None
    if r.people_informed_note is not None and r.school_key is not None and r.destroyed_at is None:
        note = crypto.open_sealed(keys.unwrap(r.school_key), r.people_informed_note)
    return PeopleInformed(
        informed=r.people_informed, recorded_at=r.people_informed_recorded_at, at=r.people_informed_at,
        via=InformedVia(r.people_informed_via) if r.people_informed_via else None,
        count=r.people_informed_count, note=note)


_WRAPPED = select(data_key_t.c.wrapped).where(data_key_t.c.id == bindparam("key_id"))
_DESTROY = update(data_key_t).where(data_key_t.c.id == bindparam("key_id")).values(
    wrapped=None, destroyed_at=bindparam("at"))


def destroy_data_key(conn: Connection, keys: crypto.KeyRing, key_id: int, at: datetime) -> None:
    """Destroy a data key for good: what was sealed under it can no longer be opened (retention,
    crypto-shredding), while the rows and the timeline's chain stay. This process forgets it too."""
    wrapped = conn.execute(_WRAPPED, {"key_id": key_id}).scalar()
    conn.execute(_DESTROY, {"key_id": key_id, "at": at})
    if wrapped is not None:
        keys.forget(wrapped)


def load_schools(conn: Connection, keys: crypto.KeyRing, incident_id: int) -> list[AffectedSchool]:
    return [_school(r, keys) for r in conn.execute(_SCHOOLS, {"incident_id": incident_id})]


def load_ap_notifications(conn: Connection, incident_id: int) -> list[ApNotification]:
    return [_ap_notification(r) for r in conn.execute(_AP_NOTIFICATIONS, {"incident_id": incident_id})]


def load_actions(conn: Connection, incident_id: int, key: bytes) -> list[Action]:
    """The incident's follow-up actions, by number, their descriptions opened with ``key``."""
    return [_action(r, key) for r in conn.execute(_ACTIONS, {"incident_id": incident_id})]


def _action(row: Any, key: bytes | None) -> Action:
    """A ``follow_up_action`` row; without ``key`` (clocks only) the description is left empty.
    ``DataDamaged`` for a status breachflow never writes (a row planted past it)."""
    try:
        status = ActionStatus(row.status)
    except ValueError:
        raise DataDamaged(f"follow-up action {row.number} of incident #{row.incident_id} holds a status "
                          f"no handler could have stored") from None
    return Action(id=row.id, number=row.number, description=crypto.open_sealed(key, row.description) if key else "",
                  owner=row.owner, due_at=row.due_at, blocking=row.blocking, status=status,
                  created_at=row.created_at, created_by=row.created_by, settled_at=row.settled_at,
                  settled_by=row.settled_by)


def _ap_notification(row: Any) -> ApNotification:
    return ApNotification(ApKind(row.kind), row.ap_reference, row.notified_at, list(row.school_ids))


def changed_fields(old: Disclosure, new: Disclosure) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for every field that differs (JSON-ready)."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return {name: [before[name], after[name]] for name in after if before[name] != after[name]}


def clock_inputs(conn: Connection, ids: Any) -> list[Incident]:
    """The incidents whose ids ``ids`` (a list or a subquery) selects, with only what their deadlines
    read (state, discovery time, cause, when each school was informed and told to notify, AP
    notifications, follow-up actions): plain columns, nothing decrypted, four queries in all. Not for anything but
    clocks: names and sealed fields are left empty; a row no handler could have written is left out."""
    schools: dict[int, list[AffectedSchool]] = defaultdict(list)
    for r in conn.execute(select(affected_t.c.incident_id, affected_t.c.school_id, affected_t.c.informed_at,
                                 affected_t.c.told_to_notify_ap_at).where(affected_t.c.incident_id.in_(ids))):
        schools[r.incident_id].append(AffectedSchool(r.school_id, "", "", informed_at=r.informed_at,
                                                     told_to_notify_ap_at=r.told_to_notify_ap_at))
    notified: dict[int, list[ApNotification]] = defaultdict(list)
    for r in conn.execute(select(ap_t).where(ap_t.c.incident_id.in_(ids)).order_by(ap_t.c.id)):
        notified[r.incident_id].append(_ap_notification(r))
    actions: dict[int, list[Action]] = defaultdict(list)
    damaged: set[int] = set()
    plain = [c for c in action_t.c if c.name != "description"]
    for r in conn.execute(select(*plain).where(action_t.c.incident_id.in_(ids)).order_by(action_t.c.number)):
        try:
            actions[r.incident_id].append(_action(r, None))
        except DataDamaged:  # written past breachflow: the audit names it
            damaged.add(r.incident_id)
    incidents = []
    for row in conn.execute(select(incident_t.c.id, incident_t.c.reference, incident_t.c.state, incident_t.c.version,
                                 incident_t.c.source, incident_t.c.reported_at, incident_t.c.discovered_at,
                                 incident_t.c.cause_category).where(incident_t.c.id.in_(ids))):
        try:
            facts = Disclosure(discovered_at=row.discovered_at, cause_category=row.cause_category)
        except ValidationError:  # written past breachflow: the audit names it
            continue
        if row.id in damaged:
            continue
        incidents.append(Incident(row.id, row.reference, row.state, row.version, row.source, row.reported_at, facts,
                                  schools[row.id], notified[row.id], actions=actions[row.id]))
    return incidents
