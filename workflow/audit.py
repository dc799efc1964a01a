"""The audit: verify every chain, replay it against the stored rows, and sign checkpoints.

``verify`` checks, for every incident:
- its chain: events numbered 1..n, each pointing at the previous hash, each HMAC (under the audit
  key) matching its content, and the incident row's head matching the last event;
- its replay: what the events imply (state, discovery time, cause, the affected schools and when
  each was informed, told to notify the AP and acknowledged, the AP notifications) against the
  rows as stored, naming every difference;
- the register: no reference number missing (a deleted incident leaves a gap);
- with a checkpoint: its signature, and that every incident it lists is still there with the
  same chain up to the checkpointed head (nothing before the checkpoint changed or removed).

A malformed row never crashes the verifier: it is named as the first broken link of its incident.
A checkpoint (``write_checkpoint``) lists every incident's head and a register-wide root, signed
with the installation's Ed25519 checkpoint key; keep the files somewhere the database's
administrators cannot write.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from sqlalchemy import Connection

from workflow import crypto, timeline
from workflow.context import Context
from workflow.db import read_transaction
from workflow.errors import DataDestroyed, FieldProblem, InvalidInput
from workflow.models import affected_t, ap_t, counter_t, data_key_t, event_t, incident_t, school_t
from workflow.timeline import EventKind

CHECKPOINT_FORMAT = "breachflow-checkpoint/1"
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
    informed_at: datetime | None = None
    told_at: datetime | None = None
    acknowledged_at: datetime | None = None


@dataclass
class _Replayed:
    """What an incident's events say its rows must hold."""

    state: str | None = None
    facts: dict[str, Any] = field(default_factory=lambda: {"discovered_at": None, "cause_category": None})
    schools: dict[str, _School] = field(default_factory=dict)
    ap: list[tuple] = field(default_factory=list)
    complete: bool = True  # False once a payload could not be opened (its key destroyed)


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).astimezone(UTC)


def _replay_event(r: _Replayed, ev: Any, payload: dict[str, Any]) -> None:
    for name in r.facts:
        if name in payload.get("changes", {}):
            r.facts[name] = payload["changes"][name][1]
    kind = ev.kind
    if kind in (EventKind.reported, EventKind.updated):
        for brin, (old, new) in payload.get("schools", {}).items():
            if old == "affected" and new is None:
                r.schools.pop(brin, None)
            else:
                r.schools.setdefault(brin, _School())
    elif kind == EventKind.contact and payload["school"] in r.schools:
        school = r.schools[payload["school"]]
        school.informed_at = school.informed_at or _time(payload["at"])
        if payload.get("told_must_notify_ap"):
            school.told_at = school.told_at or _time(payload["at"])
    elif kind == EventKind.notices_sent:
        for message in payload["messages"]:
            school = r.schools.get(message.get("school"))
            if school is not None:
                school.informed_at = school.informed_at or ev.at
                if message["kind"] == _SCHOOL_RESPONSIBLE:
                    school.told_at = school.told_at or ev.at
    elif kind == EventKind.acknowledged and payload["school"] in r.schools:
        r.schools[payload["school"]].acknowledged_at = ev.at
    elif kind == EventKind.ap_notification:
        r.ap.append((payload["kind"], payload["ap_reference"], _time(payload["notified_at"]),
                     tuple(sorted(payload["schools"]))))


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


def _differences(r: _Replayed, head: Any, schools: dict[str, Any], ap: list[tuple]) -> list[str]:
    found = []
    if r.state != head.state:
        found.append(f"state is '{head.state}', its events say '{r.state}'")
    if not r.complete:
        return found
    for name, implied in r.facts.items():
        stored = getattr(head, name)
        implied = _time(implied) if name == "discovered_at" else implied
        if stored != implied:
            found.append(f"{name} is {stored}, its events say {implied}")
    if set(schools) != set(r.schools):
        found.append(f"affected schools are {sorted(schools)}, its events say {sorted(r.schools)}")
    for brin in sorted(set(schools) & set(r.schools)):
        row, implied = schools[brin], r.schools[brin]
        for column, value in (("informed_at", implied.informed_at), ("told_to_notify_ap_at", implied.told_at),
                              ("acknowledged_at", implied.acknowledged_at)):
            if getattr(row, column) != value:
                found.append(f"{brin} {column} is {getattr(row, column)}, its events say {value}")
    if sorted(ap, key=repr) != sorted(r.ap, key=repr):
        found.append("the AP notifications differ from the ones on its timeline")
    return found


