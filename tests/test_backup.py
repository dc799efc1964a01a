"""Backups of the embedded database: taken while a process writes, restored into a fresh data
directory with the keys backed up apart, every chain verified; a file that is not an intact
breachflow database, a database in use, or one holding an installation without --force is
refused and nothing changes."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from backup_writer import write_until_stopped
from cli_process import breachflow
from conftest import reported
from migration_support import dump, fill, installation_at

from breachflow.workflow import db, keystore, schema
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context

pytestmark = pytest.mark.slow  # real processes (see the marker in pyproject.toml)

KEY_FILES = ("master.key", "audit.key", "checkpoint.key")


@pytest.fixture
def live(tmp_path) -> Path:
    """An installation (``live/var``) made by ``breachflow init`` and filled through the service layer."""
    directory = tmp_path / "live"
    directory.mkdir()
    assert breachflow(directory, "init").returncode == 0
    ctx = Context.open(Settings(data_dir=directory / "var"))
    fill(ctx)
    ctx.engine.dispose()
    return directory


def rows_of(path: Path) -> dict:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return dump(engine)
    finally:
        engine.dispose()


def sql_of(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def fresh_with_keys_of(live: Path, tmp_path: Path) -> Path:
    """A new data directory holding only the key files, restored from their own backup."""
    directory = tmp_path / "restored"
    (directory / "var").mkdir(parents=True, mode=0o700)
    for name in KEY_FILES:
        shutil.copy2(live / "var" / name, directory / "var" / name)
    return directory


def backed_up(live: Path, tmp_path: Path) -> Path:
    result = breachflow(live, "backup", "create", "--out", str(tmp_path / "backup.db"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "backup.db"


def test_a_backup_taken_while_a_process_writes_restores_with_every_row_and_chain(live, tmp_path):
    spawn = multiprocessing.get_context("spawn")
    stop, written = spawn.Event(), spawn.Value("i", 0)
    writer = spawn.Process(target=write_until_stopped,
                           args=({"BREACHFLOW_DATA_DIR": str(live / "var")}, stop, written))
    writer.start()
    try:
        while written.value < 5:
            time.sleep(0.05)
        before = written.value
        result = breachflow(live, "backup", "create", "--out", str(tmp_path / "backup.db"))
        after = written.value
    finally:
        stop.set()
        writer.join(timeout=60)
    assert writer.exitcode == 0
    assert result.returncode == 0, result.stderr
    backup = tmp_path / "backup.db"
    assert f"wrote {backup}" in result.stdout and "It holds no key" in result.stdout
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    rows = rows_of(backup)
    assert after > before  # the writer went on while the backup was taken
    assert 3 + before <= len(rows["incident"]) <= 3 + after + 1  # the filled three, and what was committed

    fresh = fresh_with_keys_of(live, tmp_path)
    restored = breachflow(fresh, "backup", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert f"all timelines intact and matching the records ({len(rows['incident'])} incidents" in restored.stdout
    assert rows_of(fresh / "var" / "breachflow.db") == rows
    assert breachflow(fresh, "audit", "verify").returncode == 0
    assert breachflow(fresh, "db", "status").returncode == 0


def test_a_restore_over_an_installation_needs_force_and_keeps_the_replaced_one(live, tmp_path):
    backup = backed_up(live, tmp_path)
    database = live / "var" / "breachflow.db"
    ctx = Context.open(Settings(data_dir=live / "var"))
    fill_more = ctx.engine
    with fill_more.begin() as conn:  # the live register moves on after the backup
        conn.execute(sa.text("UPDATE school SET name = 'Renamed after the backup' WHERE brin = '12AB'"))
    fill_more.dispose()
    current = sql_of(database)

    refused = breachflow(live, "backup", "restore", str(backup))
    assert refused.returncode == 2 and "add --force" in refused.stderr and "4 incidents" in refused.stderr  # the fill's (tests/migration_support.py)
    assert sql_of(database) == current

    restored = breachflow(live, "backup", "restore", str(backup), "--force")
    assert restored.returncode == 0, restored.stderr
    kept = next((live / "var").glob("breachflow.db.before-restore-*"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sql_of(kept) == current
    assert rows_of(database) == rows_of(backup)


def test_a_database_in_use_is_not_replaced(live, tmp_path):
    backup = backed_up(live, tmp_path)
    database = live / "var" / "breachflow.db"
    holder = subprocess.Popen(  # a process with the database open, as serve and worker have it
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM incident').fetchall()\n"
         "print('open', flush=True); time.sleep(60)", str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        current = sql_of(database)
        refused = breachflow(live, "backup", "restore", str(backup), "--force")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert refused.returncode == 3 and "is in use: stop every breachflow serve and worker" in refused.stderr
    assert sql_of(database) == current
    assert not list((live / "var").glob("breachflow.db.*")) and not list((live / "var").glob(".breachflow.db*"))


def other_application(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoice (id INTEGER PRIMARY KEY, amount INTEGER)")


@pytest.mark.parametrize("kind", ["random bytes", "another application's database", "a truncated backup"])
def test_a_file_that_is_not_an_intact_breachflow_database_is_refused_and_nothing_changes(live, tmp_path, kind):
    candidate = tmp_path / "candidate.db"
    if kind == "random bytes":
        candidate.write_bytes(os.urandom(8192))
    elif kind == "another application's database":
        other_application(candidate)
    else:
        whole = backed_up(live, tmp_path).read_bytes()
        candidate.write_bytes(whole[: len(whole) // 2])
    var = live / "var"
    before = (sorted(p.name for p in var.iterdir()), sql_of(var / "breachflow.db"))
    result = breachflow(live, "backup", "restore", str(candidate), "--force")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "is not an intact breachflow database" in result.stderr and "nothing was changed" in result.stderr
    assert (sorted(p.name for p in var.iterdir()), sql_of(var / "breachflow.db")) == before


def test_a_backup_the_configured_keys_do_not_verify_is_refused(live, tmp_path):
    backup = backed_up(live, tmp_path)
    fresh = fresh_with_keys_of(live, tmp_path)
    (fresh / "var" / "audit.key").write_bytes(keystore.AUDIT.generate())  # another installation's audit key
    result = breachflow(fresh, "backup", "restore", str(backup))
    assert result.returncode == 4
    assert "audit key verifies none of the newest timeline events of the backup" in result.stderr
    assert sorted(p.name for p in (fresh / "var").iterdir()) == sorted(KEY_FILES)


def test_a_backup_of_another_installation_without_incidents_is_refused_by_its_data_keys(live, tmp_path):
    """Its schools' contacts are sealed under another master key: restored, nothing would open."""
    other = tmp_path / "other"
    other.mkdir()
    assert breachflow(other, "init").returncode == 0
    assert breachflow(other, "school", "add", "--brin", "99ZZ", "--name", "Elders",
                      "--contact", "info@elders.example.nl").returncode == 0
    backup = backed_up(other, tmp_path)
    before = sql_of(live / "var" / "breachflow.db")
    result = breachflow(live, "backup", "restore", str(backup), "--force")
    assert result.returncode == 4, result.stderr
    assert "master keys do not open every data key of the backup" in result.stderr
    assert sql_of(live / "var" / "breachflow.db") == before


