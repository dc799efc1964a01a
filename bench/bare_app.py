"""The baseline for bench/api.py: a bare FastAPI endpoint doing the same writes with raw sqlite3.

No authentication, no guards, no encryption: one async endpoint, one connection, WAL with
``synchronous=FULL`` (breachflow's durability), the statements of ``bench/engine.py``.
"""

from __future__ import annotations

import os

from engine import raw_connection, raw_fire
from fastapi import FastAPI

app = FastAPI()
conn = raw_connection(os.environ["BENCH_DB"])


@app.get("/healthz")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/incidents/{reference}/fire")
async def fire(reference: str) -> dict:
    return {"reference": reference, "state": "triage", "version": raw_fire(conn, reference)}
