"""The audit: verify every chain, replay it against the stored rows, and sign checkpoints.

``verify`` checks, for every incident:
- its chain: events numbered 1..n, each pointing at the previous hash, each HMAC (under the audit
  key) matching its content, and the incident row's head matching the last event;
- its replay: what the events imply (state, discovery time, cause, the affected schools and when
  each was informed (a bounce of every notice takes it back), told to notify the AP and acknowledged, the AP notifications, the follow-up
  actions) against the rows as stored, naming every difference;
- the register: no reference number missing (a deleted incident leaves a gap);
- its stored deadlines (``workflow.clocks``): what its facts give, none planted, none missing;
- with a checkpoint: its signature, and that every incident it lists is still there with the
  same chain up to the checkpointed head (nothing before the checkpoint changed or removed).

A malformed row never crashes the verifier: it is named as the first broken link of its incident.
Checkpoints are written and checked by ``workflow.checkpoints``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import checkpoints, clocks, crypto, store, timeline
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.errors import DataDamaged, DataDestroyed, SecretUnavailable
from breachflow.workflow.models import (
    action_t,
    affected_t,
    ap_t,
    counter_t,
    data_key_t,
    event_t,
    incident_t,
    school_t,
)
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.unit import moves_a_clock

_SCHOOL_RESPONSIBLE = "school_responsible"  # the notice kind that tells a school to notify the AP


@dataclass(frozen=True)
class Finding:
    """One thing the audit found wrong; ``seq`` is the first broken event, when there is one."""

    reference: str
    problem: str
    seq: int | None = None

    def __str__(self) -> str:
        at = f" at event {self.seq}" if self.seq is not None else ""
        return f"{self.reference}{at}: {self.problem}"


@dataclass
class Report:
    """What ``verify`` checked and found."""

    incidents: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


@dataclass
class _School:
    affected_count: int | None = None
    informed_at: datetime | None = None
    informed_via: str | None = None
    told_to_notify_ap_at: datetime | None = None
    acknowledged_at: datetime | None = None


_SCHOOL_COLUMNS = tuple(_School.__dataclass_fields__)
_ACTION_COLUMNS = ("description", "owner", "due_at", "blocking", "status", "created_at", "created_by", "settled_at",
                   "settled_by")


@dataclass
class _Replayed:
    """What an incident's events say its rows must hold."""

    state: str | None = None
    reported: dict[str, Any] = field(default_factory=dict)
    disclosure: dict[str, Any] = field(default_factory=lambda: Disclosure().model_dump(mode="json"))
    confirmed_at: datetime | None = None
    clock_moved: tuple[datetime, str] | None = None
    schools: dict[str, _School] = field(default_factory=dict)
    ap: list[tuple] = field(default_factory=list)
    actions: dict[int, list[Any]] = field(default_factory=dict)  # number → the columns of ``_ACTION_COLUMNS``
    complete: bool = True  # False once a payload could not be opened (its key destroyed)


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).astimezone(UTC)


