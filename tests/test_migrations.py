"""Migrations: the migrated schema is the models' schema, on SQLite and PostgreSQL; a register filled
at any earlier revision upgrades with every row and every chain intact; a database made before
migrations is adopted; one at a revision this breachflow does not know is refused and left alone;
processes starting at once upgrade once."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cli_process import breachflow
from conftest import CONFIGURED_KEYS
from migration_support import SNAPSHOTS, dump, fill, installation_at, load, snapshot_settings, upgrade_when_released
from notify_support import settings_env
from reading import all_incidents
from sqlmodel import SQLModel

from breachflow.notifications import models as _notification_tables  # noqa: F401  (registers the tables)
from breachflow.notifications import outbox
from breachflow.workflow import audit, db, queries, schema, service
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise
from breachflow.workflow.errors import DataDestroyed, SchemaMismatch

RACERS = 4


def differences(engine: sa.Engine) -> list:
    """What Alembic finds between the database's schema and the models: tables, columns, types,
    nullability, indexes, unique constraints, foreign keys, server defaults."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, SQLModel.metadata)


def emptied(url: str) -> sa.Engine:
    """The database at ``url`` with every table dropped (PostgreSQL: the one the suite uses)."""
    engine = db.engine_for(url)
    found = sa.MetaData()
    found.reflect(engine)
    found.drop_all(engine)
    return engine


def sqlite_engine(tmp_path: Path) -> sa.Engine:
    return db.engine_for(f"sqlite:///{tmp_path / 'breachflow.db'}")


# --- the schema a migration makes is the models' ---------------------------------------------


def test_the_migrated_schema_equals_the_models_on_sqlite(tmp_path):
    """Fails when a model changes without a migration (see the README, "How to add a migration")."""
    engine = sqlite_engine(tmp_path)
    assert schema.upgrade(engine) == ["created the database schema at revision " + schema.head()]
    assert differences(engine) == []


@pytest.mark.postgres
def test_the_migrated_schema_equals_the_models_on_postgresql(needs_postgres):
    engine = emptied(needs_postgres)
    schema.upgrade(engine)
    assert differences(engine) == []


def test_every_revision_follows_the_one_before_it_without_branches():
    revisions = schema.revisions()
    assert revisions[0] == schema.BASELINE and revisions[-1] == schema.head()
    assert revisions == [f"{n:04d}" for n in range(1, len(revisions) + 1)]  # one line, numbered in order


# --- a filled register upgrades with every row and chain -----------------------------------------


def test_the_newest_revision_has_a_snapshot_to_upgrade_from():
    """Each revision keeps a register filled at it, so the next revision is tested against real rows:
    after adding a revision, run ``python tests/migration_support.py`` and commit the file."""
    assert (SNAPSHOTS / f"{schema.head()}.json").is_file()


def upgraded_from(engine: sa.Engine, revision: str, settings_of) -> tuple[Context, dict]:
    """A database at ``revision`` holding that revision's snapshot, upgraded by ``initialise``."""
    snapshot = json.loads((SNAPSHOTS / f"{revision}.json").read_text(encoding="utf-8"))
    assert snapshot["revision"] == revision
    with engine.begin() as conn:
        command.upgrade(schema.config(conn), revision)
    load(engine, snapshot["rows"])
    settings = settings_of(snapshot)
    done = initialise(settings)
    assert ("database schema at revision" if revision == schema.head() else f"from {revision}") in " ".join(done)
    return Context.open(settings), snapshot


def assert_kept(ctx: Context, snapshot: dict) -> None:
    """Every row and value of the snapshot is still there, every chain verifies and replays, and the
    upgraded register works: records open, pending notices are there, a new command chains on."""
    now = dump(ctx.engine)
    for table, rows in snapshot["rows"].items():
        assert [{column: row[column] for column in rows[0]} for row in now[table]] == rows, table
    report = audit.verify(ctx)
    assert report.intact, report.findings
    assert report.events == len(snapshot["rows"]["timeline_event"])
    incidents = all_incidents(ctx)
    assert len(incidents) == len(snapshot["rows"]["incident"])
    destroyed_keys = {row["id"] for row in snapshot["rows"]["data_key"] if row["wrapped"] is None}
    destroyed = {row["reference"] for row in snapshot["rows"]["incident"] if row["data_key_id"] in destroyed_keys}
    for incident in incidents:
        if incident.reference in destroyed:  # retention destroyed it before the upgrade: it stays destroyed
            with pytest.raises(DataDestroyed):
                queries.get(ctx, incident.reference)
        else:
            assert queries.get(ctx, incident.reference).disclosure.summary
    pending = [row for row in snapshot["rows"]["outbox"] if row["status"] == "pending"]
    assert len(outbox.list_messages(ctx, status="pending").items) == len(pending) > 0
    kept = next(i.reference for i in incidents if i.reference not in destroyed)
    service.add_note(ctx, reference=kept, actor="hanna", text="After the upgrade")
    assert audit.verify(ctx).intact


