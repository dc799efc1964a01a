"""Commands on incidents. Each goes through one unit of work (``workflow.unit``): it says what
happened and the unit locks, checks the version, records old → new, chains the events, lets the
notifier queue what schools must hear, and commits all of it together, or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from breachflow.workflow import actions as follow_up
from breachflow.workflow import crypto, lifecycle, store
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.deadlines import AMSTERDAM, DeadlineKind, deadlines
from breachflow.workflow.disclosure import Source
from breachflow.workflow.errors import Conflict, FieldProblem, InvalidInput
from breachflow.workflow.incident import AffectedSchool, ApKind, ContactChannel, Incident, InformedVia
from breachflow.workflow.lifecycle import NOT_YET_CONFIRMED, Trigger
from breachflow.workflow.models import affected_t, ap_t, counter_t, data_key_t, idempotency_t, incident_t, school_t
from breachflow.workflow.schools import ids_by_brin
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import Unit, change, clock
from breachflow.workflow.validation import choice, optional_text, plausible_time, required_text

_AFFECTED = (affected_t.c.incident_id == sa.bindparam("b_incident")) & (
    affected_t.c.school_id == sa.bindparam("b_school"))


def _next_reference(conn: Connection, now: datetime) -> str:
    year = now.astimezone(AMSTERDAM).year
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    number = conn.execute(
        dialect.insert(counter_t).values(year=year, last=1)
        .on_conflict_do_update(index_elements=["year"], set_={"last": counter_t.c.last + 1})
        .returning(counter_t.c.last)
    ).scalar_one()
    return f"DL-{year}-{number:05d}"


def _set_schools(unit: Unit, counts: dict[str, int | None]) -> dict[str, Any]:
    """Add (or recount) affected schools; return what changed for the timeline."""
    for brin, count in counts.items():
        if count is not None and count < 0:
            raise InvalidInput("invalid input", [FieldProblem(f"schools.{brin}", "count must be 0 or more")])
    ids = ids_by_brin(unit.conn, list(counts), "schools", retained=True)
    existing = {s.school_id: s.affected_count for s in unit.incident.schools}
    changes, where = {}, {"b_incident": unit.loaded.id}
    for brin, school_id in ids.items():
        count = counts[brin]
        if school_id not in existing:
            unit.conn.execute(sa.insert(affected_t).values(incident_id=unit.loaded.id, school_id=school_id,
                                                           affected_count=count))
            changes[brin] = [None, count]
        elif existing[school_id] != count:
            unit.conn.execute(sa.update(affected_t).where(_AFFECTED).values(affected_count=count),
                              where | {"b_school": school_id})
            changes[brin] = [existing[school_id], count]
    return changes


def _remove_schools(unit: Unit, brins: list[str], reason: str | None) -> dict[str, Any]:
    """Remove schools not affected after all; once confirmed, that takes a reason (their clocks go),
    and an informed one, or the last one, stays."""
    ids = ids_by_brin(unit.conn, brins, "remove_schools")
    by_id = {s.school_id: s for s in unit.incident.schools}
    confirmed = unit.incident.confirmed_at is not None
    problems = [FieldProblem("remove_schools", f"{by_id[i].name} was informed: correct its count, it cannot "
                                               "be removed") for i in ids.values()
                if confirmed and i in by_id and by_id[i].informed_at is not None]
    if confirmed and by_id and not set(by_id) - set(ids.values()):
        problems.append(FieldProblem("remove_schools", "a confirmed incident keeps at least one affected school"))
    if confirmed and not problems and not reason:
        problems.append(FieldProblem("reason", "removing a school from a confirmed incident stops its deadlines: "
                                               "give the reason"))
    if problems:
        raise InvalidInput("invalid change", problems)
    changes = {}
    for brin, school_id in ids.items():
        if school_id in by_id:
            unit.conn.execute(sa.delete(affected_t).where(_AFFECTED),
                              {"b_incident": unit.loaded.id, "b_school": school_id})
            changes[brin] = ["affected", None]
    return changes


def _normalise_counts(schools: dict[str, int | None] | None) -> dict[str, int | None]:
    return {b.strip().upper(): c for b, c in (schools or {}).items()}


@dataclass(frozen=True)
class Idempotency:
    """A client's ``Idempotency-Key`` for a report, with a hash of the request it came with."""

    user_id: int
    key: str
    request_hash: str


