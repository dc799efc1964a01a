"""Commands on incidents. The service owns transactions: each command is one transaction that
writes the incident, its timeline event(s) and (later) outbox rows together, or nothing at all.

Every command takes the acting person (``actor``) and, optionally, the ``expected_version`` the
caller last saw; a different version raises ``StaleVersion``. On PostgreSQL the incident row is
locked for the command; on SQLite the whole write transaction is (``workflow.db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from workflow import crypto, lifecycle, store, timeline
from workflow.context import Context
from workflow.db import read_transaction, write_transaction
from workflow.deadlines import AMSTERDAM, Deadline, DeadlineKind, deadlines
from workflow.disclosure import Disclosure, Source
from workflow.errors import Conflict, FieldProblem, InvalidInput, StaleVersion
from workflow.hooks import SCHOOLS_ADDED, Change, Note
from workflow.incident import ApKind, ContactChannel, Incident
from workflow.models import affected_t, ap_t, counter_t, data_key_t, idempotency_t, incident_t
from workflow.schools import ids_by_brin
from workflow.validation import choice, required_text

NOT_YET_CONFIRMED = frozenset({"reported", "triage", "dismissed"})
# built once; the SET clause follows the parameters given (see workflow.store on why)
_UPDATE_INCIDENT = sa.update(incident_t).where(
    incident_t.c.id == sa.bindparam("b_id"), incident_t.c.version == sa.bindparam("b_version")
)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Event:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    from_state: str | None = None
    to_state: str | None = None


def _apply(ctx: Context, disclosure: Disclosure, fields: dict[str, Any] | None) -> Disclosure:
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
        raise InvalidInput(
            "invalid input",
            [FieldProblem("affected_systems", f"unknown system '{s}'; configured: {', '.join(configured)}")
             for s in unknown],
        )
    return new


def _check_version(incident: Incident, expected: int | None) -> None:
    if expected is not None and expected != incident.version:
        raise StaleVersion(
            f"incident {incident.reference} is at version {incident.version}, not {expected}; "
            "reload it and try again"
        )


def _write(
    conn: Connection,
    loaded: store.Loaded,
    actor: str,
    events: list[_Event],
    now: datetime,
    *,
    state: str | None = None,
    disclosure: Disclosure | None = None,
) -> Incident:
    """Append ``events`` and update the incident (version, chain head, state, fields) at once."""
    incident = loaded.incident
    seq, head = loaded.event_count, loaded.head_hash
    for ev in events:
        seq += 1
        payload = crypto.seal(loaded.data_key, ev.payload) if ev.payload else None
        head = timeline.append(
            conn, incident_id=incident.id, seq=seq, prev_hash=head, at=now, actor=actor,
            kind=ev.kind, from_state=ev.from_state, to_state=ev.to_state, payload=payload,
        )
    values: dict[str, Any] = {
        "version": incident.version + 1, "updated_at": now, "event_count": seq, "head_hash": head,
    }
    if state is not None:
        values["state"] = state
    if disclosure is not None:
        values |= store.seal_disclosure(loaded.data_key, disclosure)
    values |= {"b_id": incident.id, "b_version": incident.version}
    result = conn.execute(_UPDATE_INCIDENT, values)
    if result.rowcount != 1:
        raise StaleVersion(f"incident {incident.reference} was changed by another command; try again")
    return replace(
        incident,
        version=incident.version + 1,
        state=state or incident.state,
        disclosure=disclosure or incident.disclosure,
    )


def _next_reference(conn: Connection, now: datetime) -> str:
    year = now.astimezone(AMSTERDAM).year
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    number = conn.execute(
        dialect.insert(counter_t)
        .values(year=year, last=1)
        .on_conflict_do_update(index_elements=["year"], set_={"last": counter_t.c.last + 1})
        .returning(counter_t.c.last)
    ).scalar_one()
    return f"DL-{year}-{number:05d}"


def _set_schools(conn: Connection, incident_id: int, counts: dict[str, int | None]) -> dict[str, Any]:
    """Add (or update the count of) affected schools; return what changed for the timeline."""
    for brin, count in counts.items():
        if count is not None and count < 0:
            raise InvalidInput("invalid input", [FieldProblem(f"schools.{brin}", "count must be 0 or more")])
    ids = ids_by_brin(conn, list(counts), "schools")
    existing = dict(
        conn.execute(
            sa.select(affected_t.c.school_id, affected_t.c.affected_count).where(affected_t.c.incident_id == incident_id)
        ).all()
    )
    changes = {}
    for brin, school_id in ids.items():
        count = counts[brin]
        if school_id not in existing:
            conn.execute(sa.insert(affected_t).values(incident_id=incident_id, school_id=school_id, affected_count=count))
            changes[brin] = [None, count]
        elif existing[school_id] != count:
            conn.execute(
                sa.update(affected_t)
                .where(affected_t.c.incident_id == incident_id, affected_t.c.school_id == school_id)
                .values(affected_count=count)
            )
            changes[brin] = [existing[school_id], count]
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
        raise Conflict(f"this Idempotency-Key was used for a different report ({row.reference})")
    return store.load(conn, ctx.keys, row.reference).incident


def report(
    ctx: Context,
    *,
    actor: str,
    source: str,
    fields: dict[str, Any] | None = None,
    schools: dict[str, int | None] | None = None,
    idempotency: Idempotency | None = None,
) -> Incident:
    """Register a report in the breach register (seed 6a); it starts in ``reported``.

    With ``idempotency``, a retried report returns the incident the first attempt created.
    """
    source = choice(Source, source, "source")
    disclosure = _apply(ctx, Disclosure(), fields)
    counts = _normalise_counts(schools)
    try:
        return _report(ctx, actor, source, disclosure, counts, idempotency)
    except sa.exc.IntegrityError:
        if idempotency is None:
            raise
        with read_transaction(ctx.engine) as conn:  # a concurrent retry won the race
            replayed = _replayed(conn, ctx, idempotency)
        if replayed is None:
            raise
        return replayed


def _report(
    ctx: Context,
    actor: str,
    source: Source,
    disclosure: Disclosure,
    counts: dict[str, int | None],
    idempotency: Idempotency | None,
) -> Incident:
    now = _now()
    with write_transaction(ctx.engine) as conn:
        if idempotency is not None:
            replayed = _replayed(conn, ctx, idempotency)
            if replayed is not None:
                return replayed
        key, wrapped = ctx.keys.new_data_key()
        key_id = conn.execute(sa.insert(data_key_t).values(wrapped=wrapped, created_at=now)).inserted_primary_key[0]
        reference = _next_reference(conn, now)
        incident_id = conn.execute(
            sa.insert(incident_t).values(
                reference=reference, state=lifecycle.INITIAL_STATE, version=0, source=source.value,
                reported_at=now, reported_by=actor, updated_at=now, data_key_id=key_id,
                event_count=0, head_hash=timeline.GENESIS, **store.seal_disclosure(key, disclosure),
            )
        ).inserted_primary_key[0]
        school_changes = _set_schools(conn, incident_id, counts) if counts else {}
        if idempotency is not None:
            conn.execute(
                sa.insert(idempotency_t).values(
                    user_id=idempotency.user_id, key=idempotency.key, request_hash=idempotency.request_hash,
                    incident_id=incident_id, created_at=now,
                )
            )
        loaded = store.Loaded(
            Incident(incident_id, reference, lifecycle.INITIAL_STATE, 0, source.value, now, disclosure,
                     store.load_schools(conn, incident_id)),
            key, 0, timeline.GENESIS,
        )
        payload = {
            "source": source.value,
            "changes": store.changed_fields(Disclosure(), disclosure),
            "schools": school_changes,
        }
        return _write(conn, loaded, actor, [_Event("reported", payload, None, lifecycle.INITIAL_STATE)], now)


def _open_for_change(conn: Connection, ctx: Context, reference: str, expected_version: int | None) -> store.Loaded:
    loaded = store.load(conn, ctx.keys, reference, for_update=True)
    _check_version(loaded.incident, expected_version)
    return loaded


def update(
    ctx: Context,
    *,
    reference: str,
    actor: str,
    fields: dict[str, Any] | None = None,
    schools: dict[str, int | None] | None = None,
    remove_schools: list[str] | None = None,
    expected_version: int | None = None,
) -> Incident:
    """Change disclosure fields and affected schools (with their counts)."""
    if not fields and not schools and not remove_schools:
        raise InvalidInput("nothing to update", [FieldProblem("fields", "give at least one field or school")])
    now = _now()
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, expected_version)
        incident = loaded.incident
        if incident.state in lifecycle.FINAL_STATES:
            raise Conflict(f"incident {reference} is {incident.state}; reopen it to change it")
        disclosure = _apply(ctx, incident.disclosure, fields)
        school_changes = _set_schools(conn, incident.id, _normalise_counts(schools)) if schools else {}
        if remove_schools:
            ids = ids_by_brin(conn, remove_schools, "remove_schools")
            for brin, school_id in ids.items():
                gone = conn.execute(
                    sa.delete(affected_t).where(affected_t.c.incident_id == incident.id, affected_t.c.school_id == school_id)
                ).rowcount
                if gone:
                    school_changes[brin] = ["affected", None]
        changes = store.changed_fields(incident.disclosure, disclosure)
        if not changes and not school_changes:
            return incident
        events = [_Event("updated", {"changes": changes, "schools": school_changes})]
        added = [brin for brin, (old, _new) in school_changes.items() if old is None]
        if added and incident.state not in NOT_YET_CONFIRMED:  # a newly affected school hears at once
            after = replace(incident, disclosure=disclosure, schools=store.load_schools(conn, incident.id))
            events += _notify(conn, ctx, Change(incident, after, SCHOOLS_ADDED, loaded.data_key, actor, now))
        return _write(conn, loaded, actor, events, now, disclosure=disclosure if changes else None)


def fire(
    ctx: Context,
    *,
    reference: str,
    trigger: str,
    actor: str,
    fields: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> Incident:
    """Apply ``fields`` (if any), then fire ``trigger``; both or neither are stored."""
    if trigger not in lifecycle.TRIGGERS:
        raise InvalidInput(
            "unknown trigger",
            [FieldProblem("trigger", f"'{trigger}' is not a trigger; triggers: {', '.join(lifecycle.TRIGGERS)}")],
        )
    now = _now()
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, expected_version)
        incident = loaded.incident
        disclosure = _apply(ctx, incident.disclosure, fields)
        candidate = replace(incident, disclosure=disclosure)
        state = lifecycle.advance(candidate, trigger)
        changes = store.changed_fields(incident.disclosure, disclosure)
        events = [_Event("transition", {"trigger": trigger, "changes": changes}, incident.state, state)]
        events += _notify(conn, ctx, Change(incident, replace(candidate, state=state), trigger,
                                            loaded.data_key, actor, now))
        loaded.incident = candidate
        return _write(conn, loaded, actor, events, now, state=state, disclosure=disclosure if changes else None)


def _notify(conn: Connection, ctx: Context, change: Change) -> list[_Event]:
    if ctx.notifier is None:
        return []
    return [_Event(note.kind, note.payload) for note in ctx.notifier.after_change(conn, change)]


def append_notes(conn: Connection, ctx: Context, reference: str, actor: str, notes: list[Note],
                 now: datetime) -> Incident:
    """Append events to an incident's chain inside the caller's transaction (deliveries, reminders)."""
    loaded = store.load(conn, ctx.keys, reference, for_update=True)
    return _write(conn, loaded, actor, [_Event(n.kind, n.payload) for n in notes], now)


_AFFECTED = (affected_t.c.incident_id == sa.bindparam("b_incident")) & (
    affected_t.c.school_id == sa.bindparam("b_school"))


def mark_informed(conn: Connection, received: list[tuple[int, int, bool]], at: datetime, *, via: str) -> None:
    """Record, inside the caller's transaction, that schools received a notice.

    ``received`` holds (incident id, school id, told it must notify the AP itself).
    """
    if not received:
        return
    conn.execute(sa.update(affected_t).where(_AFFECTED & affected_t.c.informed_at.is_(None))
                 .values(informed_at=at, informed_via=via),
                 [{"b_incident": i, "b_school": s} for i, s, _ in received])
    told = [{"b_incident": i, "b_school": s} for i, s, must_notify in received if must_notify]
    if told:
        conn.execute(sa.update(affected_t).where(_AFFECTED & affected_t.c.told_to_notify_ap_at.is_(None))
                     .values(told_to_notify_ap_at=at), told)


def send_update(ctx: Context, *, reference: str, actor: str, message: str | None = None,
                expected_version: int | None = None) -> Incident:
    """Queue an update notice to every affected school already informed: what changed since."""
    if ctx.notifier is None:
        raise Conflict("notices are not configured in this process")
    now = _now()
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, expected_version)
        incident = loaded.incident
        if incident.state in NOT_YET_CONFIRMED:
            raise Conflict(f"incident {reference} is {incident.state}; schools are notified of confirmed breaches")
        text = message.strip() if message and message.strip() else None
        events = _notify(conn, ctx, Change(incident, incident, None, loaded.data_key, actor, now, text))
        if not events:
            raise Conflict(f"no school of {reference} has had a first notice yet")
        return _write(conn, loaded, actor, events, now)


def reopen(ctx: Context, *, reference: str, actor: str, reason: str, expected_version: int | None = None) -> Incident:
    """Take a dismissed or closed incident back to triage, with the reason."""
    return fire(
        ctx, reference=reference, trigger="reopen", actor=actor,
        fields={"reopen_reason": reason}, expected_version=expected_version,
    )




def _not_future(moment: datetime | None, name: str, now: datetime) -> datetime:
    if moment is None:
        return now
    if moment.tzinfo is None:
        raise InvalidInput("invalid input", [FieldProblem(name, "give a time zone (e.g. +01:00 or Z)")])
    if moment > now:
        raise InvalidInput("invalid input", [FieldProblem(name, "must not be in the future")])
    return moment.astimezone(UTC)


def add_note(ctx: Context, *, reference: str, actor: str, text: str, expected_version: int | None = None) -> Incident:
    """Add a free-text note to the timeline."""
    text = required_text(text, "text", "the note's text")
    now = _now()
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, expected_version)
        return _write(conn, loaded, actor, [_Event("note", {"text": text})], now)


def _affected_school(incident: Incident, brin: str, name: str):
    brin = brin.strip().upper()
    for school in incident.schools:
        if school.brin == brin:
            return school
    raise InvalidInput(
        "invalid input", [FieldProblem(name, f"school {brin} is not affected by {incident.reference}")]
    )


def log_contact(
    ctx: Context,
    *,
    reference: str,
    actor: str,
    brin: str,
    channel: str,
    summary: str,
    told_must_notify_ap: bool = False,
    at: datetime | None = None,
    expected_version: int | None = None,
) -> Incident:
    """Log a phone or email contact with an affected school (seed 6b); it counts as informing it."""
    channel = choice(ContactChannel, channel, "channel")
    summary = required_text(summary, "summary", "a summary of the contact")
    now = _now()
    at = _not_future(at, "at", now)
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, expected_version)
        school = _affected_school(loaded.incident, brin, "brin")
        values: dict[str, Any] = {}
        if school.informed_at is None:
            values |= {"informed_at": at, "informed_via": channel.value}
        if told_must_notify_ap and school.told_to_notify_ap_at is None:
            values["told_to_notify_ap_at"] = at
        if values:
            conn.execute(
                sa.update(affected_t)
                .where(affected_t.c.incident_id == loaded.incident.id, affected_t.c.school_id == school.school_id)
                .values(**values)
            )
        payload = {
            "school": school.brin, "channel": channel.value, "summary": summary,
            "at": at.isoformat(), "told_must_notify_ap": told_must_notify_ap,
        }
        updated = _write(conn, loaded, actor, [_Event("contact", payload)], now)
        return replace(updated, schools=store.load_schools(conn, updated.id))


def acknowledge(
    ctx: Context, *, reference: str, actor: str, brin: str, comment: str | None = None,
) -> Incident:
    """A school confirms it received the processor's notice about the incident."""
    now = _now()
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, None)
        school = _affected_school(loaded.incident, brin, "school")
        if school.informed_at is None:
            raise Conflict(f"{school.name} has not been sent a notice about {reference} yet")
        conn.execute(
            sa.update(affected_t)
            .where(affected_t.c.incident_id == loaded.incident.id, affected_t.c.school_id == school.school_id)
            .values(acknowledged_at=now)
        )
        payload = {"school": school.brin, "comment": comment.strip() if comment and comment.strip() else None}
        updated = _write(conn, loaded, actor, [_Event("acknowledged", payload)], now)
        return replace(updated, schools=store.load_schools(conn, updated.id))