@pytest.mark.parametrize("planted", [
    "CREATE TRIGGER keep_tokens AFTER UPDATE OF revoked_at ON api_token "
    "BEGIN UPDATE api_token SET revoked_at = NULL WHERE id = NEW.id; END",
    "CREATE VIEW everything AS SELECT * FROM user_account",
    "CREATE TABLE notes_of_mallory (x)",
    "DROP INDEX ix_incident_state",
], ids=["trigger", "view", "table", "missing index"])
def test_a_backup_with_objects_breachflow_does_not_make_is_refused(live, tmp_path, planted):
    backup = backed_up(live, tmp_path)
    with closing(sqlite3.connect(backup)) as conn:
        conn.execute(planted)
        conn.commit()
    before = sql_of(live / "var" / "breachflow.db")
    result = breachflow(live, "backup", "restore", str(backup), "--force")
    assert result.returncode == 2, result.stderr
    assert "is not as breachflow makes its database" in result.stderr and "nothing was changed" in result.stderr
    assert sql_of(live / "var" / "breachflow.db") == before


def test_a_backup_with_another_page_size_restores_over_a_database_in_wal_mode(live, tmp_path):
    backup = backed_up(live, tmp_path)
    with closing(sqlite3.connect(backup, isolation_level=None)) as conn:
        conn.execute("PRAGMA page_size=16384")
        conn.execute("VACUUM")
    result = breachflow(live, "backup", "restore", str(backup), "--force")
    assert result.returncode == 0, result.stderr
    assert "audit: all timelines intact" in result.stdout


