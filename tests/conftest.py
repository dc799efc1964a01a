"""Fixtures: a fresh breachflow installation per test, on SQLite or on PostgreSQL.

``BREACHFLOW_TEST_DATABASE_URL`` selects PostgreSQL (``.ci/run`` sets it to the local server and
fails when that server is absent); without it, every test gets its own SQLite file and tests
marked ``postgres`` are skipped with a reason that ``-ra`` prints. The run drops and recreates
breachflow's tables in that database, so it refuses, before anything is dropped, a database whose
name does not contain "test" or that holds tables that are not breachflow's.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from smtp_server import SmtpServer
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from breachflow.notifications import models as _notification_tables  # noqa: F401  (registers the tables)
from breachflow.workflow import audit, db, keystore, schema, schools, service, sessions
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise


def _own_database(url: str | None) -> str | None:
    """Under xdist each worker drops and recreates breachflow's tables in a database of its own,
    ``<name>_<worker>`` (``pytest_configure`` creates it)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


GIVEN_PG_URL = os.environ.get("BREACHFLOW_TEST_DATABASE_URL")
PG_URL = _own_database(GIVEN_PG_URL)
# Installations made by tests live in memory where the machine has a tmpfs: SQLite's fsyncs cost nothing
# there, and nothing a test writes needs to outlive the run. (pytest makes its directories there owner-only.)
SHARED_MEMORY = "/dev/shm"  # noqa: S108  (the base of pytest's private temporary directories, not a file)
if "TMPDIR" not in os.environ and os.path.isdir(SHARED_MEMORY) and os.access(SHARED_MEMORY, os.W_OK):
    os.environ["TMPDIR"] = SHARED_MEMORY
    tempfile.tempdir = None
MASTER_KEY = Fernet.generate_key().decode()
CONFIGURED_KEYS = {"master_keys": MASTER_KEY, "audit_key": keystore.AUDIT.generate().decode(),
                   "checkpoint_key": keystore.CHECKPOINT.generate().decode()}


# breachflow's tables, and Alembic's record of the schema's revision
OWN_TABLES = frozenset(t.name for t in SQLModel.metadata.sorted_tables) | {"alembic_version"}
FOREIGN_TABLES = text(
    "SELECT table_schema, table_name, current_schema() FROM information_schema.tables "
    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
)


def refuse_unsafe_database(url: str) -> None:
    """Raise ``pytest.UsageError`` unless ``url`` names a database made for tests: "test" is a word
    of its name and it holds no table but breachflow's (the run drops those)."""
    name = make_url(url).database or ""
    if not re.search(r"(?<![a-z])test(?![a-z])", name.lower()):
        raise pytest.UsageError(
            f"BREACHFLOW_TEST_DATABASE_URL names the database '{name}'; the test run drops its tables, "
            "so it runs only on a database named for tests ('test' as a word of its name: test, test_a, "
            "breachflow_test; not 'latest')")
    with db.engine_for(url).connect() as conn:
        foreign = [f"{schema}.{table}" for schema, table, ours in conn.execute(FOREIGN_TABLES)
                   if schema != ours or table not in OWN_TABLES]
    if foreign:
        raise pytest.UsageError(
            f"BREACHFLOW_TEST_DATABASE_URL: the database '{name}' holds tables that are not breachflow's "
            f"({', '.join(foreign)}); the test run drops tables, so give it a database of its own")


def pytest_configure(config: pytest.Config) -> None:
    if GIVEN_PG_URL:
        refuse_unsafe_database(GIVEN_PG_URL)
    if PG_URL != GIVEN_PG_URL:
        with db.engine_for(GIVEN_PG_URL).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            name = make_url(PG_URL).database
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        refuse_unsafe_database(PG_URL)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BREACHFLOW_") and name != "BREACHFLOW_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


PRODUCT_HASHER = sessions._hasher  # what breachflow hashes passwords with (test_web_auth checks its cost)
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its lowest cost in this process: at breachflow's, each password set or sign-in costs
    a fifth of a second of CPU. Processes the tests start hash at the product's cost."""
    monkeypatch.setattr(sessions, "_hasher", CHEAP_HASHER)


@pytest.fixture(scope="session")
def _pg_schema() -> None:
    """Every table dropped (a revision left by another run too), then the schema migrated afresh."""
    engine = db.engine_for(PG_URL)
    found = MetaData()
    found.reflect(engine)
    found.drop_all(engine)
    schema.upgrade(engine)