@pytest.mark.parametrize("revision", schema.revisions())
def test_a_register_filled_at_a_revision_upgrades_with_every_row_and_chain_on_sqlite(tmp_path, revision):
    ctx, snapshot = upgraded_from(sqlite_engine(tmp_path), revision,
                                  lambda s: snapshot_settings(s, data_dir=tmp_path))
    assert_kept(ctx, snapshot)


@pytest.mark.postgres
@pytest.mark.parametrize("revision", schema.revisions())
def test_a_register_filled_at_a_revision_upgrades_with_every_row_and_chain_on_postgresql(
        tmp_path, needs_postgres, revision):
    ctx, snapshot = upgraded_from(emptied(needs_postgres), revision,
                                  lambda s: snapshot_settings(s, data_dir=tmp_path, database_url=needs_postgres))
    assert_kept(ctx, snapshot)


def test_upgrading_to_0007_threads_each_schools_later_notices_to_its_first(tmp_path):
    """0007 fills ``notice_snapshot.thread_id`` from the oldest message to that school about that incident."""
    ctx, snapshot = upgraded_from(sqlite_engine(tmp_path), "0006", lambda s: snapshot_settings(s, data_dir=tmp_path))
    first = {}
    for row in sorted(snapshot["rows"]["outbox"], key=lambda r: r["id"]):
        first.setdefault((row["incident_id"], row["school_id"]), row["message_id"])
    threads = dump(ctx.engine)["notice_snapshot"]
    assert threads and all(row["thread_id"] == first[(row["incident_id"], row["school_id"])] for row in threads)


def test_the_fill_behind_the_snapshots_walks_the_register_through_the_service_layer(ctx):
    """What ``python tests/migration_support.py`` keeps for a new revision (audited after the test)."""
    references = fill(ctx)
    rows = dump(ctx.engine)
    assert len(references) == len(rows["incident"]) == 4
    assert {row["state"] for row in rows["incident"]} == {"closed", "containment", "triage"}
    assert {row["status"] for row in rows["outbox"]} == {"sent", "pending", "dead"}  # dead: a bounced notice
    assert [row["kind"] for row in rows["outbox"] if row["bounced"]] == ["initial"]
    assert all(rows[table] for table in rows), [table for table in rows if not rows[table]]


# --- databases this breachflow did not make, or made later -----------------------------------------


@pytest.fixture
def before_migrations(tmp_path) -> Path:
    """A data directory as breachflow left it before migrations: key files, the baseline's tables
    holding the baseline's snapshot (a register filled through the service layer of that time), and
    no revision recorded."""
    installation_at(schema.BASELINE, tmp_path / "var", recorded=False)
    return tmp_path


def version_table(directory: Path) -> list | None:
    with closing(sqlite3.connect(directory / "var" / "breachflow.db")) as conn:
        try:
            return conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.OperationalError:
            return None


