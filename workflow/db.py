"""Engines and transactions.

SQLite runs in WAL mode with ``synchronous=FULL`` (a confirmed command survives a power cut).
A write command takes SQLite's write lock up front (``BEGIN IMMEDIATE``) under a per-process lock,
so writers queue in the process instead of sleeping in SQLite's busy handler; on PostgreSQL the
service locks the incident row (``SELECT … FOR UPDATE``), and each process holds at most
``BREACHFLOW_DATABASE_POOL_SIZE`` + ``_MAX_OVERFLOW`` connections. The SQLite file is created 0600
in an owner-only directory before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
A schema upgrade runs in ``migration_transaction``, one process at a time (``workflow.schema``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from breachflow.workflow import files, models  # noqa: F401  (models registers the tables)
from breachflow.workflow.config import Settings
from breachflow.workflow.errors import SchemaMismatch

_locks: dict[int, threading.Lock] = {}
BUSY_TIMEOUT_MS = 10_000  # how long a statement waits for another process's lock on SQLite
MIGRATION_WAIT_MS = 120_000  # a process starting while another upgrades waits for that upgrade


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # breachflow emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: turning on WAL may wait for a lock
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _wal(cursor: sqlite3.Cursor) -> None:
    """Turn on WAL, once per database file. Several processes opening a new file at once each try
    to: the switch needs the file to themselves, and SQLite may answer 'locked' at once instead of
    waiting, so it is tried again for as long as a lock is waited for."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # in WAL already (the usual case): nothing to wait for
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def engine_of(settings: Settings) -> Engine:
    """The process's engine for the configured database, with the configured pool."""
    return engine_for(settings.resolved_database_url, settings.database_pool_size, settings.database_max_overflow)


def engine_for(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """The process's engine for ``url`` (one pool per URL and size). On PostgreSQL it keeps up to
    ``pool_size`` connections open and opens up to ``max_overflow`` more while busy."""
    return _engine(url, pool_size, max_overflow)


@cache
def _engine(url: str, pool_size: int, max_overflow: int) -> Engine:
    return new_engine(url, pool_size, max_overflow)


def new_engine(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An engine of its own for ``url``, set up as breachflow's are (a file restore stages, say). Its
    errors do not repeat the values of a statement (they may be personal data, and errors are logged)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            files.create_private(Path(parsed.database))
        # every transaction ends in its own commit or rollback (``write_transaction``, ``read_transaction``,
        # a closed connection's autobegin): the pool's extra rollback on return only costs time
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_reset_on_return=None,
                               hide_parameters=True)
        _sqlite_setup(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                               hide_parameters=True)
    _locks[id(engine)] = threading.Lock()
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def has_schema(engine: Engine) -> bool:
    """Whether breachflow's tables are there (an installation exists)."""
    return inspect(engine).has_table("incident")


def where(engine: Engine) -> str:
    """The database's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One command's transaction: commits on success, rolls back on any exception."""
    lock = _locks[id(engine)] if is_sqlite(engine) else None
    if lock is not None:
        lock.acquire()
    try:
        with engine.connect() as conn, conn.begin():
            _begin(conn, "BEGIN IMMEDIATE")
            yield conn
    finally:
        if lock is not None:
            lock.release()


# any fixed number: processes that upgrade one PostgreSQL database take turns on it
_MIGRATION_LOCK = 0x62666D6967  # "bfmig"


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """The transaction a schema upgrade runs in, one process at a time: commits on success.

    PostgreSQL: a transaction-scoped advisory lock, so processes starting at once wait for the
    first upgrade and then find nothing left to do (DDL is transactional there). SQLite: the write
    lock (``BEGIN IMMEDIATE``), with foreign keys enforced only at the end: a migration that
    rebuilds a table (SQLite's way to alter one) drops the old table while rows still refer to it.
    Every reference is checked before the commit (``PRAGMA foreign_key_check``); one the upgrade left
    dangling rolls the whole upgrade back (rows that dangled before it are the audit's to name, and
    must not stop a start).
    """
    if not is_sqlite(engine):
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            yield conn
        return
    with _locks[id(engine)], engine.connect() as conn:
        driver = _driver(conn)
        driver.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before it begins
        driver.execute(f"PRAGMA busy_timeout={MIGRATION_WAIT_MS}")
        try:
            with conn.begin():
                driver.execute("BEGIN IMMEDIATE")
                before = set(conn.execute(text("PRAGMA foreign_key_check")).all())  # planted past breachflow: not ours
                yield conn
                dangling = sorted(set(conn.execute(text("PRAGMA foreign_key_check")).all()) - before)
                if dangling:
                    raise SchemaMismatch(f"the upgrade would leave rows referring to nothing: {dangling[:5]}; "
                                         "nothing was changed")
        finally:
            driver.execute("PRAGMA foreign_keys=ON")
            driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an ``INSERT`` wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise TypeError("not the result of a single-row INSERT")
    return key[0]


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent read."""
    with engine.connect() as conn, conn.begin():
        _begin(conn, "BEGIN")
        yield conn


def _driver(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn`` (SQLAlchemy types it as any DB-API connection)."""
    return cast(sqlite3.Connection, conn.connection.dbapi_connection)


def _begin(conn: Connection, statement: str) -> None:
    """On SQLite, open the transaction ourselves (the driver runs in autocommit mode); elsewhere
    the driver already did. Not an engine ``begin`` event: any engine event makes SQLAlchemy
    dispatch events around every statement, a tenth of a command's time (bench/engine.py)."""
    if conn.dialect.name == "sqlite":
        _driver(conn).execute(statement)  # straight to the driver: nothing to convert