def _late_deadlines(incident: Incident, ctx: Context, school_ids: list[int], at: datetime) -> list[Deadline]:
    """Unmet AP deadlines that a notification at ``at`` for ``school_ids`` meets after they passed."""
    return [
        d
        for d in deadlines(incident, ctx.periods)
        if d.kind in (DeadlineKind.ap_notice, DeadlineKind.school_ap_notice)
        and (d.school_id is None or d.school_id in school_ids)
        and d.met_at is None
        and at > d.due_at
    ]


def record_ap_notification(
    ctx: Context,
    *,
    reference: str,
    actor: str,
    kind: str,
    ap_reference: str,
    notified_at: datetime | None = None,
    schools: list[str] | None = None,
    delay_reason: str | None = None,
    expected_version: int | None = None,
) -> Incident:
    """Record a notification to the AP (an action, not a state change).

    ``schools`` are the controllers it covers (default: every affected school). A preliminary or
    final notification after its deadline needs ``delay_reason`` (GDPR art. 33(1)).
    """
    kind = choice(ApKind, kind, "kind")
    ap_reference = required_text(ap_reference, "ap_reference", "the AP's reference number (meldnummer)")
    delay_reason = delay_reason.strip() if delay_reason and delay_reason.strip() else None
    now = _now()
    at = _not_future(notified_at, "notified_at", now)
    with write_transaction(ctx.engine) as conn:
        loaded = _open_for_change(conn, ctx, reference, expected_version)
        incident = loaded.incident
        if incident.state in NOT_YET_CONFIRMED:
            raise Conflict(f"incident {reference} is {incident.state}; the AP is notified of confirmed breaches")
        covered = (
            [_affected_school(incident, b, "schools") for b in schools] if schools else list(incident.schools)
        )
        school_ids = [s.school_id for s in covered]
        known = {n.ap_reference for n in incident.ap_notifications}
        if kind in (ApKind.supplement, ApKind.withdrawal) and ap_reference not in known:
            raise InvalidInput(
                "invalid AP notification",
                [FieldProblem("ap_reference", f"a {kind.value} needs the reference of an earlier notification")],
            )
        late = _late_deadlines(incident, ctx, school_ids, at) if kind in (ApKind.preliminary, ApKind.final) else []
        if late and delay_reason is None:
            due = min(d.due_at for d in late).astimezone(AMSTERDAM)
            raise InvalidInput(
                "late AP notification",
                [FieldProblem("delay_reason", f"the deadline passed at {due:%Y-%m-%d %H:%M %Z}; give the reason for the delay")],
            )
        conn.execute(
            sa.insert(ap_t).values(
                incident_id=incident.id, kind=kind.value, ap_reference=ap_reference, notified_at=at,
                school_ids=school_ids, recorded_at=now, recorded_by=actor,
                delay_reason=crypto.seal(loaded.data_key, delay_reason) if delay_reason else None,
            )
        )
        payload = {
            "kind": kind.value, "ap_reference": ap_reference, "notified_at": at.isoformat(),
            "schools": [s.brin for s in covered], "delay_reason": delay_reason, "late": bool(late),
        }
        updated = _write(conn, loaded, actor, [_Event("ap_notification", payload)], now)
        return replace(updated, ap_notifications=store.load_ap_notifications(conn, updated.id))


def rotate_keys(ctx: Context) -> int:
    """Rewrap every data key under the newest master key; return how many were rewrapped."""
    with write_transaction(ctx.engine) as conn:
        rows = conn.execute(sa.select(data_key_t.c.id, data_key_t.c.wrapped).where(data_key_t.c.wrapped.is_not(None))).all()
        for key_id, wrapped in rows:
            conn.execute(sa.update(data_key_t).where(data_key_t.c.id == key_id).values(wrapped=ctx.keys.rewrap(wrapped)))
    return len(rows)