def _rows(conn: Connection) -> tuple[dict[int, Any], dict[int, dict[str, Any]], dict[int, list[tuple]]]:
    heads = {row.id: row for row in conn.execute(
        sa.select(incident_t.c.id, incident_t.c.reference, incident_t.c.state, incident_t.c.event_count,
                  incident_t.c.head_hash, incident_t.c.discovered_at, incident_t.c.cause_category,
                  data_key_t.c.wrapped).join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id))}
    brins = dict(conn.execute(sa.select(school_t.c.id, school_t.c.brin)).all())
    schools: dict[int, dict[str, Any]] = {}
    for row in conn.execute(sa.select(affected_t)):
        schools.setdefault(row.incident_id, {})[brins.get(row.school_id, f"#{row.school_id}")] = row
    ap: dict[int, list[tuple]] = {}
    for row in conn.execute(sa.select(ap_t)):
        ap.setdefault(row.incident_id, []).append(
            (row.kind, row.ap_reference, row.notified_at,
             tuple(sorted(brins.get(i, f"#{i}") for i in row.school_ids or ()))))
    return heads, schools, ap


@dataclass(frozen=True)
class _Unreadable:
    """An event row the database driver cannot even read (a value of the wrong type)."""

    incident_id: int
    seq: int
    error: str


def _events(conn: Connection) -> Iterator[tuple[int, list[Any]]]:
    """Every incident's events in order; a row that cannot be read comes as ``_Unreadable``."""
    try:
        rows = conn.execute(sa.select(event_t).order_by(event_t.c.incident_id, event_t.c.seq)).all()
    except (ValueError, TypeError, sa.exc.StatementError):  # one bad value: read row by row to find it
        rows = []
        for row_id, incident_id, seq in conn.execute(
                sa.select(event_t.c.id, event_t.c.incident_id, event_t.c.seq)
                .order_by(event_t.c.incident_id, event_t.c.seq)).all():
            try:
                rows.append(conn.execute(sa.select(event_t).where(event_t.c.id == row_id)).one())
            except (ValueError, TypeError, sa.exc.StatementError) as exc:
                rows.append(_Unreadable(incident_id, seq, f"{type(exc).__name__}: {exc}"))
    for incident_id, group in groupby(rows, key=lambda ev: ev.incident_id):
        yield incident_id, list(group)


def _replay(ctx: Context, head: Any, events: list[Any]) -> _Replayed:
    replayed = _Replayed()
    try:
        key: bytes | None = ctx.keys.unwrap(head.wrapped)
    except DataDestroyed:  # retention: the chain and the state still replay; a missing master key raises
        key = None
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


def _missing_references(conn: Connection, present: set[str]) -> list[str]:
    missing = []
    for year, last in conn.execute(sa.select(counter_t.c.year, counter_t.c.last)).all():
        missing += [ref for n in range(1, last + 1) if (ref := f"DL-{year}-{n:05d}") not in present]
    return missing


def verify(ctx: Context, checkpoint: dict[str, Any] | None = None) -> Report:
    """Check every chain, replay it against the rows, and check ``checkpoint`` if given."""
    report = Report()
    with read_transaction(ctx.engine) as conn:
        heads, schools, ap = _rows(conn)
        seen: dict[int, list[Any]] = {}
        for incident_id, events in _events(conn):
            report.events += len(events)
            head = heads.get(incident_id)
            if head is None:
                report.findings.append(Finding(f"#{incident_id}", "events of an incident that is not in the register"))
                continue
            seen[incident_id] = events
        for incident_id, head in sorted(heads.items(), key=lambda item: item[1].reference):
            report.incidents += 1
            events = seen.get(incident_id, [])
            broken = _check_chain(ctx.audit_key, head.reference, events, head)
            if broken is not None:
                report.findings.append(broken)
                continue
            try:
                replayed = _replay(ctx, head, events)
                differences = _differences(replayed, head, schools.get(incident_id, {}), ap.get(incident_id, []))
            except Exception as exc:  # noqa: BLE001  (a payload that does not replay is a finding)
                differences = [f"its events cannot be replayed ({type(exc).__name__}: {exc})"]
            report.findings += [Finding(head.reference, d) for d in differences]
        present = {h.reference for h in heads.values()}
        report.findings += [Finding(ref, "missing from the register (deleted?)")
                            for ref in _missing_references(conn, present)]
        if checkpoint is not None:
            report.findings += _against_checkpoint(ctx, checkpoint, heads, seen)
    return report


