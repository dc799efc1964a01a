"""Follow-up actions (seed 6a, the evaluation): what was learned, to be done by someone by a time.

An action has a description (sealed with the incident's data key), an owner, a due time, whether
``closed`` must wait for it (``blocking``) and a status (open, done, dropped). They are numbered
1, 2, … per incident. ``evaluated`` records them with the evaluation (``service.fire``); ``add``
records more from ``evaluation`` until the incident is closed; ``settle`` marks one done or
dropped, in any state (an open non-blocking action outlives the closing). Every add and settle is
on the timeline; each action is a ``follow_up`` clock (``workflow.deadlines``), so it shows among
the deadlines and is reminded of until it is settled.

Decisions:

* The owner is the username of a handler or manager of breachflow: someone the reminders
  reach and who can settle it. Free text could name nobody, and then nobody would be reminded.
* ``due`` is an aware ISO time, or a date meaning the end of that day in Europe/Amsterdam
  (23:59:59 there); stored in UTC. It must lie ahead when the action is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

from breachflow.workflow import crypto
from breachflow.workflow.accounts import Role
from breachflow.workflow.context import Context
from breachflow.workflow.deadlines import AMSTERDAM
from breachflow.workflow.errors import Conflict, FieldProblem, InvalidInput, NotFound
from breachflow.workflow.incident import Action, ActionStatus, Incident
from breachflow.workflow.lifecycle import State
from breachflow.workflow.models import action_t, user_t
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit, change
from breachflow.workflow.validation import LATEST_DATE, Items, LongText, ShortText, choice, optional_text

OWNER_ROLES = (Role.handler, Role.manager)  # who the reminders reach, and who can see the incident
ADDING_STATES = frozenset({State.evaluation, State.ap_notification})  # from the evaluation until closed
END_OF_DAY = time(23, 59, 59)


def _due(value: object) -> object:
    """A due time as given: an ISO time with its zone, or a date alone."""
    if isinstance(value, date):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. +01:00 or Z), or a date alone")
        return value
    if not isinstance(value, str):
        raise ValueError("give an ISO time with a zone, or a date (YYYY-MM-DD)")
    text = value.strip()
    try:
        moment = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text[:40]}' is no ISO time with a zone, nor a date (YYYY-MM-DD)") from None
    if isinstance(moment, datetime) and moment.tzinfo is None:
        raise ValueError("give a time zone (e.g. +01:00 or Z), or a date alone")
    return moment


Due = Annotated[datetime | date, BeforeValidator(_due)]


class NewAction(BaseModel):
    """A follow-up action as a handler gives it."""

    model_config = ConfigDict(extra="forbid")
    description: Annotated[LongText, Field(min_length=1)] = Field(description="what must be done")
    owner: Annotated[ShortText, Field(min_length=1, max_length=80)] = Field(
        description="username of the handler or manager who sees to it")
    due: Due = Field(description=(
        "when it must be done: an ISO time with a zone, or a date (the end of that day, Europe/Amsterdam)"))
    blocking: StrictBool = Field(False, description="the incident cannot be closed while it is open")


_NEW_ACTIONS = TypeAdapter(Items[NewAction])


def due_time(due: datetime | date) -> datetime:
    """A given due time in UTC: a date is the end of that day in Europe/Amsterdam."""
    if isinstance(due, datetime):
        return due.astimezone(UTC)
    return datetime.combine(due, END_OF_DAY, AMSTERDAM).astimezone(UTC)


def _validated(unit: Unit, given: Sequence[NewAction | dict[str, Any]]) -> list[tuple[NewAction, datetime]]:
    """The actions ``given``, each with its due time in UTC; ``InvalidInput`` names every bad field
    (``actions.<index>.<field>``)."""
    try:
        actions = _NEW_ACTIONS.validate_python(
            [a.model_dump() if isinstance(a, NewAction) else a for a in given])
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "actions.") from None
    owners = {a.owner for a in actions}
    staff = set(unit.conn.execute(sa.select(user_t.c.username).where(
        user_t.c.username.in_(owners), user_t.c.role.in_([r.value for r in OWNER_ROLES]))).scalars())
    problems, result = [], []
    for n, action in enumerate(actions):
        due_at = due_time(action.due)
        if action.owner not in staff:
            problems.append(FieldProblem(f"actions.{n}.owner", f"'{action.owner}' is no handler or manager "
                                                               "of breachflow"))
        if due_at <= unit.now:
            problems.append(FieldProblem(f"actions.{n}.due", "must lie ahead"))
        elif due_at.astimezone(AMSTERDAM).date() >= LATEST_DATE:
            problems.append(FieldProblem(f"actions.{n}.due", f"must be before {LATEST_DATE}"))
        result.append((action, due_at))
    if problems:
        raise InvalidInput("invalid input", problems)
    return result


def record(unit: Unit, given: Sequence[NewAction | dict[str, Any]]) -> None:
    """Record follow-up actions on the unit's incident, numbered on from its last; on the timeline
    (``actions_recorded``, the descriptions sealed in its payload)."""
    actions = _validated(unit, given)
    if not actions:
        return
    number = max((a.number for a in unit.incident.actions), default=0)
    rows, recorded = [], []
    for n, (action, due_at) in enumerate(actions, start=number + 1):
        rows.append({"incident_id": unit.loaded.id, "number": n,
                     "description": crypto.seal(unit.data_key, action.description),
                     "owner": action.owner, "due_at": due_at, "blocking": action.blocking,
                     "status": ActionStatus.open.value, "created_at": unit.now, "created_by": unit.actor})
        recorded.append({"number": n, "description": action.description, "owner": action.owner,
                         "due_at": due_at.isoformat(), "blocking": action.blocking})
    unit.conn.execute(sa.insert(action_t), rows)
    unit.actions_changed()
    unit.record(EventKind.actions_recorded, {"actions": recorded})


def add(ctx: Context, *, reference: str, actor: str, actions: Sequence[NewAction | dict[str, Any]],
        expected_version: int | None = None) -> Incident:
    """Record follow-up actions on an incident in ``evaluation`` or later, until it is closed."""
    if not actions:
        raise InvalidInput("invalid input", [FieldProblem("actions", "give at least one action")])
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        if unit.incident.state not in ADDING_STATES:
            raise Conflict(f"incident {reference} is {unit.incident.state}; follow-up actions are added from "
                           "evaluation until it is closed")
        record(unit, actions)
    return unit.result


def settle(ctx: Context, *, reference: str, actor: str, number: int, status: str, note: str | None = None,
           expected_version: int | None = None) -> Incident:
    """Mark follow-up action ``number`` done or dropped, with an optional note (on the timeline only)."""
    settled = choice(ActionStatus, status, "status")
    if settled is ActionStatus.open:
        raise InvalidInput("invalid input", [FieldProblem("status", "settle an action as done or dropped")])
    note = optional_text(note)
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        action = next((a for a in unit.incident.actions if a.number == number), None)
        if action is None:
            raise NotFound(f"incident {reference} has no follow-up action {number}")
        if not action.is_open:
            raise Conflict(f"follow-up action {number} of {reference} is {action.status} already")
        settle_in(unit, action, settled, note)
    return unit.result


def settle_in(unit: Unit, action: Action, status: ActionStatus, note: str | None) -> None:
    """Within ``unit``'s command: mark open ``action`` done or dropped, on the timeline."""
    unit.conn.execute(sa.update(action_t).where(action_t.c.id == action.id).values(
        status=status.value, settled_at=unit.now, settled_by=unit.actor))
    unit.actions_changed()
    unit.record(EventKind.action_settled, {"number": action.number, "status": status.value, "note": note})
