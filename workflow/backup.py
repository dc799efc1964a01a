"""Backups of the embedded SQLite database, and restoring one.

``create`` copies the database with SQLite's backup API in one step: one read transaction, so
the copy is consistent while ``serve`` and ``worker`` go on writing (WAL lets them). The copy is
a single owner-only file that holds no key: a backup with the master keys in it would open every
sealed value to whoever holds the backup. Keys are backed up apart from it (see the README).

``restore`` first stages the backup beside the database: it must be an intact SQLite file of
breachflow at a revision this breachflow knows (an older one is upgraded), and its every chain
must verify and replay under the configured keys. Only then does it replace the database, and
only one that no process has open (SQLite's exclusive lock, held until the end) and, when the
database holds an installation, with ``force``. The database it replaced is kept beside it.
PostgreSQL is backed up with ``pg_dump`` (README).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from breachflow.workflow import audit, db, files, keycheck, schema
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context
from breachflow.workflow.errors import Conflict, FieldProblem, InvalidInput, NotInitialised

_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Written:
    """A backup as ``create`` wrote it."""

    path: Path
    size: int
    revision: str | None
    incidents: int
    events: int


@dataclass(frozen=True)
class Restored:
    """What ``restore`` did: the database it wrote, what it kept, and the audit afterwards."""

    database: Path
    revision: str
    kept: Path | None  # the database it replaced
    report: audit.Report
    done: list[str] = field(default_factory=list)  # what upgrading the backup did, and what to review


def database_file(settings: Settings) -> Path:
    """The embedded SQLite database's file; ``InvalidInput`` for PostgreSQL (use ``pg_dump``)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise InvalidInput("not the embedded database", [FieldProblem(
            "database", f"breachflow backs up its embedded SQLite database only; back up {url.get_backend_name()} "
                        "with its own tools: pg_dump and pg_restore, as the README shows (\"Backups\")")])
    return Path(url.database)


def create(settings: Settings, target: Path | None = None, now: datetime | None = None) -> Written:
    """Copy the database, consistently while it is in use, to ``target`` (a new file, or a
    directory for a dated one; default ``data_dir/backups``)."""
    source = database_file(settings)
    engine = db.engine_of(settings)
    if not db.has_schema(engine):
        raise NotInitialised(f"no breachflow database at {db.where(engine)}; nothing to back up")
    target = target or settings.data_dir / "backups"
    if target.is_dir() or not target.suffix:
        target = target / f"breachflow-{(now or datetime.now(UTC)).strftime(_STAMP)}.db"
    try:
        with (files.new_private(target) as tmp, closing(sqlite3.connect(source, timeout=30)) as live,
              closing(sqlite3.connect(tmp)) as copy):
            live.backup(copy)  # every page in one step: one read transaction, one moment
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            revision, incidents, events = _describe(copy)
    except FileExistsError:
        raise InvalidInput("backup not written", [FieldProblem("out", f"{target} exists; breachflow never "
                                                                      "overwrites a backup")]) from None
    return Written(target, target.stat().st_size, revision, incidents, events)


def _describe(conn: sqlite3.Connection) -> tuple[str | None, int, int]:
    (checked,) = conn.execute("PRAGMA integrity_check").fetchone()
    if checked != "ok":
        raise sqlite3.DatabaseError(f"integrity check: {checked}")
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"incident", "timeline_event"} <= tables:
        raise sqlite3.DatabaseError("it holds no breachflow register (no incident or timeline_event table)")
    revision = conn.execute("SELECT version_num FROM alembic_version").fetchone() \
        if "alembic_version" in tables else None
    incidents = conn.execute("SELECT count(*) FROM incident").fetchone()[0]
    events = conn.execute("SELECT count(*) FROM timeline_event").fetchone()[0]
    return (revision[0] if revision else None), incidents, events


