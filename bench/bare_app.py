"""The baseline for bench/api.py: a bare FastAPI endpoint doing the same writes with raw sqlite3.

No authentication, no guards, no encryption: one async endpoint, one connection, WAL with
``synchronous=FULL`` (breachflow's durability), the statements of ``bench/engine.py``.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime

from fastapi import FastAPI

from engine import PAYLOAD_BYTES, RAW_STATEMENTS

app = FastAPI()
conn = sqlite3.connect(os.environ["BENCH_DB"], isolation_level=None, check_same_thread=False)
conn.row_factory = sqlite3.Row
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
PAYLOAD, DIGEST = os.urandom(PAYLOAD_BYTES), "f" * 64


@app.get("/healthz")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/incidents/{reference}/fire")
async def fire(reference: str) -> dict:
    select_incident, select_schools, select_ap, update_incident, insert_event = RAW_STATEMENTS
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute(select_incident, (reference,)).fetchone()
    incident_id, version = row["id"], row["version"]
    conn.execute(select_schools, (incident_id,)).fetchall()
    conn.execute(select_ap, (incident_id,)).fetchall()
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    conn.execute(update_incident, (version + 1, now, 2, DIGEST, "triage", incident_id, version))
    conn.execute(insert_event, (incident_id, 2, now, "bench", "transition", "reported", "triage",
                                PAYLOAD, DIGEST, DIGEST))
    conn.execute("COMMIT")
    return {"reference": reference, "state": "triage", "version": version + 1}
