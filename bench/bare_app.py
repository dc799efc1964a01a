"""The baseline for bench/api.py: bare FastAPI endpoints doing the same work with raw sqlite3.

No authentication, no guards, no validation: async endpoints on one connection, WAL with
``synchronous=FULL`` (breachflow's durability). The write runs the statements of
``bench/engine.py``. The read selects the same incident row and opens it with the same key scheme
as breachflow, written here with ``cryptography`` alone: the data key, wrapped by Fernet under the
master keys (``BENCH_MASTER_KEYS``, newest first), unwrapped through an LRU keyed on the wrapped
bytes as breachflow caches it; the ``personal`` column opened with AES-GCM (a version byte, a
12-byte nonce, the ciphertext) and parsed as JSON.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from engine import raw_connection, raw_fire
from fastapi import FastAPI, HTTPException

app = FastAPI()
conn = raw_connection(os.environ["BENCH_DB"])
ring = MultiFernet([Fernet(k) for k in os.environ["BENCH_MASTER_KEYS"].split(",")])
SELECT_INCIDENT = ("SELECT incident.*, data_key.wrapped FROM incident "
                   "JOIN data_key ON data_key.id = incident.data_key_id WHERE incident.reference = ?")
JSON_COLUMNS = ("nature_actions", "affected_systems", "data_kinds")
VERSION, NONCE = b"\x01", 12


@lru_cache(maxsize=4096)
def data_key(wrapped: bytes) -> bytes:
    return ring.decrypt(wrapped)


def open_sealed(key: bytes, sealed: bytes) -> object:
    if sealed[:1] != VERSION:
        raise ValueError("unknown ciphertext format")
    return json.loads(AESGCM(key).decrypt(sealed[1:1 + NONCE], sealed[1 + NONCE:], None))


@app.get("/healthz")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/incidents/{reference}/fire")
async def fire(reference: str) -> dict:
    return {"reference": reference, "state": "triage", "version": raw_fire(conn, reference)}


@app.get("/incidents/{reference}")
async def read(reference: str) -> dict:
    row = conn.execute(SELECT_INCIDENT, (reference,)).fetchone()
    if row is None:
        raise HTTPException(404, f"incident {reference} does not exist")
    values = dict(row)
    key = data_key(values.pop("wrapped"))
    sealed = values.pop("personal")
    if sealed is not None:
        values.update(open_sealed(key, sealed))
    for name in JSON_COLUMNS:
        if values.get(name) is not None:
            values[name] = json.loads(values[name])
    return values