def _replayed(conn: Connection, ctx: Context, idempotency: Idempotency) -> Incident | None:
    row = conn.execute(
        sa.select(incident_t.c.reference, idempotency_t.c.request_hash)
        .join(incident_t, incident_t.c.id == idempotency_t.c.incident_id)
        .where(idempotency_t.c.user_id == idempotency.user_id, idempotency_t.c.key == idempotency.key)
    ).first()
    if row is None:
        return None
    if row.request_hash != idempotency.request_hash:
        raise Conflict("this Idempotency-Key was used for a different report; use a new key")  # names nothing
    return store.load(conn, ctx.keys, row.reference).incident


def report(ctx: Context, *, actor: str, source: str, fields: dict[str, Any] | None = None,
           schools: dict[str, int | None] | None = None, idempotency: Idempotency | None = None) -> Incident:
    """Register a report in the breach register (seed 6a); it starts in ``reported``.

    With ``idempotency``, a retried report returns the incident the first attempt created.
    """
    source = choice(Source, source, "source")
    counts = _normalise_counts(schools)
    try:
        with write_transaction(ctx.engine) as conn:
            if idempotency is not None and (replayed := _replayed(conn, ctx, idempotency)) is not None:
                return replayed
            now = clock()
            unit = Unit.create(conn, ctx, actor, reference=_next_reference(conn, now), source=source.value, now=now)
            changes = unit.apply(fields)
            school_changes = _set_schools(unit, counts) if counts else {}
            if school_changes:
                unit.schools_changed()
            if idempotency is not None:
                conn.execute(sa.insert(idempotency_t).values(
                    user_id=idempotency.user_id, key=idempotency.key, request_hash=idempotency.request_hash,
                    incident_id=unit.loaded.id, created_at=now))
            unit.record(EventKind.reported, {"reference": unit.loaded.reference, "source": source.value,
                                             "changes": changes, "schools": school_changes},
                        to_state=lifecycle.INITIAL_STATE)
            unit.finish()
            return unit.result
    except sa.exc.IntegrityError:
        if idempotency is None:
            raise
        with read_transaction(ctx.engine) as conn:  # a concurrent retry won the race
            replayed = _replayed(conn, ctx, idempotency)
        if replayed is None:
            raise
        return replayed


def update(ctx: Context, *, reference: str, actor: str, fields: dict[str, Any] | None = None,
           schools: dict[str, int | None] | None = None, remove_schools: list[str] | None = None,
           reason: str | None = None, expected_version: int | None = None) -> Incident:
    """Change disclosure fields and affected schools (with their counts).

    A correction of the discovery time or of a known cause of a confirmed incident needs ``reason``.
    """
    if not fields and not schools and not remove_schools:
        raise InvalidInput("nothing to update", [FieldProblem("fields", "give at least one field or school")])
    reason = optional_text(reason)
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        if unit.incident.state in lifecycle.FINAL_STATES:
            raise Conflict(f"incident {reference} is {unit.incident.state}; reopen it to change it")
        changes = unit.apply(fields, reason=reason)
        school_changes = _set_schools(unit, _normalise_counts(schools)) if schools else {}
        if remove_schools:
            school_changes |= _remove_schools(unit, remove_schools, reason)
        if school_changes:
            unit.schools_changed()
        if changes or school_changes:
            unit.record(EventKind.updated, {"changes": changes, "schools": school_changes, "reason": reason})
    return unit.result


def fire(ctx: Context, *, reference: str, trigger: str, actor: str, fields: dict[str, Any] | None = None,
         reason: str | None = None, actions: list[Any] | None = None,
         expected_version: int | None = None) -> Incident:
    """Apply ``fields`` (if any), then fire ``trigger``; all or nothing is stored. ``evaluated`` takes
    the follow-up actions that came out of the evaluation (``workflow.actions``); its guard into
    ``closed`` sees them, so a blocking one given here keeps a school-caused incident open."""
    trigger = choice(Trigger, trigger, "trigger")
    reason = optional_text(reason)
    if actions and trigger is not Trigger.evaluated:
        raise InvalidInput("invalid input", [FieldProblem("actions", "follow-up actions come with 'evaluated' "
                                                                     "(or are added on their own)")])
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        was = unit.incident.state
        changes = unit.apply(fields, reason=reason)
        if trigger is Trigger.reopen and "reopen_reason" not in changes:  # the last reopening's reason is not this one's
            raise InvalidInput("invalid input", [FieldProblem("reopen_reason", "give the reason for this reopening")])
        if actions:
            follow_up.record(unit, actions)
        state = unit.fire(trigger)
        unit.record(EventKind.transition, {"trigger": trigger.value, "changes": changes, "reason": reason},
                    from_state=was, to_state=state)
    return unit.result


