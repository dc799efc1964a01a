"""The master keys of a process and the data keys they have opened (``workflow/crypto.py``): what a
ring follows, what its memory keeps, and what sealing keeps of a value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from breachflow.workflow import crypto, keystore
from breachflow.workflow.config import Settings
from breachflow.workflow.context import initialise
from breachflow.workflow.errors import DataDestroyed, SecretUnavailable

KEY = b"k" * 32


def entry(n: int) -> tuple[bytes, bytes]:
    return f"wrapped-{n:04}".encode(), KEY


def cache_of(entries: int) -> crypto.KeyCache:
    """A cache whose budget holds exactly ``entries`` entries like ``entry(n)``."""
    return crypto.KeyCache(entries * crypto.KeyCache.cost(*entry(0)))


# --- the memory of opened data keys ------------------------------------------------------------


def test_an_empty_cache_uses_nothing():
    assert crypto.KeyCache(1000).used == 0


def test_an_entry_costs_more_the_larger_either_of_its_values():
    wrapped, key = entry(0)
    assert crypto.KeyCache.cost(wrapped * 10, key) > crypto.KeyCache.cost(wrapped, key)
    assert crypto.KeyCache.cost(wrapped, key * 10) > crypto.KeyCache.cost(wrapped, key)
    assert crypto.KeyCache.cost(wrapped, key) > len(wrapped) + len(key) + crypto.ENTRY_OVERHEAD


def test_entries_filling_the_budget_exactly_are_all_kept():
    cache = cache_of(2)
    for n in range(2):
        cache.put(*entry(n), cache.generation)
    assert len(cache) == 2 and cache.used == cache.budget


def test_the_least_recently_used_goes_first_when_the_budget_is_exceeded():
    cache = cache_of(2)
    cache.put(*entry(0), cache.generation)
    cache.put(*entry(1), cache.generation)
    cache.get(entry(0)[0])  # used again: entry 1 is now the least recently used
    cache.put(*entry(2), cache.generation)
    assert entry(0)[0] in cache and entry(2)[0] in cache and entry(1)[0] not in cache
    assert cache.used == cache.budget


def test_an_entry_larger_than_the_whole_budget_is_not_kept_and_evicts_nothing():
    cache = cache_of(1)
    cache.put(*entry(0), cache.generation)
    cache.put(b"w" * 500, KEY, cache.generation)
    assert b"w" * 500 not in cache and entry(0)[0] in cache and cache.used == cache.budget


def test_an_entry_put_twice_is_counted_once():
    cache = cache_of(3)
    cache.put(*entry(0), cache.generation)
    cache.put(*entry(0), cache.generation)
    assert cache.used == crypto.KeyCache.cost(*entry(0))


def test_dropping_an_entry_gives_its_memory_back_and_an_unknown_one_is_no_error():
    cache = cache_of(3)
    cache.put(*entry(0), cache.generation)
    cache.put(*entry(1), cache.generation)
    cache.drop(entry(0)[0])
    cache.drop(b"never kept")
    assert entry(0)[0] not in cache and cache.used == crypto.KeyCache.cost(*entry(1))
    cache.drop(entry(1)[0])
    assert cache.used == 0 and len(cache) == 0


def test_a_key_opened_before_a_clearing_is_not_kept_after_it():
    cache = cache_of(3)
    cache.put(*entry(0), cache.generation)
    for _ in range(2):  # every clearing changes the generation, the second as much as the first
        before = cache.generation
        cache.clear()
        assert cache.generation != before and cache.used == 0 and len(cache) == 0
        cache.put(*entry(1), before)
        assert entry(1)[0] not in cache
    cache.put(*entry(1), cache.generation)
    assert entry(1)[0] in cache


# --- the ring ---------------------------------------------------------------------------------


def test_a_ring_without_master_keys_is_refused():
    with pytest.raises(SecretUnavailable):
        crypto.KeyRing([])


def test_a_destroyed_data_key_opens_nothing():
    with pytest.raises(DataDestroyed):
        crypto.KeyRing([Fernet.generate_key()]).unwrap(None)


def test_the_ring_keeps_as_many_opened_keys_as_configured(tmp_path):
    settings = Settings(data_dir=tmp_path / "var", data_key_cache_bytes=12_345)
    initialise(settings)
    assert crypto.load_key_ring(settings).cache.budget == 12_345


def test_a_ring_of_configured_keys_reads_no_file(tmp_path):
    settings = Settings(data_dir=tmp_path / "nowhere", master_keys=Fernet.generate_key().decode())
    ring = crypto.load_key_ring(settings)
    key, wrapped = ring.new_data_key()
    assert ring.unwrap(wrapped) == key
    with pytest.raises(SecretUnavailable) as refused:
        ring.unwrap(Fernet(Fernet.generate_key()).encrypt(KEY))
    assert str(refused.value) == (
        "no master key in the configured master keys opens this data key: the key that wrapped it is missing; "
        "restore it (keep old keys in the list until every process runs with the new one)")


def test_a_ring_opens_a_data_key_wrapped_under_a_key_added_to_its_file_since_and_again(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ring = crypto.load_key_ring(settings)
    for _ in range(2):  # each rotation is followed, not only the first
        keystore.add_master_key(settings)  # another process rotates
        newest = keystore.read(settings, keystore.MASTER).value[0]
        wrapped = Fernet(newest).encrypt(KEY)
        assert ring.unwrap(wrapped) == KEY


# --- sealing ------------------------------------------------------------------------------------


def test_a_sealed_time_opens_as_its_iso_text():
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert crypto.open_sealed(KEY, crypto.seal(KEY, {"at": at, "name": "Zoë"})) == {"at": str(at), "name": "Zoë"}


def test_a_ring_says_which_key_file_opens_nothing_and_refuses_new_data_keys_when_the_file_vanished(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ring = crypto.load_key_ring(settings)
    path = settings.resolved_key_file
    with pytest.raises(SecretUnavailable) as refused:
        ring.unwrap(Fernet(Fernet.generate_key()).encrypt(KEY))
    assert str(refused.value).startswith(f"no master key in the key file {path} opens this data key")
    path.unlink()
    with pytest.raises(SecretUnavailable) as refused:
        ring.new_data_key()
    assert str(refused.value) == f"master key file {path} disappeared while breachflow runs: restore it from your backup"
