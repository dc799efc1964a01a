"""Keys that belong to this database: checked once per process, before the first write.

A well-formed key from another installation (a restored backup of the wrong file, a mixed-up
environment) would otherwise be accepted: new data sealed under it, new events chained with it,
and the mistake found only when the right key is back and those rows no longer open or verify.
"""

from __future__ import annotations

import hashlib
import hmac
import weakref

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow import crypto, timeline
from breachflow.workflow.errors import DataDestroyed, SecretUnavailable
from breachflow.workflow.models import data_key_t, event_t

_RECENT = 5  # the newest rows tried: one that opens or verifies shows the key is this database's
_rings: weakref.WeakSet[crypto.KeyRing] = weakref.WeakSet()  # rings that opened a data key here
_audit_keys: set[bytes] = set()  # digests of audit keys that verified an event here


def master_keys_match(conn: Connection, keys: crypto.KeyRing) -> None:
    """Refuse to seal new data when the master keys open none of this database's newest data keys."""
    if keys in _rings:
        return
    if not _master_keys_open(conn, keys, _RECENT):
        raise SecretUnavailable("the configured master keys open none of this database's data keys: they belong "
                                "to another installation; configure this one's key file or BREACHFLOW_MASTER_KEYS")
    _rings.add(keys)


def audit_key_matches(conn: Connection, audit_key: bytes) -> None:
    """Refuse to chain new events when the audit key verifies none of the newest events."""
    digest = hashlib.sha256(audit_key).digest()
    if digest in _audit_keys:
        return
    if not _audit_key_verifies(conn, audit_key):
        raise SecretUnavailable("the audit key verifies none of this database's newest timeline events: it belongs "
                                "to another installation; configure this one's audit key file or "
                                "BREACHFLOW_AUDIT_KEY (or run 'breachflow audit verify')")
    _audit_keys.add(digest)


def require_keys_of(conn: Connection, keys: crypto.KeyRing, audit_key: bytes, what: str) -> None:
    """Refuse a database (``what``, e.g. a backup) unless the master keys open every one of its data
    keys that is not destroyed and the audit key verifies its newest events; nothing cached."""
    if not _master_keys_open(conn, keys, None, every=True):
        raise SecretUnavailable(f"the configured master keys do not open every data key of {what}: it belongs to "
                                "another installation, or needs a master key this one no longer has; configure the "
                                "keys it was made with (key file or BREACHFLOW_MASTER_KEYS)")
    if not _audit_key_verifies(conn, audit_key):
        raise SecretUnavailable(f"the configured audit key verifies none of the newest timeline events of {what}: "
                                "it belongs to another installation; configure its audit key")


def _master_keys_open(conn: Connection, keys: crypto.KeyRing, limit: int | None, *, every: bool = False) -> bool:
    """Whether the keys open one (or ``every``) of the newest ``limit`` data keys; True when there are none."""
    query = sa.select(data_key_t.c.wrapped).where(data_key_t.c.wrapped.is_not(None)).order_by(data_key_t.c.id.desc())
    wrapped_keys = conn.execute(query.limit(limit) if limit else query).scalars().all()
    opened = []
    for wrapped in wrapped_keys:
        try:
            keys.unwrap(wrapped)
            opened.append(True)
        except (SecretUnavailable, DataDestroyed):
            opened.append(False)
    return not opened or (all(opened) if every else any(opened))


def _audit_key_verifies(conn: Connection, audit_key: bytes) -> bool:
    """Whether the key verifies one of the newest events; True when there are none."""
    newest = conn.execute(sa.select(event_t).order_by(event_t.c.id.desc()).limit(_RECENT)).all()
    return not newest or any(
        hmac.compare_digest(ev.hash, timeline.event_hash(audit_key, ev.prev_hash, ev.incident_id, ev.seq, ev.at,
                                                         ev.actor, ev.kind, ev.from_state, ev.to_state, ev.payload))
        for ev in newest
    )