def sql_dump(path: Path) -> list[str]:
    """The database's schema and rows as SQL."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


@pytest.mark.slow  # real processes
def test_a_database_made_before_migrations_is_refused_until_upgraded_then_adopted_with_its_rows(before_migrations):
    listed = breachflow(before_migrations, "incident", "list")
    assert listed.returncode == 4 and "no schema revision" in listed.stderr and "db upgrade" in listed.stderr
    rows = dump(db.engine_for(f"sqlite:///{before_migrations / 'var' / 'breachflow.db'}"))
    upgraded = breachflow(before_migrations, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"adopted the database made before migrations as revision {schema.BASELINE}" in upgraded.stdout
    assert version_table(before_migrations) == [(schema.head(),)]
    ctx = Context.open(Settings(data_dir=before_migrations / "var"))
    after = dump(ctx.engine)
    kept = {table: [{column: row[column] for column in (rows[table][0] if rows[table] else {})} for row in after[table]]
            for table in rows}
    assert kept == rows  # columns added later are beside the old ones, which keep their values
    assert {(row["password_hash"], row["language"]) for row in after["user_account"]} == {(None, "nl")}
    computed = {"deadline", "clock_basis"}  # the first process to open it computes the stored deadlines
    assert not any(after[table] for table in after.keys() - rows.keys() - computed)  # later tables start empty
    assert after["deadline"] and after["clock_basis"]
    assert audit.verify(ctx).intact
    assert breachflow(before_migrations, "db", "status").returncode == 0


@pytest.mark.slow  # real processes
@pytest.mark.tampers
def test_a_database_without_a_baseline_column_is_not_adopted_and_left_alone(before_migrations):
    path = before_migrations / "var" / "breachflow.db"
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE incident DROP COLUMN confirmed_at")
    before = sql_dump(path)
    result = breachflow(before_migrations, "db", "upgrade")
    assert result.returncode == 4
    assert "lacks incident.confirmed_at of revision 0001" in result.stderr and "nothing was changed" in result.stderr
    assert version_table(before_migrations) is None
    assert sql_dump(path) == before


@pytest.mark.slow  # real processes
@pytest.mark.tampers
def test_a_database_that_lost_its_revision_record_is_not_adopted_as_the_baseline(tmp_path):
    """Tables of a later revision without ``alembic_version``: adopting it as the baseline would
    replay revisions it already has."""
    path = installation_at(schema.head(), tmp_path / "var", recorded=False)
    later = sorted(set(dump(db.new_engine(f"sqlite:///{path}"))) - set(json.loads(
        (SNAPSHOTS / f"{schema.BASELINE}.json").read_text(encoding="utf-8"))["rows"]))
    assert later, "no revision after the baseline adds a table yet"
    before = sql_dump(path)
    result = breachflow(tmp_path, "db", "upgrade")
    assert result.returncode == 4, result.stderr
    assert f"holds {', '.join(later)}" in result.stderr and "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert sql_dump(path) == before


@pytest.mark.slow  # real processes
@pytest.mark.tampers
def test_a_column_dropped_behind_a_current_revision_is_one_line_not_a_traceback(tmp_path):
    assert breachflow(tmp_path, "init").returncode == 0
    assert breachflow(tmp_path, "school", "add", "--brin", "12AB", "--name", "De Regenboog",
                      "--contact", "directie@regenboog.example.nl").returncode == 0
    with sqlite3.connect(tmp_path / "var" / "breachflow.db") as conn:
        conn.execute("ALTER TABLE school DROP COLUMN contract_ends_on")  # the revision record still says current
    listed = breachflow(tmp_path, "school", "list")
    assert listed.returncode == 4 and "Traceback" not in listed.stderr, listed.stderr
    assert listed.stderr.startswith("breachflow: error: the database failed (") and "db status" in listed.stderr
    as_json = breachflow(tmp_path, "school", "list", "--json")
    assert as_json.returncode == 4
    assert json.loads(as_json.stderr)["error"]["code"] == "database_failure"


@pytest.mark.slow  # real processes
def test_a_revision_record_without_tables_is_not_taken_for_a_database(tmp_path):
    """What a tool that drops only the tables it knows leaves behind: Alembic's record alone."""
    assert breachflow(tmp_path, "init").returncode == 0
    with sqlite3.connect(tmp_path / "var" / "breachflow.db") as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "AND name NOT IN ('alembic_version', 'sqlite_sequence')").fetchall():
            conn.execute(f'DROP TABLE "{table}"')
    status = breachflow(tmp_path, "db", "status")
    assert status.returncode == 1 and "tables are gone" in status.stdout
    listed = breachflow(tmp_path, "school", "list")
    assert listed.returncode == 4 and "run 'breachflow init'" in listed.stderr
    again = breachflow(tmp_path, "init")
    assert again.returncode == 0 and "created the database schema" in again.stdout, again.stderr
    assert breachflow(tmp_path, "school", "list").returncode == 0


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("command_line", [["db", "upgrade"], ["init"], ["serve", "--port", "0"], ["worker"],
                                          ["incident", "list"]], ids=" ".join)