def reopen(ctx: Context, *, reference: str, actor: str, reason: str, expected_version: int | None = None) -> Incident:
    """Take a dismissed or closed incident back to triage, with the reason."""
    return fire(ctx, reference=reference, trigger=Trigger.reopen, actor=actor, fields={"reopen_reason": reason},
                expected_version=expected_version)


def send_update(ctx: Context, *, reference: str, actor: str, message: str | None = None,
                expected_version: int | None = None) -> Incident:
    """Queue an update notice to every affected school already informed: what changed since."""
    if ctx.notifier is None:
        raise Conflict("notices are not configured in this process")
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        if unit.incident.state in NOT_YET_CONFIRMED:
            raise Conflict(f"incident {reference} is {unit.incident.state}; schools are notified of confirmed breaches")
        unit.record(EventKind.notice_requested, {"message": optional_text(message)})
        unit.require_notices(f"no school of {reference} has had a first notice yet")
    return unit.result


def add_note(ctx: Context, *, reference: str, actor: str, text: str, expected_version: int | None = None) -> Incident:
    """Add a free-text note to the timeline."""
    text = required_text(text, "text", "the note's text")
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        unit.record(EventKind.note, {"text": text})
    return unit.result


def _plausible(moment: datetime | None, name: str, now: datetime) -> datetime:
    """``moment`` (default ``now``) in UTC, as plausible as any time a user gives (``validation.plausible_time``)."""
    if moment is None:
        return now
    if moment.tzinfo is None:
        raise InvalidInput("invalid input", [FieldProblem(name, "give a time zone (e.g. +01:00 or Z)")])
    try:
        return plausible_time(moment)
    except ValueError as exc:
        raise InvalidInput("invalid input", [FieldProblem(name, str(exc))]) from None


def _after_the_start(incident: Incident, moment: datetime, name: str) -> None:
    """Refuse a time before the incident was known (a backdated AP notification would meet its deadline)."""
    known = min(t for t in (incident.disclosure.discovered_at, incident.reported_at) if t is not None)
    if moment < known:
        raise InvalidInput("invalid input", [FieldProblem(
            name, f"must not be before the incident was discovered or reported ({known.astimezone(AMSTERDAM):%Y-%m-%d %H:%M %Z})")])


def _affected_school(incident: Incident, brin: str, name: str) -> AffectedSchool:
    brin = brin.strip().upper()
    for school in incident.schools:
        if school.brin == brin:
            return school
    raise InvalidInput("invalid input", [FieldProblem(name, f"school {brin} is not affected by {incident.reference}")])


def log_contact(ctx: Context, *, reference: str, actor: str, brin: str, channel: str, summary: str,
                told_must_notify_ap: bool = False, at: datetime | None = None,
                expected_version: int | None = None) -> Incident:
    """Log a phone or email contact with an affected school (seed 6b); it counts as informing it."""
    channel = choice(ContactChannel, channel, "channel")
    summary = required_text(summary, "summary", "a summary of the contact")
    at = _plausible(at, "at", clock())
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        school = _affected_school(unit.incident, brin, "brin")
        _after_the_start(unit.incident, at, "at")
        values: dict[str, Any] = {}
        if school.informed_at is None:
            values |= {"informed_at": at, "informed_via": channel.value}
        if told_must_notify_ap and school.told_to_notify_ap_at is None:
            values["told_to_notify_ap_at"] = at
        if values:
            unit.conn.execute(sa.update(affected_t).where(_AFFECTED).values(**values),
                              {"b_incident": unit.loaded.id, "b_school": school.school_id})
            unit.schools_changed()
        unit.record(EventKind.contact, {"school": school.brin, "channel": channel.value, "summary": summary,
                                        "at": at.isoformat(), "told_must_notify_ap": told_must_notify_ap})
    return unit.result


