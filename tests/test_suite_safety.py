"""The test suite drops and recreates breachflow's tables in BREACHFLOW_TEST_DATABASE_URL: it
refuses, before anything is dropped, a database that is not made for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import refuse_unsafe_database

from breachflow.workflow import db

pytestmark = pytest.mark.slow  # real processes (see the marker in pyproject.toml)

ROOT = Path(__file__).resolve().parent.parent


def pytest_run(database_url: str, *argv: str) -> subprocess.CompletedProcess:
    """The suite, as a developer starts it, pointed at ``database_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREACHFLOW_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv], cwd=ROOT,
                          env=env | {"BREACHFLOW_TEST_DATABASE_URL": database_url},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["breachflow", "latest_register", "contest"])
def test_a_database_not_named_for_tests_is_refused_before_connecting(name):
    # nothing listens on port 1: the refusal comes before any connection
    done = pytest_run(f"postgresql+psycopg://postgres@127.0.0.1:1/{name}", "tests/test_storage.py")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert f"the database '{name}'" in done.stderr and "named for tests" in done.stderr
    assert "passed" not in done.stdout


@pytest.mark.postgres
def test_a_test_database_holding_other_tables_is_refused_and_keeps_them(needs_postgres, settings):
    engine = db.engine_for(needs_postgres)
    refuse_unsafe_database(needs_postgres)  # breachflow's own tables (the settings fixture made them) are fine
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE grades_of_another_app (pupil text)"))
        conn.execute(sa.text("INSERT INTO grades_of_another_app VALUES ('Sanne')"))
    try:
        with pytest.raises(pytest.UsageError, match="grades_of_another_app"):
            refuse_unsafe_database(needs_postgres)
        done = pytest_run(needs_postgres, "tests/test_storage.py")
        assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
        assert "public.grades_of_another_app" in done.stderr
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pupil FROM grades_of_another_app")).scalars().all() == ["Sanne"]
            assert sa.inspect(conn).has_table("incident")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE grades_of_another_app"))
