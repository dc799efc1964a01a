"""Signed checkpoints of the register: every incident's chain head and a register-wide root,
signed with the installation's Ed25519 checkpoint key. Keep the files somewhere the database's
administrators cannot write: ``problems`` then proves that nothing before a checkpoint was
changed, cut off or deleted (``breachflow audit verify --checkpoint FILE``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from breachflow.workflow import files
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.models import incident_t

CHECKPOINT_FORMAT = "breachflow-checkpoint/1"


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in document.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":")).encode()


def _root(incidents: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for entry in incidents:
        digest.update(f"{entry['reference']}:{entry['event_count']}:{entry['head_hash']}\n".encode())
    return digest.hexdigest()


def create(ctx: Context, now: datetime | None = None) -> dict[str, Any]:
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


def write(ctx: Context, target: Path, now: datetime | None = None) -> Path:
    """Write a signed checkpoint to ``target`` (a file, or a directory for a dated file), owner-only
    and whole: workers writing into one directory at once each leave a complete file."""
    document = create(ctx, now)
    if target.is_dir() or not target.suffix:
        stamp = datetime.fromisoformat(document["created_at"]).strftime("%Y%m%dT%H%M%SZ")
        target = target / f"checkpoint-{stamp}.json"
    files.write_private(target, (json.dumps(document, indent=1) + "\n").encode(), replace=True)
    return target


def load(path: Path) -> dict[str, Any]:
    """A checkpoint file as written by ``write``; ``InvalidInput`` if it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput("invalid checkpoint", [FieldProblem("checkpoint", f"{path}: {exc}")]) from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInput("invalid checkpoint", [FieldProblem("checkpoint", f"{path} is not a checkpoint")])
    return document


def latest_at(directory: Path) -> datetime | None:
    """When the newest checkpoint in ``directory`` was written (by its file's name)."""
    stamps = sorted(p.stem.removeprefix("checkpoint-") for p in directory.glob("checkpoint-*.json"))
    return datetime.strptime(stamps[-1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if stamps else None


def problems(public_key: Ed25519PublicKey, document: dict[str, Any],
             chains: dict[str, list[str | None]]) -> list[tuple[str, str, int | None]]:
    """What ``document`` proves wrong with the register now, as (reference, problem, event):
    ``chains`` holds each incident's event hashes in order, by reference."""
    where = f"checkpoint of {document.get('created_at', '?')}"
    try:
        public_key.verify(base64.b64decode(document["signature"]), _canonical(document))
        listed = list(document["incidents"])
        if _root(listed) != document["root"]:
            return [(where, "its root does not match its incidents", None)]
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return [(where, "its signature does not verify with this installation's checkpoint key: "
                        "the file was altered or comes from elsewhere; nothing in it can be trusted", None)]
    found: list[tuple[str, str, int | None]] = []
    for entry in listed:
        reference, count, digest = entry["reference"], entry["event_count"], entry["head_hash"]
        if reference not in chains:
            found.append((reference, f"deleted: it was in the register at the {where}", None))
            continue
        chain = chains[reference]
        if count and (len(chain) < count or chain[count - 1] != digest):
            found.append((reference, f"its events up to {count} were changed or removed since the {where}", count))
    return found