def test_a_restore_says_what_it_rolled_back_and_which_references_come_again(live, tmp_path):
    backup = backed_up(live, tmp_path)
    ctx = Context.open(Settings(data_dir=live / "var"))
    after_backup = reported(ctx, brins=("12AB",))
    ctx.engine.dispose()
    result = breachflow(live, "backup", "restore", str(backup), "--force")
    assert result.returncode == 0, result.stderr
    assert f"newest {after_backup}), the restored one" in result.stdout
    assert "users and tokens are as the backup holds them" in result.stdout
    assert f"WARNING: references {after_backup} to {after_backup} were handed out after this backup" in result.stdout


def test_something_that_is_not_a_regular_file_is_refused_without_waiting(live, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = breachflow(live, "backup", "restore", str(fifo), "--force")
    assert result.returncode == 2 and "is not a regular file" in result.stderr
    assert not list((live / "var").glob(".breachflow.db.restore-*"))


def test_a_backup_without_its_master_key_is_refused_naming_the_key(live, tmp_path):
    backup = backed_up(live, tmp_path)
    fresh = fresh_with_keys_of(live, tmp_path)
    (fresh / "var" / "master.key").unlink()
    result = breachflow(fresh, "backup", "restore", str(backup))
    assert result.returncode == 4 and "master keys file var/master.key is missing" in result.stderr
    assert not (fresh / "var" / "breachflow.db").exists()


def test_a_backup_is_never_written_over_an_existing_file(live, tmp_path):
    backup = backed_up(live, tmp_path)
    before = backup.read_bytes()
    result = breachflow(live, "backup", "create", "--out", str(backup))
    assert result.returncode == 2 and "never overwrites a backup" in result.stderr
    assert backup.read_bytes() == before


def test_a_backup_into_the_default_directory_is_dated_and_owner_only(live):
    result = breachflow(live, "backup", "create")
    assert result.returncode == 0, result.stderr
    (written,) = (live / "var" / "backups").glob("breachflow-*.db")
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert sql_of(written)  # a database of its own, readable without the live one's -wal file


def test_a_backup_on_postgresql_points_to_pg_dump(tmp_path):
    for command in (["backup", "create"], ["backup", "restore", str(tmp_path / "x.db")]):
        result = breachflow(tmp_path, *command, BREACHFLOW_DATABASE_URL="postgresql+psycopg://breachflow@db/breachflow")
        assert result.returncode == 2 and "pg_dump and pg_restore, as the README shows" in result.stderr


def test_an_older_backup_is_upgraded_when_restored(tmp_path):
    """A backup made before migrations (the oldest there is) is brought to this breachflow's revision
    before it replaces anything, with every row and chain."""
    backup = installation_at(schema.BASELINE, tmp_path / "old" / "var", recorded=False)
    fresh = tmp_path / "restored"
    (fresh / "var").mkdir(parents=True, mode=0o700)
    for name in KEY_FILES:
        shutil.copy2(tmp_path / "old" / "var" / name, fresh / "var" / name)
    result = breachflow(fresh, "backup", "restore", str(backup))
    assert result.returncode == 0, result.stderr
    engine = db.new_engine(f"sqlite:///{fresh / 'var' / 'breachflow.db'}")
    assert schema.status(engine).state == "current"
    engine.dispose()
