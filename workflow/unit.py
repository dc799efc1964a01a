"""The one door for every change to an incident: a unit of work.

A command opens a unit (``change`` for an existing incident, ``Unit.create`` for a report) and
says only what happened: field changes (``apply``, recorded old → new), a trigger (``fire``,
decided by the machine), timeline events (``record``). ``finish`` does the rest, in the command's
transaction: it hands the events to the notifier, which decides whether schools must hear of
them (writing outbox rows through the same connection and returning its own events), seals and
chains every event, writes the incident row (fields, state, version, chain head) with a check
that nobody else wrote it first, and returns the incident as it now is.

The incident row is locked when the unit opens (PostgreSQL ``FOR UPDATE``; SQLite's write
transaction holds the database lock): every command locks its incident before any other row, so
all writers take locks in one order. System units (delivery outcomes, reminders) append events
without bumping the version a handler edits against.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import Connection

from breachflow.workflow import clocks, crypto, keycheck, lifecycle, store, timeline
from breachflow.workflow.context import Context
from breachflow.workflow.db import inserted_id, write_transaction
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.errors import Conflict, FieldProblem, InvalidInput, StaleVersion
from breachflow.workflow.incident import Incident
from breachflow.workflow.models import data_key_t, incident_t
from breachflow.workflow.timeline import Event, EventKind

log = logging.getLogger("breachflow.unit")
CLOCK_FIELDS = frozenset({"discovered_at", "cause_category"})  # the disclosure fields deadlines read

_UPDATE = sa.update(incident_t).where(
    incident_t.c.id == sa.bindparam("b_id"),
    incident_t.c.version == sa.bindparam("b_version"),
    incident_t.c.event_count == sa.bindparam("b_count"),
)


def clock() -> datetime:
    """The time a unit of work runs at (UTC)."""
    return datetime.now(UTC)


def validated(ctx: Context, disclosure: Disclosure, fields: dict[str, Any] | None) -> Disclosure:
    """``disclosure`` with ``fields`` applied and validated; ``InvalidInput`` names every bad field."""
    if not fields:
        return disclosure
    try:
        new = Disclosure.model_validate(disclosure.model_dump() | fields)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from None
    configured = ctx.settings.affected_systems
    unknown = [s for s in new.affected_systems or () if s not in configured]
    if unknown:
        raise InvalidInput("invalid input", [
            FieldProblem("affected_systems", f"unknown system '{s}'; configured: {', '.join(configured)}")
            for s in unknown])
    return new


def moves_a_clock(changes: dict[str, list[Any]]) -> bool:
    """Whether changes to a confirmed incident (``{field: [old, new]}``, as on the timeline) correct
    a fact that drives its deadlines: the discovery time, or a cause that was known."""
    discovered, cause = changes.get("discovered_at"), changes.get("cause_category")
    return bool((discovered and discovered[0] is not None) or (cause and cause[0] not in (None, "unknown")))


def _clock_problems(changes: dict[str, list[Any]], reason: str | None) -> list[FieldProblem]:
    """Refusals for clearing a clock-driving fact of a confirmed incident, or moving it without a reason."""
    problems = []
    discovered, cause = changes.get("discovered_at"), changes.get("cause_category")
    if discovered and discovered[0] is not None and discovered[1] is None:
        problems.append(FieldProblem("discovered_at", "the discovery time drives the deadlines: correct it, "
                                                      "it cannot be cleared"))
    if cause and cause[0] is not None and (cause[1] is None or (cause[1] == "unknown" and cause[0] != "unknown")):
        problems.append(FieldProblem("cause_category", "a known cause decides who notifies the AP: correct "
                                                       "it, it cannot be cleared"))
    if not problems and not reason and moves_a_clock(changes):
        problems.append(FieldProblem("reason", "a correction of the discovery time or of a known cause needs "
                                               "a reason (it moves the deadlines)"))
    return problems


class Unit:
    """One command's work on one incident (see the module's docstring)."""

    def __init__(self, conn: Connection, ctx: Context, loaded: store.Loaded, actor: str, now: datetime,
                 *, system: bool = False) -> None:
        self.conn, self.ctx, self.actor, self.now, self.system = conn, ctx, actor, now, system
        self.loaded = loaded
        self.data_key, self.data_key_id = loaded.data_key, loaded.data_key_id
        self.events: list[Event] = []
        self._current: Incident | None = None
        self._disclosure_changed = False
        self._state_changed = False
        self._clock_moved = False
        self._clocks_changed = False  # something the deadline rows derive from changed
        self._first_confirmed = False
        self._require_notices: str | None = None
        self._version = loaded.version

    @classmethod
    def open(cls, conn: Connection, ctx: Context, reference: str | int, actor: str, *,
             expected_version: int | None = None, system: bool = False, now: datetime | None = None) -> Unit:
        """Lock and load the incident inside ``conn``'s transaction, checking the caller's version."""
        loaded = store.load(conn, ctx.keys, reference, for_update=True)
        if expected_version is not None and expected_version != loaded.version:
            raise StaleVersion(f"incident {loaded.reference} is at version {loaded.version}, not "
                               f"{expected_version}; reload it and try again")
        return cls(conn, ctx, loaded, actor, now or clock(), system=system)

    @classmethod
    def create(cls, conn: Connection, ctx: Context, actor: str, *, reference: str, source: str,
               now: datetime) -> Unit:
        """A new incident in the initial state, with its own data key, ready for its first event."""
        keycheck.master_keys_match(conn, ctx.keys)
        key, wrapped = ctx.keys.new_data_key()
        key_id = inserted_id(conn.execute(sa.insert(data_key_t).values(wrapped=wrapped, created_at=now)))
        empty = Disclosure()
        incident_id = inserted_id(conn.execute(sa.insert(incident_t).values(
            reference=reference, state=lifecycle.INITIAL_STATE.value, version=0, source=source, reported_at=now,
            reported_by=actor, updated_at=now, data_key_id=key_id, event_count=0, head_hash=timeline.GENESIS,
            **store.seal_disclosure(key, empty),
        )))
        new = Incident(incident_id, reference, lifecycle.INITIAL_STATE, 0, source, now, empty)
        return cls(conn, ctx, store.Loaded(incident_id, reference, 0, 0, timeline.GENESIS, key, lambda: new, key_id),
                   actor, now)

    @property
    def before(self) -> Incident:
        """The incident as the unit found it."""
        return self.loaded.incident

    @property
    def incident(self) -> Incident:
        """The incident with what the unit changed so far."""
        if self._current is None:
            self._current = self.before
        return self._current

    after = incident  # what the notifier reads

    def apply(self, fields: dict[str, Any] | None, *, reason: str | None = None) -> dict[str, list[Any]]:
        """Apply and validate field changes; return them as ``{field: [old, new]}``.

        Once an incident is confirmed, the facts that drive its clocks are corrected with a
        ``reason``, never cleared.
        """
        old = self.incident.disclosure
        new = validated(self.ctx, old, fields)
        changes = store.changed_fields(old, new)
        if not changes:
            return {}
        if self.incident.confirmed_at is not None:  # a reopened incident was confirmed all the same
            problems = _clock_problems(changes, reason)
            if problems:
                raise InvalidInput("invalid change", problems)
            self._clock_moved = self._clock_moved or moves_a_clock(changes)
        self._clocks_changed = self._clocks_changed or bool(CLOCK_FIELDS & changes.keys())
        self._current = replace(self.incident, disclosure=new)
        self._disclosure_changed = True
        return changes

    def fire(self, trigger: str) -> lifecycle.State:
        """Move the incident by ``trigger``, as the machine decides; return the new state."""
        before = self.incident.state
        state = lifecycle.advance(self.incident, trigger)
        self._current = replace(self.incident, state=state)
        self._state_changed = True
        self._clocks_changed = self._clocks_changed or bool({before, state} & lifecycle.FINAL_STATES)
        if trigger == lifecycle.Trigger.confirm and self.incident.confirmed_at is None:
            self._current = replace(self.incident, confirmed_at=self.now)
            self._first_confirmed = True
        return state

    def schools_changed(self) -> None:
        """Reload the affected schools after their rows changed."""
        self._current = replace(self.incident, schools=store.load_schools(self.conn, self.ctx.keys, self.loaded.id))
        self._clocks_changed = True

    def ap_notifications_changed(self) -> None:
        """Reload the AP notifications after one was recorded."""
        self._current = replace(self.incident, ap_notifications=store.load_ap_notifications(self.conn, self.loaded.id))
        self._clocks_changed = True

    def actions_changed(self) -> None:
        """Reload the follow-up actions after their rows changed (each open one is a clock)."""
        self._current = replace(self.incident, actions=store.load_actions(self.conn, self.loaded.id, self.data_key))
        self._clocks_changed = True

    def record(self, kind: EventKind, payload: dict[str, Any] | None = None, *,
               from_state: str | None = None, to_state: str | None = None) -> None:
        """State that something happened; it goes on the timeline when the unit finishes."""
        self.events.append(Event(kind, payload or {}, from_state, to_state))

    def require_notices(self, refusal: str) -> None:
        """Refuse the whole command with ``refusal`` unless the notifier queued a notice."""
        self._require_notices = refusal

    def finish(self) -> None:
        """Notify, chain and write the row, inside the transaction; ``result`` then holds the incident."""
        if not self.system:
            self.incident  # noqa: B018  (the caller reads ``result`` after the transaction closed)
        notes = self.ctx.notifier.after_change(self.conn, self) if self.ctx.notifier and self.events else []
        if self._require_notices and not notes:
            raise Conflict(self._require_notices)
        keycheck.audit_key_matches(self.conn, self.ctx.audit_key)
        loaded = self.loaded
        seq, head = loaded.event_count, loaded.head_hash
        for ev in self.events + notes:
            seq += 1
            payload = crypto.seal(self.data_key, ev.payload) if ev.payload else None
            head = timeline.append(self.conn, self.ctx.audit_key, incident_id=loaded.id, seq=seq, prev_hash=head, at=self.now,
                                   actor=self.actor, kind=ev.kind, from_state=ev.from_state,
                                   to_state=ev.to_state, payload=payload)
        version = loaded.version if self.system else loaded.version + 1
        values: dict[str, Any] = {"event_count": seq, "head_hash": head, "version": version,
                                  "b_id": loaded.id, "b_version": loaded.version, "b_count": loaded.event_count}
        if not self.system:
            values["updated_at"] = self.now
        if self._state_changed:
            values["state"] = self.incident.state
        if self._disclosure_changed:
            values |= store.seal_disclosure(self.data_key, self.incident.disclosure)
        if self._clock_moved:
            values |= {"clock_moved_at": self.now, "clock_moved_by": self.actor}
        if self._first_confirmed:
            values["confirmed_at"] = self.now
        if self.conn.execute(_UPDATE, values).rowcount != 1:
            raise StaleVersion(f"incident {loaded.reference} was changed by another command; try again")
        if self._clocks_changed:
            clocks.sync(self.conn, self.incident, self.ctx.periods)
        self._version = version
        if log.isEnabledFor(logging.DEBUG):  # what happened, never who or what was written
            log.debug("incident %s: %s%s", loaded.reference, ", ".join(ev.kind for ev in self.events + notes),
                      f", now {values['state']}" if "state" in values else "")

    @property
    def result(self) -> Incident:
        """The incident as the finished unit left it."""
        if self._clock_moved:
            return replace(self.incident, version=self._version, clock_moved_at=self.now, clock_moved_by=self.actor)
        return replace(self.incident, version=self._version)


@contextmanager
def change(ctx: Context, reference: str, actor: str, *, expected_version: int | None = None) -> Iterator[Unit]:
    """One command on one incident: a write transaction, the unit, and its finish on success.

    The incident as the command left it is ``unit.result`` after the block.
    """
    with write_transaction(ctx.engine) as conn:
        unit = Unit.open(conn, ctx, reference, actor, expected_version=expected_version)
        yield unit
        unit.finish()
