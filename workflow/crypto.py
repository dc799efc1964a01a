"""Encryption at rest (seed section 4: personal data is stored encrypted).

Envelope encryption: every incident (and every school) has its own random data key; the data key
is stored wrapped (Fernet) by the master keys; values are sealed with AES-GCM under the data key.
Destroying a data key makes that owner's personal data unreadable for good (retention), while
rows, counts and the timeline's hash chain — computed over ciphertext — stay intact.

Master keys come from ``BREACHFLOW_MASTER_KEYS`` (newest first) or, on the embedded default, the
owner-only key file (``workflow/keystore.py``). Rotation adds a new master key in front and
rewraps the data keys; old keys can then be removed. A ring read from the key file follows it:
processes that run while another rotates pick up the new key without a restart.

Unwrapped data keys are kept in memory (``KeyCache``, within ``BREACHFLOW_DATA_KEY_CACHE_BYTES``):
a read opens an incident's data key once, not on every request. A ring that changes forgets
them all; a key destroyed in this process is forgotten at once (``KeyRing.forget``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import OrderedDict
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from breachflow.workflow import keystore
from breachflow.workflow.config import DATA_KEY_CACHE_BYTES, Settings
from breachflow.workflow.errors import DataDamaged, DataDestroyed, SecretUnavailable

_NONCE = 12
_VERSION = b"\x01"
ENTRY_OVERHEAD = 120  # bytes an entry costs besides its two values: dict slot and order node (measured)


class KeyCache:
    """Unwrapped data keys by their wrapped form, within a memory budget: the least recently used
    go first. Each entry counts its two byte strings and the dictionary's share. Thread-safe."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._keys: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        self._generation = 0
        self._lock = threading.Lock()

    @staticmethod
    def cost(wrapped: bytes, key: bytes) -> int:
        """The memory an entry takes."""
        return sys.getsizeof(wrapped) + sys.getsizeof(key) + ENTRY_OVERHEAD

    @property
    def generation(self) -> int:
        """Changes whenever the cache is cleared: a key unwrapped before is not put back after."""
        return self._generation

    def get(self, wrapped: bytes) -> bytes | None:
        with self._lock:
            key = self._keys.get(wrapped)
            if key is not None:
                self._keys.move_to_end(wrapped)
            return key

    def put(self, wrapped: bytes, key: bytes, generation: int) -> None:
        """Keep ``key``, unless the cache was cleared since ``generation`` or it alone exceeds the budget."""
        cost = self.cost(wrapped, key)
        with self._lock:
            if generation != self._generation or cost > self.budget or wrapped in self._keys:
                return
            self._keys[wrapped] = key
            self._bytes += cost
            while self._bytes > self.budget:
                self._bytes -= self.cost(*self._keys.popitem(last=False))

    def drop(self, wrapped: bytes) -> None:
        with self._lock:
            key = self._keys.pop(wrapped, None)
            if key is not None:
                self._bytes -= self.cost(wrapped, key)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._bytes = 0
            self._generation += 1

    def __contains__(self, wrapped: object) -> bool:
        return wrapped in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def used(self) -> int:
        """The memory the entries take, as counted against the budget."""
        return self._bytes


class KeyRing:
    """The master keys of this process; wraps and unwraps data keys.

    A ring read from a key file (``source``) follows it: before it wraps, and when none of its keys opens a data
    key, it looks whether another file is there now (``breachflow keys rotate`` replaced it) and
    reads it. That costs a ``stat`` per wrap and per failed unwrap, and a read only when the file
    changed. A key file that is gone refuses new data keys: they would be sealed under a key that
    no longer exists on disk.
    """

    def __init__(self, master_keys: list[bytes], source: keystore.Loaded | None = None,
                 settings: Settings | None = None, cache_bytes: int = DATA_KEY_CACHE_BYTES) -> None:
        if not master_keys:
            raise SecretUnavailable("no master key configured")
        self._settings = settings
        self._source = source
        self.cache = KeyCache(cache_bytes)
        self._use(master_keys)

    def _use(self, master_keys: list[bytes]) -> None:
        self._ring = (list(master_keys), MultiFernet([Fernet(k) for k in master_keys]))
        self.cache.clear()  # what the old keys opened is the new keys' to open (or not)

    @property
    def keys(self) -> list[bytes]:
        return list(self._ring[0])

    def _follow(self) -> bool:
        """Read the key file again if another one is there now; ``True`` if the ring changed."""
        if self._source is None or self._source.path is None or self._settings is None:
            return False  # keys from a variable: no file to follow
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
        wrapped = bytes(wrapped)
        key = self.cache.get(wrapped)
        if key is None:
            generation = self.cache.generation
            key = self._unwrap(wrapped)
            self.cache.put(wrapped, key, generation)
        return key

    def forget(self, wrapped: bytes) -> None:
        """Drop the data key inside ``wrapped`` from memory: it is being destroyed. (Another process
        that holds it finds the key gone from the row and never asks its memory.)"""
        self.cache.drop(bytes(wrapped))

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
    return KeyRing(loaded.value, loaded if loaded.path else None, settings, settings.data_key_cache_bytes)
