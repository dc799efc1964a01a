"""The README tells a newcomer the truth: every environment variable breachflow reads is in its
table, and it names none that breachflow does not read."""

from __future__ import annotations

import re
from pathlib import Path

from breachflow.workflow.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PACKAGES = ("workflow", "api", "notifications")
PREFIX = Settings.model_config["env_prefix"]
NAME = re.compile(rf"\b{PREFIX}[A-Z0-9_]*[A-Z0-9]\b")
READ_DIRECTLY = re.compile(rf"environ(?:\.get)?[(\[]\s*\"({PREFIX}\w+)\"")  # os.environ.get("…"), os.environ["…"]
TEST_ONLY = {"BREACHFLOW_TEST_DATABASE_URL"}  # the test suite's, documented under "Tests and benchmarks"


def read_by_breachflow() -> set[str]:
    """Every variable of the settings, and every one the code reads from the environment itself."""
    names = {f"{PREFIX}{field.upper()}" for field in Settings.model_fields}
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            names |= set(READ_DIRECTLY.findall(source.read_text(encoding="utf-8")))
    return names


def configuration_table() -> set[str]:
    """The variables in the first column of the README's table under "## Configuration"."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table under ## Configuration"
    return {name for row in rows for name in NAME.findall(row.split("|")[1])}


def test_every_environment_variable_is_in_the_readme_table():
    missing = read_by_breachflow() - configuration_table()
    assert not missing, f"add to the README's table under ## Configuration: {sorted(missing)}"


def test_the_readme_names_no_variable_breachflow_does_not_read():
    unknown = set(NAME.findall(README)) - read_by_breachflow() - TEST_ONLY
    assert not unknown, f"the README names variables breachflow does not read: {sorted(unknown)}"