def acknowledge(ctx: Context, *, reference: str, actor: str, brin: str, comment: str | None = None) -> Incident:
    """A school confirms it received the processor's notice about the incident."""
    with change(ctx, reference, actor) as unit:
        school = _affected_school(unit.incident, brin, "school")
        if school.informed_at is None:
            raise Conflict(f"{school.name} has not been sent a notice about {reference} yet")
        unit.conn.execute(sa.update(affected_t).where(_AFFECTED).values(acknowledged_at=unit.now),
                          {"b_incident": unit.loaded.id, "b_school": school.school_id})
        unit.schools_changed()
        unit.record(EventKind.acknowledged, {"school": school.brin, "comment": optional_text(comment)})
    return unit.result


def record_people_informed(ctx: Context, *, reference: str, actor: str, brin: str, informed: bool,
                           at: datetime | None = None, via: str | None = None, count: int | None = None,
                           note: str | None = None) -> Incident:
    """Record whether and how a school told the people affected by a breach (GDPR art. 34).

    Informed: when (``at``, not in the future, not before the incident was known) and how (``via``),
    with how many (``count``, at most the school's affected count when known). Not informed: the
    reason in ``note``. A later record replaces the earlier one; the timeline keeps each, without the
    note: that is the school's, sealed with its data key, destroyed with its part of the incident.
    """
    note = optional_text(note)
    problems = []
    if informed:
        if at is None:
            problems.append(FieldProblem("at", "give when the people were informed"))
        if via is None:
            problems.append(FieldProblem("via", f"give how the people were informed: one of {', '.join(InformedVia)}"))
    else:
        problems += [FieldProblem(name, "only when the people were informed")
                     for name, value in (("at", at), ("via", via), ("count", count)) if value is not None]
        if note is None:
            problems.append(FieldProblem("note", "give the reason the people were not informed"))
    chosen = choice(InformedVia, via, "via") if via is not None else None
    if count is not None and count < 0:
        problems.append(FieldProblem("count", "must be 0 or more"))
    moment = None
    if at is not None:
        try:
            moment = _plausible(at, "at", clock())
        except InvalidInput as exc:
            problems += exc.fields
    with change(ctx, reference, actor) as unit:
        incident = unit.incident
        if incident.state in NOT_YET_CONFIRMED:
            raise Conflict(f"incident {reference} is {incident.state}; people are informed of confirmed breaches")
        school = _affected_school(incident, brin, "school")
        if moment is not None:
            try:
                _after_the_start(incident, moment, "at")
            except InvalidInput as exc:
                problems += exc.fields
        if count is not None and school.affected_count is not None and count > school.affected_count:
            problems.append(FieldProblem("count", f"must not be more than the {school.affected_count} people "
                                                  f"affected at {school.name}"))
        if problems:
            raise InvalidInput("invalid input", problems)
        where = {"b_incident": unit.loaded.id, "b_school": school.school_id}
        part = unit.conn.execute(
            sa.select(affected_t.c.destroyed_at, data_key_t.c.wrapped)
            .join(school_t, school_t.c.id == affected_t.c.school_id)
            .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id).where(_AFFECTED), where).one()
        if part.destroyed_at is not None or part.wrapped is None:
            raise Conflict(f"the part of {school.brin} in {reference} was destroyed (retention); nothing is "
                           "recorded for it any more")
        sealed = crypto.seal(ctx.keys.unwrap(part.wrapped), note) if note is not None else None
        unit.conn.execute(sa.update(affected_t).where(_AFFECTED).values(
            people_informed=informed, people_informed_at=moment, people_informed_via=chosen.value if chosen else None,
            people_informed_count=count, people_informed_note=sealed, people_informed_recorded_at=unit.now), where)
        unit.schools_changed()
        unit.record(EventKind.people_informed, {
            "school": school.brin, "informed": informed, "at": moment.isoformat() if moment else None,
            "via": chosen.value if chosen else None, "count": count})
    return unit.result


