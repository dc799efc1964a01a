"""Storage: personal data encrypted at rest, a tamper-evident timeline, keys that rotate."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CONFIRM, add_school, reported
from cryptography.fernet import Fernet, MultiFernet
from reading import whole_timeline

from breachflow.api.errors import status_of
from breachflow.notifications import outbox
from breachflow.notifications.worker import notifications_context
from breachflow.workflow import audit, crypto, keystore, queries, register, service, store
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise
from breachflow.workflow.errors import DataDamaged, DataDestroyed, NotInitialised, SecretUnavailable
from breachflow.workflow.models import ap_t, data_key_t, incident_t

PLANTED = "Fenna Wijnbergen-Oosterhuis"


def _all_stored_text(ctx: Context, backend: str) -> bytes:
    """Every byte the database keeps: the files on SQLite, every row as text on PostgreSQL."""
    if backend == "sqlite":
        path = Path(ctx.engine.url.database)
        ctx.engine.dispose()  # close connections so the WAL is checkpointed into the file too
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    with ctx.engine.connect() as conn:
        tables = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
        return b"".join(
            str(row).encode() for table in list(tables)
            for row in conn.execute(sa.text(f'SELECT t::text FROM "{table}" t'))  # noqa: S608 names from pg_tables
        )


def test_a_planted_name_is_nowhere_in_the_database(ctx, backend):
    add_school(ctx)
    mailing = notifications_context(ctx)
    ref = reported(mailing)
    service.update(mailing, reference=ref, actor="hanna",
                   fields={"reporter_name": PLANTED, "summary": f"{PLANTED} saw another pupil's grades"})
    service.add_note(mailing, reference=ref, actor="hanna", text=f"Called {PLANTED}")
    service.fire(mailing, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(mailing, reference=ref, trigger="confirm", actor="hanna",
                 fields={k: v for k, v in CONFIRM.items() if k != "summary"})
    assert queries.get(ctx, ref).disclosure.reporter_name == PLANTED
    assert len(outbox.list_messages(ctx, status="pending").items) == 1  # the notice, which names them too
    stored = _all_stored_text(ctx, backend)
    assert PLANTED.encode() not in stored
    assert b"directie@12ab.example.nl" not in stored  # the school's contact address


def test_a_late_ap_notifications_delay_reason_is_sealed_at_rest(ctx, backend):
    reason = f"{PLANTED} was on leave and held the only copy"
    add_school(ctx)
    ref = reported(ctx, discovered_hours_ago=80)
    service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-9",
                                   delay_reason=reason)
    with ctx.engine.connect() as conn:
        incident_id, column = conn.execute(sa.select(ap_t.c.incident_id, ap_t.c.delay_reason)).one()
    assert reason.encode() not in bytes(column) and PLANTED.encode() not in bytes(column)
    (delay,) = register.histories(ctx, [incident_id])[incident_id].ap_delays
    assert delay.reason == reason  # sealed, and opened again with the incident's data key
    assert PLANTED.encode() not in _all_stored_text(ctx, backend)


def test_sealing_the_same_value_twice_uses_a_fresh_nonce_each_time():
    """AES-GCM under one key with a repeated nonce leaks the XOR of plaintexts and the key for forging."""
    key = os.urandom(32)
    first, second = crypto.seal_bytes(key, b"same plaintext"), crypto.seal_bytes(key, b"same plaintext")
    assert first[1:13] != second[1:13] and first != second  # version byte, then a 12-byte nonce
    assert crypto.open_bytes(key, first) == crypto.open_bytes(key, second) == b"same plaintext"


def test_open_without_init_says_what_to_run(tmp_path):
    with pytest.raises(NotInitialised, match="breachflow init"):
        Context.open(Settings(data_dir=tmp_path / "nothing"))


@pytest.fixture
def walked(ctx, confirmed_incident) -> str:
    ref = confirmed_incident
    service.add_note(ctx, reference=ref, actor="hanna", text="School called back")
    return ref


def test_destroying_a_data_key_keeps_the_chain_intact(ctx, walked):
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(data_key_t).values(wrapped=None))
    report = audit.verify(ctx)
    assert (report.events, report.findings) == (4, [])
    assert all(entry.payload is None for entry in whole_timeline(ctx, walked))
    with pytest.raises(DataDestroyed):
        queries.get(ctx, walked)


@pytest.mark.tampers
def test_an_altered_sealed_value_is_damage_not_destruction(ctx, walked):
    with ctx.engine.begin() as conn:
        personal = bytes(conn.execute(sa.select(incident_t.c.personal)).scalar_one())
        conn.execute(sa.update(incident_t).values(personal=personal[:-1] + bytes([personal[-1] ^ 1])))
    with pytest.raises(DataDamaged, match="altered or corrupt") as raised:
        queries.get(ctx, walked)
    assert status_of(raised.value) == 500  # not 410: nothing was destroyed on purpose


@pytest.mark.tampers  # rewraps under a key only this test holds: the audit afterwards could not open them
def test_key_rotation_rewraps_data_keys_and_old_keys_can_go(ctx, walked, settings):
    old_key = ctx.keys.keys[0]
    new_key = Fernet.generate_key()
    rotated = replace(ctx, keys=crypto.KeyRing([new_key, old_key]))
    assert service.rotate_keys(rotated) == 2  # the school's key and the incident's key
    only_new = replace(ctx, keys=crypto.KeyRing([new_key]))
    assert queries.get(only_new, walked).disclosure.summary == CONFIRM["summary"]
    only_old = replace(ctx, keys=crypto.KeyRing([old_key]))
    with pytest.raises(SecretUnavailable):
        queries.get(only_old, walked)


def test_references_are_unique_and_human_friendly(ctx):
    add_school(ctx)
    refs = [reported(ctx) for _ in range(3)]
    year = refs[0].split("-")[1]
    assert refs == [f"DL-{year}-0000{n}" for n in (1, 2, 3)]


# --- opened data keys stay in memory, within a budget, and go with their master keys --------------


@pytest.fixture
def unwraps(monkeypatch) -> list[bytes]:
    """Every data key the master keys are asked to open, as it is asked."""
    asked: list[bytes] = []
    decrypt = MultiFernet.decrypt

    def counting(self, msg, ttl=None):
        asked.append(msg)
        return decrypt(self, msg, ttl)

    monkeypatch.setattr(MultiFernet, "decrypt", counting)
    return asked


def test_the_data_keys_of_a_large_register_are_opened_once(unwraps):
    ring = crypto.KeyRing([Fernet.generate_key()])
    wrapped = [ring.new_data_key()[1] for _ in range(6000)]  # more than the 4,096 an earlier cache held
    opened = [ring.unwrap(w) for w in wrapped]
    assert len(unwraps) == 6000
    assert [ring.unwrap(w) for w in wrapped] == opened
    assert len(unwraps) == 6000  # the second pass, in the same order, opened nothing again


def test_the_opened_data_keys_stay_within_their_memory_budget(unwraps):
    ring = crypto.KeyRing([Fernet.generate_key()], cache_bytes=40_000)
    pairs = [ring.new_data_key() for _ in range(300)]
    for _key, wrapped in pairs:
        ring.unwrap(wrapped)
    key, wrapped = pairs[0]
    assert len(ring.cache) == 40_000 // crypto.KeyCache.cost(wrapped, key) < 300
    assert ring.cache.used <= 40_000
    assert pairs[-1][1] in ring.cache and wrapped not in ring.cache  # the least recently used went first
    ring.unwrap(pairs[-1][1])
    assert len(unwraps) == 300


def test_a_rotation_forgets_every_opened_data_key(tmp_path, unwraps):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ring = crypto.load_key_ring(settings)
    key, wrapped = ring.new_data_key()
    assert ring.unwrap(wrapped) == key and wrapped in ring.cache
    keystore.add_master_key(settings)  # what 'breachflow keys rotate' does before it rewraps
    rewrapped = ring.rewrap(wrapped)  # the ring follows its file
    assert len(ring.cache) == 0
    assert ring.unwrap(rewrapped) == key and len(unwraps) == 2


def test_a_destroyed_data_key_is_forgotten_at_once(ctx, walked):
    assert queries.get(ctx, walked).reference == walked
    with ctx.engine.begin() as conn:
        key_id, wrapped = conn.execute(
            sa.select(data_key_t.c.id, data_key_t.c.wrapped).join(incident_t, incident_t.c.data_key_id == data_key_t.c.id)
            .where(incident_t.c.reference == walked)).one()
        assert wrapped in ctx.keys.cache
        store.destroy_data_key(conn, ctx.keys, key_id, datetime.now(UTC))
    assert wrapped not in ctx.keys.cache
    with pytest.raises(DataDestroyed):
        queries.get(ctx, walked)
