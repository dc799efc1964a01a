"""Benchmark: breachflow's ``fire`` through the service layer against raw sqlite3 doing the same writes.

Both sides run in one process, in alternating rounds, on identical copies of one database
(SQLite, WAL, ``synchronous=FULL``). Each transaction reads the incident with its data key,
its schools and its AP notifications, updates the incident and inserts one timeline event.
Both compute the keyed (HMAC) chain link; breachflow adds the unit of work, the guards, the
state machine and encryption on top.

Beside wall-clock throughput it reports the process CPU time per transaction of each side: the
wall clock of a durable commit is mostly waiting for the disk, which hides what the code costs.

    python bench/engine.py [--incidents N] [--rounds R] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from breachflow.workflow import schools, service
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise

RAW_STATEMENTS = (
    "SELECT incident.*, data_key.wrapped FROM incident JOIN data_key ON data_key.id = incident.data_key_id "
    "WHERE incident.reference = ?",
    "SELECT affected_school.*, school.brin, school.name FROM affected_school "
    "JOIN school ON school.id = affected_school.school_id WHERE affected_school.incident_id = ? ORDER BY school.brin",
    "SELECT * FROM ap_notification WHERE incident_id = ? ORDER BY id",
    "UPDATE incident SET version = ?, updated_at = ?, event_count = ?, head_hash = ?, state = ? "
    "WHERE id = ? AND version = ? AND event_count = ?",
    "INSERT INTO timeline_event (incident_id, seq, at, actor, kind, from_state, to_state, payload, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
PAYLOAD_BYTES = 70  # a sealed {"trigger": "begin_triage", "changes": {}}


def prepare(directory: Path, count: int) -> tuple[Settings, list[str]]:
    """An installation with ``count`` reported incidents."""
    settings = Settings(data_dir=directory / "var")
    initialise(settings)
    ctx = Context.open(settings)
    refs = fill(ctx, count)
    ctx.engine.dispose()
    return settings, refs


def fill(ctx: Context, count: int) -> list[str]:
    """One school and ``count`` incidents reported about it, discovered an hour ago; their references."""
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["directie@regenboog.example.nl"])
    discovered = datetime.now(UTC) - timedelta(hours=1)
    refs = []
    for n in range(count):
        refs.append(service.report(ctx, actor="bench", source="monitoring", schools={"12AB": 30},
                                   fields={"discovered_at": discovered, "summary": f"Report {n}"}).reference)
        if n % 500 == 499:
            print(f"  prepared {n + 1}/{count} incidents", file=sys.stderr)
    return refs


def raw_connection(path: Path) -> sqlite3.Connection:
    """A stdlib connection at breachflow's durability (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


PAYLOAD, AUDIT_KEY = os.urandom(PAYLOAD_BYTES), os.urandom(32)


def keyed_link(prev: str, incident_id: int, seq: int, at: str) -> str:
    """The same HMAC-SHA256 link breachflow computes (its canonical form, its key size)."""
    canonical = json.dumps([prev, incident_id, seq, at, "bench", "transition", "reported", "triage", PAYLOAD.hex()],
                           separators=(",", ":"))
    return hmac.new(AUDIT_KEY, canonical.encode(), hashlib.sha256).hexdigest()


def raw_fire(conn: sqlite3.Connection, reference: str) -> int:
    """``begin_triage``'s writes in raw SQL, one transaction; return the new version."""
    select_incident, select_schools, select_ap, update_incident, insert_event = RAW_STATEMENTS
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute(select_incident, (reference,)).fetchone()
    incident_id, version = row["id"], row["version"]
    conn.execute(select_schools, (incident_id,)).fetchall()
    conn.execute(select_ap, (incident_id,)).fetchall()
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    digest = keyed_link(row["head_hash"], incident_id, 2, now)
    conn.execute(update_incident, (version + 1, now, 2, digest, "triage", incident_id, version, 1))
    conn.execute(insert_event, (incident_id, 2, now, "bench", "transition", "reported", "triage",
                                PAYLOAD, row["head_hash"], digest))
    conn.execute("COMMIT")
    return version + 1


@dataclass
class Round:
    """Transactions per second (wall clock) and CPU seconds per transaction (this process)."""

    per_s: float
    cpu_per_transaction: float


def timed(refs: list[str], transaction: Callable[[str], object]) -> Round:
    started, cpu = time.perf_counter(), time.process_time()
    for ref in refs:
        transaction(ref)
    cpu, elapsed = time.process_time() - cpu, time.perf_counter() - started
    return Round(len(refs) / elapsed, cpu / len(refs))


def raw_round(path: Path, refs: list[str]) -> Round:
    """The same statements with stdlib sqlite3."""
    conn = raw_connection(path)
    result = timed(refs, lambda ref: raw_fire(conn, ref))
    conn.close()
    return result


def breachflow_round(ctx: Context, refs: list[str]) -> Round:
    """Fires through ``workflow.service.fire``."""
    return timed(refs, lambda ref: service.fire(ctx, reference=ref, trigger="begin_triage", actor="bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=1500, help="transactions per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="breachflow-bench-") as tmp:
        settings, refs = prepare(Path(tmp), args.incidents * args.rounds)
        raw_path = Path(tmp) / "raw.db"
        shutil.copy(settings.data_dir / "breachflow.db", raw_path)
        ctx = Context.open(settings)
        raw: list[Round] = []
        ours: list[Round] = []
        for r in range(args.rounds):
            batch = refs[r * args.incidents:(r + 1) * args.incidents]
            raw.append(raw_round(raw_path, batch))
            ours.append(breachflow_round(ctx, batch))
            print(f"  round {r + 1}/{args.rounds}: raw {raw[-1].per_s:.0f}/s "
                  f"({1000 * raw[-1].cpu_per_transaction:.3f} ms CPU each), breachflow {ours[-1].per_s:.0f}/s "
                  f"({1000 * ours[-1].cpu_per_transaction:.3f} ms CPU each)", file=sys.stderr)
        ctx.engine.dispose()

    result = {
        "raw_sqlite3_per_s": round(statistics.median(r.per_s for r in raw)),
        "breachflow_fire_per_s": round(statistics.median(o.per_s for o in ours)),
        "ratio": round(statistics.median(o.per_s / r.per_s for o, r in zip(ours, raw, strict=True)), 3),
        "raw_cpu_ms_per_transaction": round(1000 * statistics.median(r.cpu_per_transaction for r in raw), 3),
        "breachflow_cpu_ms_per_transaction": round(1000 * statistics.median(o.cpu_per_transaction for o in ours), 3),
        # like "ratio", higher is better for breachflow: raw CPU per transaction / breachflow's
        "cpu_ratio": round(statistics.median(r.cpu_per_transaction / o.cpu_per_transaction
                                             for o, r in zip(ours, raw, strict=True)), 3),
        "target": 0.3,
        "transactions_per_round": args.incidents,
        "rounds": args.rounds,
        "sqlite": sqlite3.sqlite_version,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"raw sqlite3 (WAL, synchronous=FULL): {result['raw_sqlite3_per_s']} transactions/s")
        print(f"breachflow fire (service layer):     {result['breachflow_fire_per_s']} fires/s")
        print(f"CPU per transaction: raw {result['raw_cpu_ms_per_transaction']} ms, "
              f"breachflow {result['breachflow_cpu_ms_per_transaction']} ms")
        print(f"ratio: {result['ratio']} (target ≥ {result['target']}); "
              f"CPU ratio (raw CPU / breachflow CPU per transaction): {result['cpu_ratio']}")


if __name__ == "__main__":
    main()
