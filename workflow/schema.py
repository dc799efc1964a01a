"""The database schema's revision, kept by Alembic with the revisions shipped in the package
(``workflow/migrations/versions``, configured here: no ``alembic.ini``).

``upgrade`` brings a database to the newest revision this breachflow knows, inside
``db.migration_transaction`` (one process at a time; all of it or nothing). A database made
before migrations existed (breachflow's tables, no revision recorded) is adopted as the baseline
when it holds every table and column of the baseline. A database at a revision this breachflow
does not know, written by a newer one, is refused and left as it is. ``require_current`` is what
every command checks before it uses a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from breachflow.workflow import db
from breachflow.workflow.errors import NotInitialised, SchemaMismatch

BASELINE = "0001"  # the schema as it was when migrations began
SQLITE_OBJECTS = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"  # what a schema made


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for breachflow's revisions, running on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(files("breachflow.workflow") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this breachflow knows."""
    found = _scripts().get_current_head()
    if found is None:
        raise SchemaMismatch("breachflow was installed without its migrations")
    return found


def revisions() -> list[str]:
    """Every revision this breachflow knows, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


@dataclass(frozen=True)
class Status:
    """Where a database stands against this breachflow's revisions."""

    where: str
    database: str | None  # the revision recorded in the database
    code: str  # the newest revision this breachflow knows
    tables: bool  # breachflow's tables are there

    @property
    def state(self) -> str:
        """``current``, ``behind``, ``newer`` (unknown to this breachflow), ``unversioned``
        (made before migrations existed), ``orphaned`` (a revision recorded, breachflow's tables
        gone: dropped by hand, or by a tool that left Alembic's table) or ``empty``."""
        if self.database is None:
            return "unversioned" if self.tables else "empty"
        if not self.tables:
            return "orphaned"
        if self.database == self.code:
            return "current"
        try:
            _scripts().get_revision(self.database)
        except CommandError:
            return "newer"
        return "behind"

    def newer_error(self) -> SchemaMismatch:
        return SchemaMismatch(
            f"the database at {self.where} is at schema revision {self.database}, which this breachflow does "
            f"not know (it knows revisions up to {self.code}): a newer breachflow upgraded it. Run that "
            "breachflow, or restore the backup taken before the upgrade; nothing was changed")


def _status(conn: Connection) -> Status:
    heads = MigrationContext.configure(conn).get_current_heads()
    return Status(db.where(conn.engine), ",".join(heads) or None, head(), inspect(conn).has_table("incident"))


def status(engine: Engine) -> Status:
    """Where the database at ``engine`` stands."""
    with db.read_transaction(engine) as conn:
        return _status(conn)


def require_current(engine: Engine) -> None:
    """Refuse a database this breachflow cannot use as it is, saying what to run."""
    found = status(engine)
    state = found.state
    if state == "current":
        return
    if state in ("empty", "orphaned"):
        raise NotInitialised(f"no breachflow database at {found.where}; run 'breachflow init'")
    if state == "newer":
        raise found.newer_error()
    at = "no schema revision (it was made before migrations)" if state == "unversioned" else \
        f"schema revision {found.database}"
    raise SchemaMismatch(f"the database at {found.where} has {at}; this breachflow needs revision {found.code}: "
                         "run 'breachflow db upgrade'")


def upgrade(engine: Engine) -> list[str]:
    """Bring the database to the newest revision; say what was found or done."""
    with db.migration_transaction(engine) as conn:
        found = _status(conn)
        state = found.state
        if state == "newer":
            raise found.newer_error()
        if state == "current":
            return [f"database schema at revision {found.code}, the newest"]
        done = []
        if state == "orphaned":  # nothing to keep: the record alone would make the upgrade skip every table
            command.stamp(config(conn), "base", purge=True)
            done.append(f"found a schema revision ({found.database}) recorded without breachflow's tables; "
                        "forgot it")
        if state == "unversioned":
            _require_baseline(conn, found.where)
            command.stamp(config(conn), BASELINE)
            done.append(f"adopted the database made before migrations as revision {BASELINE}")
        try:
            command.upgrade(config(conn), "head")
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc  # the driver's error, when there is one
            raise SchemaMismatch(
                f"upgrading the database at {found.where} to revision {found.code} failed "
                f"({type(cause).__name__}: {cause}); nothing was changed") from exc
        if state in ("empty", "orphaned"):
            return [*done, f"created the database schema at revision {found.code}"]
        start = found.database or BASELINE
        if start != found.code:
            done.append(f"upgraded the database schema from {start} to revision {found.code}")
        return done


def _require_baseline(conn: Connection, where: str) -> None:
    """Refuse to adopt a database that lacks a table or column of the baseline, or holds a table
    only a later revision makes (its record of the revision was lost, so the upgrade would not know
    where to start)."""
    present = inspect(conn)
    baseline = _columns_at(BASELINE)
    missing = [
        f"{table}.{column}" if column else table
        for table, columns in sorted(baseline.items())
        for column in (sorted(columns - {c["name"] for c in present.get_columns(table)})
                       if present.has_table(table) else [None])
    ]
    if missing:
        raise SchemaMismatch(
            f"the database at {where} has breachflow's tables but no schema revision, and it lacks "
            f"{', '.join(missing[:10])}{' …' if len(missing) > 10 else ''} of revision {BASELINE}: a breachflow "
            "from before that made it, and it cannot be adopted; nothing was changed")
    later = sorted(set(present.get_table_names()) & (_columns_at(head()).keys() - baseline.keys()))
    if later:
        raise SchemaMismatch(
            f"the database at {where} has no schema revision but holds {', '.join(later)}, which only a later "
            f"revision than {BASELINE} makes: its record of the revision (table alembic_version) was lost. "
            "Restore it, or a backup; nothing was changed")


@cache
def objects_at_head() -> frozenset[tuple[str, str]]:
    """The (type, name) of every table, index, view and trigger the newest revision makes on SQLite."""
    with create_engine("sqlite://").connect() as conn:
        command.upgrade(config(conn), "head")
        return frozenset(conn.exec_driver_sql(SQLITE_OBJECTS).fetchall())


@cache
def _columns_at(revision: str) -> dict[str, set[str]]:
    """Every table at ``revision`` with its columns, from that revision built in memory."""
    with create_engine("sqlite://").connect() as conn:
        command.upgrade(config(conn), revision)
        found = inspect(conn)
        return {table: {c["name"] for c in found.get_columns(table)}
                for table in found.get_table_names() if table != "alembic_version"}