def _replay_event(r: _Replayed, ev: Any, payload: dict[str, Any]) -> None:
    kind, changes = ev.kind, payload.get("changes", {})
    for name, (_old, new) in changes.items():
        r.disclosure[name] = new
    if changes and r.confirmed_at is not None and moves_a_clock(changes):
        r.clock_moved = (ev.at, ev.actor)
    if kind == EventKind.transition and payload.get("trigger") == "confirm" and r.confirmed_at is None:
        r.confirmed_at = ev.at
    if kind == EventKind.reported:
        r.reported = {"reference": payload.get("reference"), "source": payload["source"], "reported_at": ev.at,
                      "reported_by": ev.actor}
    if kind in (EventKind.reported, EventKind.updated):
        for brin, (old, new) in payload.get("schools", {}).items():
            if old == "affected" and new is None:
                r.schools.pop(brin, None)
            else:
                r.schools.setdefault(brin, _School()).affected_count = new
    elif kind == EventKind.contact and payload["school"] in r.schools:
        school = r.schools[payload["school"]]
        if school.informed_at is None:
            school.informed_at, school.informed_via = _time(payload["at"]), payload["channel"]
        if payload.get("told_must_notify_ap"):
            school.told_to_notify_ap_at = school.told_to_notify_ap_at or _time(payload["at"])
    elif kind == EventKind.notices_sent:
        for message in payload["messages"]:
            sent_to = r.schools.get(message.get("school"))
            if sent_to is not None:
                if sent_to.informed_at is None:
                    sent_to.informed_at, sent_to.informed_via = ev.at, "email"
                if message["kind"] == _SCHOOL_RESPONSIBLE:
                    sent_to.told_to_notify_ap_at = sent_to.told_to_notify_ap_at or ev.at
    elif kind == EventKind.notice_bounced and payload.get("uninformed") and payload.get("school") in r.schools:
        school = r.schools[payload["school"]]  # no notice reached it: informed again by the next one that does
        school.informed_at, school.informed_via = None, None
        if payload.get("untold"):
            school.told_to_notify_ap_at = None
    elif kind == EventKind.acknowledged and payload["school"] in r.schools:
        r.schools[payload["school"]].acknowledged_at = ev.at
    elif kind == EventKind.actions_recorded:
        for a in payload["actions"]:
            r.actions[a["number"]] = [a["description"], a["owner"], _time(a["due_at"]), a["blocking"], "open",
                                      ev.at, ev.actor, None, None]
    elif kind == EventKind.action_settled and payload["number"] in r.actions:
        r.actions[payload["number"]][4:] = [payload["status"], *r.actions[payload["number"]][5:7], ev.at, ev.actor]
    elif kind == EventKind.ap_notification:
        r.ap.append((payload["kind"], payload["ap_reference"], _time(payload["notified_at"]),
                     tuple(sorted(payload["schools"])), ev.at, ev.actor, payload.get("delay_reason")))


def _check_chain(key: bytes, reference: str, events: list[Any], head: Any) -> Finding | None:
    """The first broken link of one incident's chain, or ``None``."""
    prev, seq = timeline.GENESIS, 0
    for ev in events:
        if isinstance(ev, _Unreadable):
            return Finding(reference, f"malformed event row ({ev.error})", ev.seq)
        try:
            if ev.seq != seq + 1:
                return Finding(reference, f"expected event {seq + 1}, found {ev.seq} (an event is missing)", seq + 1)
            if ev.prev_hash != prev:
                return Finding(reference, "does not point to the previous event's hash", ev.seq)
            if ev.hash != timeline.event_hash(key, ev.prev_hash, ev.incident_id, ev.seq, ev.at, ev.actor, ev.kind,
                                              ev.from_state, ev.to_state, ev.payload):
                return Finding(reference, "its content does not match its hash (altered or forged)", ev.seq)
        except Exception as exc:  # noqa: BLE001  (a malformed row is a finding, not a crash)
            return Finding(reference, f"malformed event ({type(exc).__name__}: {exc})", ev.seq)
        prev, seq = ev.hash, ev.seq
    if head is not None and (seq, prev) != (head.event_count, head.head_hash):
        return Finding(reference, f"the incident records {head.event_count} events; the chain ends at {seq}", seq + 1)
    return None


