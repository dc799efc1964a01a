"""Encryption at rest (seed section 4: personal data is stored encrypted).

Envelope encryption: every incident (and every school) has its own random data key; the data key
is stored wrapped (Fernet) by the master keys; values are sealed with AES-GCM under the data key.
Destroying a data key makes that owner's personal data unreadable for good (retention), while
rows, counts and the timeline's hash chain — computed over ciphertext — stay intact.

Master keys come from ``BREACHFLOW_MASTER_KEYS`` (newest first) or, on the embedded default, a key
file created with owner-only rights. Rotation adds a new master key in front and rewraps the data
keys; old keys can then be removed.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from workflow.config import Settings
from workflow.errors import KeyUnavailable, NotInitialised

_NONCE = 12
_VERSION = b"\x01"


def _parse_keys(text: str) -> list[bytes]:
    return [k.strip().encode() for k in text.replace("\n", ",").split(",") if k.strip()]


class KeyRing:
    """The master keys of this process; wraps and unwraps data keys."""

    def __init__(self, master_keys: list[bytes]) -> None:
        if not master_keys:
            raise NotInitialised("no master key configured")
        self._keys = master_keys
        self._fernet = MultiFernet([Fernet(k) for k in master_keys])
        self._unwrap_cached = lru_cache(maxsize=4096)(self._unwrap)

    @property
    def keys(self) -> list[bytes]:
        return list(self._keys)

    def new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key and its wrapped form."""
        key = AESGCM.generate_key(bit_length=256)
        return key, self._fernet.encrypt(key)

    def unwrap(self, wrapped: bytes | None) -> bytes:
        """The data key inside ``wrapped``; ``KeyUnavailable`` if destroyed or foreign."""
        if wrapped is None:
            raise KeyUnavailable("the data key was destroyed (retention period ended)")
        return self._unwrap_cached(bytes(wrapped))

    def _unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._fernet.decrypt(wrapped)
        except InvalidToken as exc:
            raise KeyUnavailable("no configured master key opens this data key") from exc

    def rewrap(self, wrapped: bytes) -> bytes:
        """``wrapped`` re-encrypted under the newest master key."""
        try:
            return self._fernet.rotate(wrapped)
        except InvalidToken as exc:
            raise KeyUnavailable("no configured master key opens this data key") from exc


def seal_bytes(key: bytes, plain: bytes) -> bytes:
    """Encrypt bytes under a data key (AES-GCM, random nonce)."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plain, None)


def open_bytes(key: bytes, sealed: bytes) -> bytes:
    """Decrypt what ``seal_bytes`` produced."""
    blob = bytes(sealed)
    if blob[:1] != _VERSION:
        raise KeyUnavailable("unknown ciphertext format")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], None)
    except InvalidTag as exc:
        raise KeyUnavailable("ciphertext does not match its data key") from exc


def seal(key: bytes, value: Any) -> bytes:
    """Encrypt a JSON-serialisable value under a data key."""
    return seal_bytes(key, json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def open_sealed(key: bytes, sealed: bytes) -> Any:
    """Decrypt what ``seal`` produced."""
    return json.loads(open_bytes(key, sealed))


def create_key_file(path: Path) -> bool:
    """Create ``path`` with one new master key, owner-only; ``False`` if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n")
    return True


def add_key_to_file(path: Path) -> None:
    """Put a new master key in front of the key file (rotation); the old ones stay for reading."""
    old = path.read_bytes()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n" + old)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_key_ring(settings: Settings) -> KeyRing:
    """The key ring from configuration, else from the key file."""
    if settings.master_keys is not None:
        return KeyRing(_parse_keys(settings.master_keys.get_secret_value()))
    path = settings.resolved_key_file
    if not path.is_file():
        raise NotInitialised(f"key file {path} does not exist; run 'breachflow init'")
    return KeyRing(_parse_keys(path.read_text()))