def record_ap_notification(ctx: Context, *, reference: str, actor: str, kind: str, ap_reference: str,
                           notified_at: datetime | None = None, schools: list[str] | None = None,
                           delay_reason: str | None = None, expected_version: int | None = None) -> Incident:
    """Record a notification to the AP (an action, not a state change).

    ``schools`` are the controllers it covers (default: every affected school). A preliminary or
    final notification after its deadline needs ``delay_reason`` (GDPR art. 33(1)); one within its
    deadline may not carry one, so the register lists only real delays.
    """
    kind = choice(ApKind, kind, "kind")
    ap_reference = required_text(ap_reference, "ap_reference", "the AP's reference number (meldnummer)")
    delay_reason = optional_text(delay_reason)
    at = _plausible(notified_at, "notified_at", clock())
    with change(ctx, reference, actor, expected_version=expected_version) as unit:
        incident = unit.incident
        if incident.state in NOT_YET_CONFIRMED:
            raise Conflict(f"incident {reference} is {incident.state}; the AP is notified of confirmed breaches")
        _after_the_start(incident, at, "notified_at")
        covered = [_affected_school(incident, b, "schools") for b in schools] if schools else list(incident.schools)
        school_ids = [s.school_id for s in covered]
        if kind in (ApKind.supplement, ApKind.withdrawal) and ap_reference not in {
                n.ap_reference for n in incident.ap_notifications}:
            raise InvalidInput("invalid AP notification", [
                FieldProblem("ap_reference", f"a {kind.value} needs the reference of an earlier notification")])
        after_deadline = [d for d in deadlines(incident, ctx.periods)
                          if kind in (ApKind.preliminary, ApKind.final)
                          and d.kind in (DeadlineKind.ap_notice, DeadlineKind.school_ap_notice)
                          and (d.school_id is None or d.school_id in school_ids) and at > d.due_at]
        late = [d for d in after_deadline if d.met_at is None]
        if late and delay_reason is None:
            due = min(d.due_at for d in late).astimezone(AMSTERDAM)
            raise InvalidInput("late AP notification", [FieldProblem(
                "delay_reason", f"the deadline passed at {due:%Y-%m-%d %H:%M %Z}; give the reason for the delay")])
        if delay_reason is not None and not after_deadline:
            raise InvalidInput("invalid AP notification", [FieldProblem(
                "delay_reason", "this notification is within its deadline; a delay reason is recorded only for "
                                "one made after it (the register lists it as a delay)")])
        unit.conn.execute(sa.insert(ap_t).values(
            incident_id=incident.id, kind=kind.value, ap_reference=ap_reference, notified_at=at,
            school_ids=school_ids, recorded_at=unit.now, recorded_by=actor,
            delay_reason=crypto.seal(unit.data_key, delay_reason) if delay_reason else None))
        unit.ap_notifications_changed()
        unit.record(EventKind.ap_notification, {
            "kind": kind.value, "ap_reference": ap_reference, "notified_at": at.isoformat(),
            "schools": [s.brin for s in covered], "delay_reason": delay_reason, "late": bool(late)})
    return unit.result


def mark_informed(unit: Unit, received: list[tuple[int, bool]]) -> None:
    """Record, in a (system) unit, that schools of its incident received a notice.

    ``received`` holds (school id, told it must notify the AP itself).
    """
    if not received:
        return
    incident = {"b_incident": unit.loaded.id}
    unit.conn.execute(sa.update(affected_t).where(_AFFECTED & affected_t.c.informed_at.is_(None))
                      .values(informed_at=unit.now, informed_via=ContactChannel.email.value),
                      [incident | {"b_school": s} for s, _ in received])
    told = [incident | {"b_school": s} for s, must_notify in received if must_notify]
    if told:
        unit.conn.execute(sa.update(affected_t).where(_AFFECTED & affected_t.c.told_to_notify_ap_at.is_(None))
                          .values(told_to_notify_ap_at=unit.now), told)
    unit.schools_changed()


def rotate_keys(ctx: Context) -> int:
    """Rewrap every data key under the newest master key; return how many were rewrapped."""
    with write_transaction(ctx.engine) as conn:
        rows = conn.execute(sa.select(data_key_t.c.id, data_key_t.c.wrapped).where(data_key_t.c.wrapped.is_not(None))).all()
        for key_id, wrapped in rows:
            conn.execute(sa.update(data_key_t).where(data_key_t.c.id == key_id).values(wrapped=ctx.keys.rewrap(wrapped)))
    return len(rows)
