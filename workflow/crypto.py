"""Encryption at rest (seed section 4: personal data is stored encrypted).

Envelope encryption: every incident (and every school) has its own random data key; the data key
is stored wrapped (Fernet) by the master keys; values are sealed with AES-GCM under the data key.
Destroying a data key makes that owner's personal data unreadable for good (retention), while
rows, counts and the timeline's hash chain — computed over ciphertext — stay intact.

Master keys come from ``BREACHFLOW_MASTER_KEYS`` (newest first) or, on the embedded default, the
owner-only key file (``workflow/keystore.py``). Rotation adds a new master key in front and
rewraps the data keys; old keys can then be removed. A ring read from the key file follows it:
processes that run while another rotates pick up the new key without a restart.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from breachflow.workflow import keystore
from breachflow.workflow.config import Settings
from breachflow.workflow.errors import DataDamaged, DataDestroyed, SecretUnavailable

_NONCE = 12
_VERSION = b"\x01"


class KeyRing:
    """The master keys of this process; wraps and unwraps data keys.

    A ring read from a key file (``source``) follows it: before it wraps, and when none of its keys opens a data
    key, it looks whether another file is there now (``breachflow keys rotate`` replaced it) and
    reads it. That costs a ``stat`` per wrap and per failed unwrap, and a read only when the file
    changed. A key file that is gone refuses new data keys: they would be sealed under a key that
    no longer exists on disk.
    """

    def __init__(self, master_keys: list[bytes], source: keystore.Loaded | None = None,
                 settings: Settings | None = None) -> None:
        if not master_keys:
            raise SecretUnavailable("no master key configured")
        self._settings = settings
        self._source = source
        self._use(master_keys)
        self._unwrap_cached = lru_cache(maxsize=4096)(self._unwrap)

    def _use(self, master_keys: list[bytes]) -> None:
        self._ring = (list(master_keys), MultiFernet([Fernet(k) for k in master_keys]))

    @property
    def keys(self) -> list[bytes]:
        return list(self._ring[0])

    def _follow(self) -> bool:
        """Read the key file again if another one is there now; ``True`` if the ring changed."""
        if self._source is None:
            return False
        path = self._source.path
        now = keystore.current_stamp(path)
        if now is None:
            raise SecretUnavailable(
                f"master key file {path} disappeared while breachflow runs: restore it from your backup"
            )
        if now == self._source.stamp:
            return False
        loaded = keystore.read(self._settings, keystore.MASTER)
        self._use(loaded.value)
        self._source = loaded  # after the keys: a thread that sees the old stamp only reads again
        return True

    def new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key and its form wrapped under the newest master key."""
        self._follow()
        key = AESGCM.generate_key(bit_length=256)
        return key, self._ring[1].encrypt(key)

    def unwrap(self, wrapped: bytes | None) -> bytes:
        """The data key inside ``wrapped``; ``DataDestroyed`` if destroyed, ``SecretUnavailable`` if no key opens it."""
        if wrapped is None:
            raise DataDestroyed("the data key was destroyed (retention period ended)")
        return self._unwrap_cached(bytes(wrapped))

    def _unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._ring[1].decrypt(wrapped)
        except InvalidToken:
            if not self._follow():
                raise self._unavailable() from None
        try:
            return self._ring[1].decrypt(wrapped)
        except InvalidToken:
            raise self._unavailable() from None

    def rewrap(self, wrapped: bytes) -> bytes:
        """``wrapped`` re-encrypted under the newest master key."""
        self._follow()
        try:
            return self._ring[1].rotate(wrapped)
        except InvalidToken:
            raise self._unavailable() from None

    def _unavailable(self) -> SecretUnavailable:
        where = f"the key file {self._source.path}" if self._source else "the configured master keys"
        return SecretUnavailable(
            f"no master key in {where} opens this data key: the key that wrapped it is missing; "
            "restore it (keep old keys in the list until every process runs with the new one)"
        )


def seal_bytes(key: bytes, plain: bytes) -> bytes:
    """Encrypt bytes under a data key (AES-GCM, random nonce)."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plain, None)


def open_bytes(key: bytes, sealed: bytes) -> bytes:
    """Decrypt what ``seal_bytes`` produced."""
    blob = bytes(sealed)
    if blob[:1] != _VERSION:
        raise DataDamaged("unknown ciphertext format")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], None)
    except InvalidTag as exc:
        raise DataDamaged("ciphertext does not match its data key (altered or corrupt)") from exc


def seal(key: bytes, value: Any) -> bytes:
    """Encrypt a JSON-serialisable value under a data key."""
    return seal_bytes(key, json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def open_sealed(key: bytes, sealed: bytes) -> Any:
    """Decrypt what ``seal`` produced."""
    return json.loads(open_bytes(key, sealed))


def load_key_ring(settings: Settings) -> KeyRing:
    """The ring from ``BREACHFLOW_MASTER_KEYS``, else from (and following) the key file."""
    loaded = keystore.read(settings, keystore.MASTER)
    return KeyRing(loaded.value, loaded if loaded.path else None, settings)