def _differences(r: _Replayed, head: Any, key: bytes | None, schools: dict[str, Any],
                 ap: list[tuple], actions: dict[int, Any]) -> list[str]:
    found = []
    if r.state != head.state:
        found.append(f"state is '{head.state}', its events say '{r.state}'")
    if not r.complete:
        return found
    for column, implied in r.reported.items():
        if implied is not None and getattr(head, column) != implied:
            found.append(f"{column} is {getattr(head, column)}, its events say {implied}")
    if head.confirmed_at != r.confirmed_at:
        found.append(f"confirmed_at is {head.confirmed_at}, its events say {r.confirmed_at}")
    if (head.clock_moved_at, head.clock_moved_by) != (r.clock_moved or (None, None)):
        found.append(f"the clock was moved at {head.clock_moved_at} by {head.clock_moved_by}, its events say "
                     f"{r.clock_moved[0] if r.clock_moved else None} by {r.clock_moved[1] if r.clock_moved else None}")
    try:
        stored = store.disclosure_of(head, key).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001  (damage is a finding)
        found.append(f"its fields cannot be read ({type(exc).__name__}: {exc})")
    else:
        found += [f"{name} is {stored[name]!r}, its events say {r.disclosure.get(name)!r}"
                  for name in stored if stored[name] != r.disclosure.get(name)]
    if set(schools) != set(r.schools):
        found.append(f"affected schools are {sorted(schools)}, its events say {sorted(r.schools)}")
    for brin in sorted(set(schools) & set(r.schools)):
        row, implied = schools[brin], r.schools[brin]
        found += [f"{brin} {column} is {getattr(row, column)}, its events say {getattr(implied, column)}"
                  for column in _SCHOOL_COLUMNS if getattr(row, column) != getattr(implied, column)]
    stored_ap = [(*entry[:6], _opened(key, entry[6])) for entry in ap]
    if sorted(stored_ap, key=repr) != sorted(r.ap, key=repr):
        found.append("the AP notifications differ from the ones on its timeline")
    return found + _action_differences(r, key, actions)


def _action_differences(r: _Replayed, key: bytes | None, actions: dict[int, Any]) -> list[str]:
    """How the stored follow-up actions differ from what ``actions_recorded`` / ``action_settled`` say."""
    found = []
    if set(actions) != set(r.actions):
        found.append(f"follow-up actions are {sorted(actions)}, its events say {sorted(r.actions)}")
    for number in sorted(set(actions) & set(r.actions)):
        row, implied = actions[number], r.actions[number]
        if _opened(key, row.description) != implied[0]:
            found.append(f"follow-up action {number} description differs from its timeline")
        found += [f"follow-up action {number} {column} is {getattr(row, column)!r}, its events say {was!r}"
                  for column, was in zip(_ACTION_COLUMNS[1:], implied[1:], strict=True) if getattr(row, column) != was]
    return found


def _opened(key: bytes | None, sealed: bytes | None) -> Any:
    if sealed is None or key is None:
        return None
    try:
        return crypto.open_sealed(key, sealed)
    except DataDamaged:
        return "<damaged>"


_READ_ERRORS = (ValueError, TypeError, sa.exc.StatementError)


def _read(conn: Connection, query: sa.Select[Any], table: sa.Table) -> tuple[Sequence[Any], list[tuple[Any, str]]]:
    """The rows of ``query``; should one hold a value its column type cannot read, row by row,
    returning the unreadable ones as (their row id and incident, the error) instead of failing."""
    try:
        return conn.execute(query).all(), []
    except _READ_ERRORS:
        pass
    rows, bad = [], []
    keys = [table.c.id] + ([table.c.incident_id] if "incident_id" in table.c else [])
    where = [query.whereclause] if query.whereclause is not None else []
    for row_key in conn.execute(sa.select(*keys).where(*where).order_by(table.c.id)).all():
        try:
            rows.append(conn.execute(query.where(table.c.id == row_key[0])).one())
        except _READ_ERRORS as exc:
            bad.append((row_key, f"{type(exc).__name__}: {exc}"))
    return rows, bad


@dataclass
class _Rows:
    heads: dict[int, Any]
    schools: dict[int, dict[str, Any]]
    ap: dict[int, list[tuple]]
    actions: dict[int, dict[int, Any]]  # incident id → number → its row
    unreadable: dict[int, list[str]]  # incident id → what could not be read