def _truncate_all() -> None:
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with db.engine_for(PG_URL).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings of a fresh installation (key files on SQLite, configured keys on PostgreSQL)."""
    if PG_URL:
        request.getfixturevalue("_pg_schema")
        _truncate_all()
        return Settings(data_dir=tmp_path / "var", database_url=PG_URL, **CONFIGURED_KEYS)
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture(scope="session")
def _fresh_installation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory initialised once per run (per xdist worker): its key files and an empty
    database at the newest revision, its write-ahead log folded in."""
    where = tmp_path_factory.mktemp("fresh") / "var"
    settings = Settings(data_dir=where)
    initialise(settings)
    engine = db.engine_of(settings)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return where


def _is_embedded_default(settings: Settings) -> bool:
    """Whether ``settings`` keep the database and every key in their default files in ``data_dir``."""
    return settings.database_url is None and not any(
        getattr(settings, name) for name in ("master_keys", "audit_key", "checkpoint_key", "key_file",
                                             "audit_key_file", "checkpoint_key_file"))


@pytest.fixture
def ctx(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Context]:
    """An initialised installation. After the test, the audit runs over the database it leaves
    behind: every chain verifies and replays to the stored rows (unless the test tampers).

    On SQLite a new data directory is a copy of one initialised once per run (the same files
    ``initialise`` writes, in a thousandth of its time); tests of initialising call it themselves."""
    if not PG_URL and _is_embedded_default(settings) and not settings.data_dir.exists():
        fresh = request.getfixturevalue("_fresh_installation")
        shutil.copytree(fresh, settings.data_dir, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    else:
        initialise(settings)
    context = Context.open(settings)
    yield context
    audit_after(context, request)


def audit_after(context: Context, request: pytest.FixtureRequest) -> None:
    """Unless the test tampers or failed: every chain verifies and replays to the stored rows."""
    if request.node.get_closest_marker("tampers") is None and getattr(request.node, "rep_call", None) and request.node.rep_call.passed:
        report = audit.verify(context)
        assert report.intact, "the audit after the test found: " + "; ".join(map(str, report.findings))


@pytest.fixture(scope="module")
def shared_installation(tmp_path_factory: pytest.TempPathFactory,
                        request: pytest.FixtureRequest) -> tuple[Settings, Context]:
    """One installation for all the tests of a module that each start from the same world, built
    once and put back before each test with ``Snapshot``."""
    where = tmp_path_factory.mktemp("shared") / "var"
    if PG_URL:
        request.getfixturevalue("_pg_schema")
        _truncate_all()
        settings = Settings(data_dir=where, database_url=PG_URL, **CONFIGURED_KEYS)
        initialise(settings)
    else:
        shutil.copytree(request.getfixturevalue("_fresh_installation"), where,
                        ignore=shutil.ignore_patterns("*-wal", "*-shm"))
        settings = Settings(data_dir=where)
    return settings, Context.open(settings)


class Snapshot:
    """Every row of breachflow's tables as they are when taken; ``restore`` puts exactly those back."""

    def __init__(self, context: Context) -> None:
        self.engine = context.engine
        with self.engine.connect() as conn:
            self.rows = {table: [dict(row._mapping) for row in conn.execute(table.select())]
                         for table in SQLModel.metadata.sorted_tables}

    def restore(self) -> None:
        with self.engine.begin() as conn:
            for table in reversed(self.rows):
                conn.execute(table.delete())
            for table, rows in self.rows.items():
                if rows:
                    conn.execute(table.insert(), rows)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item, so a fixture knows whether the test passed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, started."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def backend() -> str:
    return "postgresql" if PG_URL else "sqlite"


@pytest.fixture
def needs_postgres() -> str:
    """The PostgreSQL URL; without it the test is skipped, visibly."""
    if not PG_URL:
        pytest.skip("set BREACHFLOW_TEST_DATABASE_URL to run against PostgreSQL (.ci/run does)")
    return PG_URL


def add_school(ctx: Context, brin: str = "12AB", name: str = "De Regenboog") -> schools.SchoolView:
    return schools.add(ctx, brin=brin, name=name, contacts=[f"directie@{brin.lower()}.example.nl"])


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


CONFIRM = {
    "summary": "Class lists of group 7 were visible to every parent",
    "nature_how": "A permission check in the parent portal's class page was missing",
    "nature_actions": ["read"],
    "affected_systems": ["parent_portal"],
    "cause_category": "unknown",
}
CONTAIN = {"measures": "Class page switched off; sessions of parents logged out"}
REMEDIATE = {
    "cause_category": "system_technical",
    "cause_description": "Release 4.2 dropped the group membership check",
    "fix_description": "Restored the check and added a regression test",
    "fix_tested": True,
    "data_lost_or_altered": False,
}
RESTORE = {"backup_description": "Nightly backup of 27 November, 02:00", "backup_checked": True}
VERIFY = {"fix_applied": True, "system_verified": True}
EVALUATE = {
    "evaluation": "Detected by monitoring within an hour; release checklist extended",
    "affected_groups": [
        {"group": "pupils", "consequences": "Names and groups seen by other parents", "severity": "limited"}
    ],
    "group_size_min": 28,
    "group_size_max": 28,
    "records_count": 28,
    "data_kinds": ["contact", "learning_performance"],
}
AP_FORM = {"data_unreadable": False, "subjects_informed": False,
           "subjects_not_informed_reason": "Low risk: names and groups only, seen by parents of classmates"}
AP_DOSSIER = {  # what the AP's form asks beyond the guards: the dossier marks these missing until given
    "special_categories": ["health"], "other_eu_countries": ["BE"], "other_supervisors": "None informed",
    "other_parties": "The parents of group 7", "other_parties_asked": "To forget what they saw",
    "severity": "limited", "severity_explanation": "Names and groups only, seen by classmates' parents",
    "consequences_controller": "Questions from parents", "followup_measures": "A review of every class page",
}
MASTER_DATA = {"address": "Schoolstraat 1, 5611 AA Eindhoven", "kvk_number": "41234567", "sector": "primary",
               "dpo_registration": "FG001234",
               "contact_person": {"name": "J. de Vries", "phone": "040 123 45 67", "email": "fg@regenboog.example.nl"}}


def confirmed(ctx: Context, *, brins: tuple[str, ...] = ("12AB",)) -> str:
    """A report affecting ``brins``, triaged and confirmed (the schools must exist)."""
    reference = reported(ctx, brins=brins)
    service.fire(ctx, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=reference, trigger="confirm", actor="hanna", fields=CONFIRM)
    return reference


@pytest.fixture
def confirmed_incident(ctx: Context) -> str:
    """School 12AB and a confirmed incident affecting it: its reference."""
    add_school(ctx)
    return confirmed(ctx)


@pytest.fixture
def now() -> datetime:
    """A moment just ahead of the clock: every message queued in the test is due by then."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


@pytest.fixture
def mail(ctx: Context) -> Context:
    """Schools 12AB, 34CD and 56EF, and a context whose commands queue notices to them (the outbox's
    tests; ``test_bounces`` has a ``mail`` of its own)."""
    from notify_support import with_notices

    for brin, name in (("12AB", "De Regenboog"), ("34CD", "Het Anker"), ("56EF", "De Vlinder")):
        add_school(ctx, brin, name)
    return with_notices(ctx)


def reported(ctx: Context, *, brins: tuple[str, ...] = ("12AB",), discovered_hours_ago: float = 2) -> str:
    """A fresh report affecting ``brins`` (the schools must exist)."""
    incident = service.report(
        ctx, actor="handler", source="monitoring",
        fields={"discovered_at": hours_ago(discovered_hours_ago)}, schools={b: 28 for b in brins},
    )
    return incident.reference


def evaluating(ctx: Context, *, brins: tuple[str, ...] = ("12AB",), school_caused: bool = False) -> str:
    """A confirmed incident walked to ``evaluation``: contained, remediated (processor-caused, or
    school-caused with every school told to notify the AP), verified, every school informed."""
    reference = confirmed(ctx, brins=brins)
    cause = {"cause_category": "user_error_employee", "cause_description": "A teacher shared a login"}
    for trigger, fields in (("contained", CONTAIN), ("remediated", REMEDIATE | (cause if school_caused else {})),
                            ("verified", VERIFY)):
        service.fire(ctx, reference=reference, trigger=trigger, actor="hanna", fields=fields)
    for brin in brins:
        service.log_contact(ctx, reference=reference, actor="hanna", brin=brin, channel="phone",
                            summary="Director informed of the cause and the fix", told_must_notify_ap=school_caused)
    return reference


@pytest.fixture
def cli(ctx, settings, monkeypatch, capsys):
    """Run ``breachflow`` in-process against the test installation; return (code, out, err)."""
    from notify_support import settings_env

    from breachflow.api.cli import main

    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BREACHFLOW_ACTOR", "hanna")

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def api(ctx, settings):
    """The API over the test installation: two schools, a user and token per role (``api_support``)."""
    from api_support import build

    return build(ctx, settings)


@pytest.fixture
def app(ctx, settings):
    """breachflow's application over the test installation, with its users (``web_support``)."""
    from web_support import installation

    return installation(ctx, settings)


@pytest.fixture
def site(app):
    """The app's own context: it queues notices, as ``serve`` does."""
    return app.state.ctx