def test_a_database_newer_than_this_breachflow_is_refused_naming_both_revisions(tmp_path, command_line):
    assert breachflow(tmp_path, "init").returncode == 0
    with sqlite3.connect(tmp_path / "var" / "breachflow.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = breachflow(tmp_path, *command_line)
    assert result.returncode == 4, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("breachflow: error: ") and len(message.splitlines()) == 1
    assert "schema revision 9999, which this breachflow does not know" in message
    assert f"it knows revisions up to {schema.head()}" in message
    assert version_table(tmp_path) == [("9999",)]
    status = breachflow(tmp_path, "db", "status")
    assert status.returncode == 1 and "upgraded by a newer breachflow" in status.stdout


def test_the_typed_error_for_a_newer_database_comes_from_the_engine(tmp_path):
    engine = sqlite_engine(tmp_path)
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaMismatch, match="9999"):
        schema.upgrade(engine)
    with pytest.raises(SchemaMismatch, match="9999"):
        schema.require_current(engine)


# --- several processes at once ------------------------------------------------------------------


def race(environment: dict[str, str]) -> list:
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(RACERS), spawn.Queue()
    procs = [spawn.Process(target=upgrade_when_released, args=(environment, barrier, results))
             for _ in range(RACERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return outcomes


def assert_upgraded_once(outcomes: list) -> None:
    assert all(isinstance(o, list) for o in outcomes), outcomes  # no process failed
    created = [o for o in outcomes if f"created the database schema at revision {schema.head()}" in o]
    assert len(created) == 1, outcomes
    assert all(f"database schema at revision {schema.head()}, the newest" in o for o in outcomes if o not in created)


@pytest.mark.slow  # real processes
def test_processes_starting_at_once_on_sqlite_upgrade_once(tmp_path):
    assert_upgraded_once(race({"BREACHFLOW_DATA_DIR": str(tmp_path / "var")}))
    assert differences(sqlite_engine(tmp_path / "var")) == []


@pytest.mark.slow  # real processes
@pytest.mark.postgres
def test_processes_starting_at_once_on_postgresql_upgrade_once(tmp_path, needs_postgres):
    engine = emptied(needs_postgres)
    environment = settings_env(Settings(data_dir=tmp_path / "var", database_url=needs_postgres, **CONFIGURED_KEYS))
    assert_upgraded_once(race(environment))
    assert differences(engine) == []


# --- the migration transaction -----------------------------------------------------------------------


def test_an_upgrade_on_sqlite_that_leaves_a_dangling_reference_is_rolled_back(tmp_path):
    engine = sqlite_engine(tmp_path)
    schema.upgrade(engine)
    with pytest.raises(SchemaMismatch, match="rows referring to nothing"), db.migration_transaction(engine) as conn:
        conn.execute(sa.text("INSERT INTO reference_counter (year, last) VALUES (2026, 1)"))
        conn.execute(sa.text("INSERT INTO school (brin, name, language, data_key_id, created_at) "
                             "VALUES ('12AB', 'x', 'nl', 42, '2026-01-01 00:00:00')"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM reference_counter")).scalar() == 0
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1  # on again for the next user


@pytest.mark.slow  # real processes
@pytest.mark.tampers
def test_a_row_planted_dangling_before_a_start_does_not_stop_serve(tmp_path):
    """A row written past breachflow (foreign keys off, as the sqlite3 shell has them) that refers to
    nothing is the audit's to name; it must not keep every later start from passing the upgrade."""
    data = tmp_path / "var"
    assert breachflow(tmp_path, "init").returncode == 0
    with sqlite3.connect(data / "breachflow.db") as conn:
        conn.execute("INSERT INTO web_session (token_hash, user_id, created_at, last_seen_at, expires_at) "
                     "VALUES ('00ff', 999, '2026-01-01', '2026-01-01', '2026-01-02')")
    again = breachflow(tmp_path, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "the newest" in again.stdout


@pytest.mark.slow  # real processes
def test_an_open_data_directory_and_database_are_made_owner_only_on_start(tmp_path):
    assert breachflow(tmp_path, "init").returncode == 0
    var = tmp_path / "var"
    var.chmod(0o755)
    (var / "breachflow.db").chmod(0o644)
    result = breachflow(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert f"took group's and others' access away from {Path('var')} (was 755)" in result.stdout
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "breachflow.db").stat().st_mode) == 0o600