def _rows(conn: Connection) -> _Rows:
    heads, bad = _read(conn, sa.select(incident_t, data_key_t.c.wrapped)
                       .join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id), incident_t)
    unreadable: dict[int, list[str]] = {}
    for (incident_id, *_), error in bad:
        unreadable.setdefault(incident_id, []).append(f"its row cannot be read ({error})")
    brins: dict[int, str] = dict(conn.execute(sa.select(school_t.c.id, school_t.c.brin)).all())
    affected, bad = _read(conn, sa.select(affected_t), affected_t)
    for (_, incident_id), error in bad:
        unreadable.setdefault(incident_id, []).append(f"an affected school's row cannot be read ({error})")
    schools: dict[int, dict[str, Any]] = {}
    for row in affected:
        schools.setdefault(row.incident_id, {})[brins.get(row.school_id, f"#{row.school_id}")] = row
    notifications, bad = _read(conn, sa.select(ap_t), ap_t)
    for (_, incident_id), error in bad:
        unreadable.setdefault(incident_id, []).append(f"an AP notification's row cannot be read ({error})")
    ap: dict[int, list[tuple]] = {}
    for row in notifications:
        try:
            covered = tuple(sorted(brins.get(i, f"#{i}") for i in row.school_ids or ()))
        except TypeError:
            covered = ("<unreadable>",)
        ap.setdefault(row.incident_id, []).append(
            (row.kind, row.ap_reference, row.notified_at, covered, row.recorded_at, row.recorded_by, row.delay_reason))
    stored_actions, bad = _read(conn, sa.select(action_t), action_t)
    for (_, incident_id), error in bad:
        unreadable.setdefault(incident_id, []).append(f"a follow-up action's row cannot be read ({error})")
    actions: dict[int, dict[int, Any]] = {}
    for row in stored_actions:
        actions.setdefault(row.incident_id, {})[row.number] = row
    return _Rows({row.id: row for row in heads}, schools, ap, actions, unreadable)


@dataclass(frozen=True)
class _Unreadable:
    """An event row the database driver cannot even read (a value of the wrong type)."""

    incident_id: int
    seq: int
    error: str


def _events(conn: Connection) -> Iterator[tuple[int, list[Any]]]:
    """Every incident's events in order; a row that cannot be read comes as ``_Unreadable``."""
    try:
        rows: Sequence[Any] = conn.execute(sa.select(event_t).order_by(event_t.c.incident_id, event_t.c.seq)).all()
    except (ValueError, TypeError, sa.exc.StatementError):  # one bad value: read row by row to find it
        one_by_one: list[Any] = []
        for row_id, incident_id, seq in conn.execute(
                sa.select(event_t.c.id, event_t.c.incident_id, event_t.c.seq)
                .order_by(event_t.c.incident_id, event_t.c.seq)).all():
            try:
                one_by_one.append(conn.execute(sa.select(event_t).where(event_t.c.id == row_id)).one())
            except (ValueError, TypeError, sa.exc.StatementError) as exc:
                one_by_one.append(_Unreadable(incident_id, seq, f"{type(exc).__name__}: {exc}"))
        rows = one_by_one
    for incident_id, group in groupby(rows, key=lambda ev: ev.incident_id):
        yield incident_id, list(group)


def _replay(events: list[Any], key: bytes | None) -> _Replayed:
    replayed = _Replayed()
    for ev in events:
        if ev.to_state is not None:
            replayed.state = ev.to_state
        if ev.payload is None:
            continue
        if key is None:
            replayed.complete = False
            continue
        _replay_event(replayed, ev, crypto.open_sealed(key, ev.payload))
    return replayed


def _data_key(ctx: Context, head: Any) -> bytes | None:
    try:
        return ctx.keys.unwrap(head.wrapped)
    except DataDestroyed:  # retention: the chain and the state still replay; a missing master key raises
        return None


_REFERENCE = re.compile(r"^DL-(\d{4})-(\d{5,})$")
_LISTED = 20  # missing references named one by one; beyond that, counted