def restore(settings: Settings, backup: Path, *, force: bool, now: datetime | None = None) -> Restored:
    """Replace the database with ``backup`` once it is shown intact; see the module's docstring."""
    database = database_file(settings)
    if database.exists():
        with closing(sqlite3.connect(database.resolve().as_uri() + "?mode=ro", uri=True)) as current:
            _require_force(current, database, force)  # before the work of staging; checked again under the lock
    if not backup.is_file():
        raise InvalidInput("not restored", [FieldProblem("backup", f"{backup} is not a regular file; nothing was "
                                                                   "changed")])
    stamp = (now or datetime.now(UTC)).strftime(_STAMP)
    files.private_dir(database.parent)
    fd, name = tempfile.mkstemp(dir=database.parent, prefix=f".{database.name}.restore-")  # owner-only
    os.close(fd)
    staged = Path(name)
    try:
        done = _stage(settings, backup, staged)
        with _exclusive(database, force) as target:
            kept = _keep(target, database, stamp)
            handed_out = _references_handed_out(target)
            with closing(sqlite3.connect(staged, isolation_level=None)) as source:
                # SQLite copies pages onto a WAL database only at its own page size
                (page_size,) = target.execute("PRAGMA page_size").fetchone()
                source.execute("PRAGMA journal_mode=DELETE")  # a page size changes only outside WAL
                source.execute(f"PRAGMA page_size={int(page_size)}")
                source.execute("VACUUM")
                source.backup(target)
            done += _references_rolled_back(target, handed_out)
            done += _what_to_review(target, kept)
    finally:
        for path in (staged, *(staged.with_name(staged.name + end) for end in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
    return Restored(database, schema.head(), kept, audit.verify(Context.open(settings)), done)


def _stage(settings: Settings, backup: Path, staged: Path) -> list[str]:
    """Copy ``backup`` to ``staged``, upgrade it, and audit it under the configured keys; what upgrading did."""
    try:
        with closing(sqlite3.connect(backup.resolve().as_uri() + "?mode=ro", uri=True)) as source, \
                closing(sqlite3.connect(staged)) as copy:
            source.backup(copy)
            _describe(copy)
    except sqlite3.Error as exc:
        raise InvalidInput("not restored", [FieldProblem("backup", f"{backup} is not an intact breachflow "
                                                                   f"database ({exc}); nothing was changed")]) from None
    engine = db.new_engine(f"sqlite:///{staged}")
    try:
        done = schema.upgrade(engine)
        _require_only_breachflows_objects(staged, backup)
        ctx = Context.open(settings, engine)
        with db.read_transaction(engine) as conn:
            keycheck.require_keys_of(conn, ctx.keys, ctx.audit_key, f"the backup {backup}")
        report = audit.verify(ctx)
    finally:
        engine.dispose()
    if not report.intact:
        raise InvalidInput("not restored; nothing was changed", [
            FieldProblem("backup", f"{backup}: {finding}") for finding in report.findings[:20]])
    return done


def _references_handed_out(conn: sqlite3.Connection) -> dict[int, int]:
    """The last reference number per year the database about to be replaced has handed out."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'reference_counter'").fetchone():
        return {}
    return dict(conn.execute("SELECT year, last FROM reference_counter").fetchall())


def _references_rolled_back(conn: sqlite3.Connection, handed_out: dict[int, int]) -> list[str]:
    """References the replaced database handed out after the backup: the restored counter hands them
    out again (moving it past them would read to the audit as deleted incidents)."""
    restored = dict(conn.execute("SELECT year, last FROM reference_counter").fetchall())
    return [f"WARNING: references DL-{year}-{restored.get(year, 0) + 1:05d} to DL-{year}-{last:05d} were handed out "
            "after this backup and will be handed out again to new incidents: tell whoever received them (schools, "
            "the AP) which incident they now mean, from the kept copy"
            for year, last in sorted(handed_out.items()) if last > restored.get(year, 0)]


def _what_to_review(conn: sqlite3.Connection, kept: Path | None) -> list[str]:
    """What the restore rolled back and what the chains do not cover, to be checked by a person."""
    users = conn.execute("SELECT count(*) FROM user_account").fetchone()[0]
    tokens = conn.execute("SELECT count(*) FROM api_token WHERE revoked_at IS NULL").fetchone()[0]
    review = [f"users and tokens are as the backup holds them ({users} users, {tokens} tokens not revoked); the "
              "timelines do not cover them: review them with 'breachflow user list'"]
    if kept is not None:
        with closing(sqlite3.connect(kept)) as before:
            was = before.execute("SELECT count(*), max(reference) FROM incident").fetchone()
        now = conn.execute("SELECT count(*), max(reference) FROM incident").fetchone()
        review.append(f"the replaced database held {was[0]} incidents (newest {was[1] or '-'}), the restored one "
                      f"holds {now[0]} (newest {now[1] or '-'}): what happened in between is only in the kept copy")
    return review


def _require_only_breachflows_objects(staged: Path, backup: Path) -> None:
    """Refuse a backup holding a table, index, view or trigger the schema does not make, or lacking
    one it does: a trigger planted in a backup would keep acting in every later transaction."""
    with closing(sqlite3.connect(staged)) as conn:
        found = set(conn.execute(schema.SQLITE_OBJECTS).fetchall())
    expected = schema.objects_at_head()
    if strange := sorted(found - expected) + [("missing " + kind, name) for kind, name in sorted(expected - found)]:
        raise InvalidInput("not restored", [FieldProblem(
            "backup", f"{backup} is not as breachflow makes its database: {kind} {name}; nothing was changed")
            for kind, name in strange[:20]])


def _require_force(conn: sqlite3.Connection, database: Path, force: bool) -> None:
    if force or not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'incident'").fetchone():
        return
    incidents = conn.execute("SELECT count(*) FROM incident").fetchone()[0]
    raise InvalidInput("not restored", [FieldProblem(
        "force", f"restoring replaces the database {database} and its {incidents} incidents (it is kept beside it): "
                 "add --force to go ahead; nothing was changed")])


@contextmanager
def _exclusive(database: Path, force: bool) -> Iterator[sqlite3.Connection]:
    """The database, locked against every other connection until the block ends."""
    files.create_private(database)
    with closing(sqlite3.connect(database, timeout=0, isolation_level=None)) as conn:
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # the lock stays after the transaction
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except sqlite3.OperationalError:
            raise Conflict(f"the database {database} is in use: stop every breachflow serve and worker on it, "
                           "then restore; nothing was changed") from None
        _require_force(conn, database, force)
        yield conn


def _keep(target: sqlite3.Connection, database: Path, stamp: str) -> Path | None:
    """Copy the database about to be replaced beside it, when it holds an installation."""
    if not target.execute("SELECT 1 FROM sqlite_master WHERE name = 'incident'").fetchone():
        return None
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    with files.new_private(kept) as tmp, closing(sqlite3.connect(tmp)) as copy:
        target.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    return kept