# --- checkpoints ------------------------------------------------------------------------------


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in document.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":")).encode()


def _root(incidents: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for entry in incidents:
        digest.update(f"{entry['reference']}:{entry['event_count']}:{entry['head_hash']}\n".encode())
    return digest.hexdigest()


def checkpoint(ctx: Context, now: datetime | None = None) -> dict[str, Any]:
    """Every incident's chain head and the register's root, signed with the checkpoint key."""
    with read_transaction(ctx.engine) as conn:
        rows = conn.execute(sa.select(incident_t.c.reference, incident_t.c.event_count, incident_t.c.head_hash)
                            .order_by(incident_t.c.reference)).all()
    incidents = [{"reference": r.reference, "event_count": r.event_count, "head_hash": r.head_hash} for r in rows]
    public = ctx.checkpoint_key.public_key().public_bytes_raw()
    document = {
        "format": CHECKPOINT_FORMAT,
        "created_at": (now or datetime.now(UTC)).isoformat(),
        "public_key": base64.b64encode(public).decode(),
        "incidents": incidents,
        "root": _root(incidents),
    }
    document["signature"] = base64.b64encode(ctx.checkpoint_key.sign(_canonical(document))).decode()
    return document


def write_checkpoint(ctx: Context, target: Path, now: datetime | None = None) -> Path:
    """Write a signed checkpoint to ``target`` (a file, or a directory for a dated file)."""
    document = checkpoint(ctx, now)
    if target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromisoformat(document["created_at"]).strftime("%Y%m%dT%H%M%SZ")
        target = target / f"checkpoint-{stamp}.json"
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file as written by ``write_checkpoint``; ``InvalidInput`` if it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput("invalid checkpoint", [FieldProblem("checkpoint", f"{path}: {exc}")]) from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInput("invalid checkpoint", [FieldProblem("checkpoint", f"{path} is not a checkpoint")])
    return document


def latest_checkpoint_at(directory: Path) -> datetime | None:
    """When the newest checkpoint in ``directory`` was written (by its file's name)."""
    stamps = sorted(p.stem.removeprefix("checkpoint-") for p in directory.glob("checkpoint-*.json"))
    return datetime.strptime(stamps[-1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if stamps else None


def _against_checkpoint(ctx: Context, document: dict[str, Any], heads: dict[int, Any],
                        events: dict[int, list[Any]]) -> list[Finding]:
    where = f"checkpoint of {document.get('created_at', '?')}"
    try:
        ctx.checkpoint_key.public_key().verify(base64.b64decode(document["signature"]), _canonical(document))
        listed = list(document["incidents"])
        if _root(listed) != document["root"]:
            return [Finding(where, "its root does not match its incidents")]
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return [Finding(where, "its signature does not verify with this installation's checkpoint key: "
                               "the file was altered or comes from elsewhere; nothing in it can be trusted")]
    by_reference = {head.reference: incident_id for incident_id, head in heads.items()}
    findings = []
    for entry in listed:
        reference, count, digest = entry["reference"], entry["event_count"], entry["head_hash"]
        incident_id = by_reference.get(reference)
        if incident_id is None:
            findings.append(Finding(reference, f"deleted: it was in the register at the {where}"))
            continue
        chain = events.get(incident_id, [])
        if count and (len(chain) < count or chain[count - 1].hash != digest):
            findings.append(Finding(reference, f"its events up to {count} were changed or removed since the {where}",
                                    count))
    return findings