def _register_gaps(conn: Connection, references: list[str]) -> list[Finding]:
    """References missing below each year's counter (a deleted incident), and ones above it."""
    numbers: dict[int, set[int]] = {}
    for reference in references:
        if (match := _REFERENCE.match(reference)) is None:
            return [Finding(reference, "is not a reference breachflow hands out")]
        numbers.setdefault(int(match[1]), set()).add(int(match[2]))
    rows, bad = _read(conn, sa.select(counter_t).order_by(counter_t.c.year), counter_t)
    findings = [Finding("reference counter", f"a row cannot be read ({error})") for _, error in bad]
    counters = {row.year: row.last for row in rows}
    for year in sorted(set(numbers) | set(counters)):
        present, last = numbers.get(year, set()), counters.get(year)
        if last is None:
            findings.append(Finding(f"DL-{year}", "references exist but the year's counter is gone"))
            continue
        beyond = sorted(n for n in present if n > last)
        if beyond:
            findings.append(Finding(f"DL-{year}-{beyond[0]:05d}", f"lies beyond the counter ({last}): it was "
                                    "lowered, and new reports of this year will fail"))
        missing_count = last - len([n for n in present if n <= last])
        gaps: list[int] = []
        n = 1
        for number in sorted(present | {last + 1}):  # walk the gaps, never the whole range
            gaps += range(n, min(number, n + _LISTED - len(gaps)))
            n = number + 1
            if len(gaps) >= _LISTED:
                break
        findings += [Finding(f"DL-{year}-{g:05d}", "missing from the register (deleted?)") for g in gaps]
        if missing_count > len(gaps):
            findings.append(Finding(f"DL-{year}", f"{missing_count - len(gaps)} more references missing"))
    return findings


def verify(ctx: Context, checkpoint: dict[str, Any] | None = None) -> Report:
    """Check every chain, replay it against the rows, and check ``checkpoint`` if given."""
    report = Report()
    with read_transaction(ctx.engine) as conn:
        rows = _rows(conn)
        heads = rows.heads
        seen: dict[int, list[Any]] = {}
        for incident_id, events in _events(conn):
            report.events += len(events)
            if incident_id not in heads and incident_id not in rows.unreadable:
                report.findings.append(Finding(f"#{incident_id}", "events of an incident that is not in the register"))
                continue
            seen[incident_id] = events
        for incident_id, problems in sorted(rows.unreadable.items()):
            reference = heads[incident_id].reference if incident_id in heads else f"#{incident_id}"
            report.findings += [Finding(reference, problem) for problem in problems]
        for incident_id, head in sorted(heads.items(), key=lambda item: item[1].reference):
            report.incidents += 1
            events = seen.get(incident_id, [])
            broken = _check_chain(ctx.audit_key, head.reference, events, head)
            if broken is not None:
                report.findings.append(broken)
                continue
            if incident_id in rows.unreadable:
                continue
            try:
                key = _data_key(ctx, head)
                differences = _differences(_replay(events, key), head, key, rows.schools.get(incident_id, {}),
                                           rows.ap.get(incident_id, []), rows.actions.get(incident_id, {}))
            except SecretUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001  (a payload that does not replay is a finding)
                differences = [f"its events cannot be replayed ({type(exc).__name__}: {exc})"]
            report.findings += [Finding(head.reference, d) for d in differences]
        report.findings += _register_gaps(conn, [h.reference for h in heads.values()])
        report.findings += [Finding(reference, problem) for reference, problems
                            in clocks.differences(conn, ctx.periods, _read).items() for problem in problems]
        if checkpoint is not None:
            chains = {head.reference: [getattr(ev, "hash", None) for ev in seen.get(incident_id, [])]
                      for incident_id, head in heads.items()}
            report.findings += [Finding(reference, problem, seq) for reference, problem, seq
                                in checkpoints.problems(ctx.checkpoint_key.public_key(), checkpoint, chains)]
    return report
