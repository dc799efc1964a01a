"""``breachflow`` as a real process in a directory of its own, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "breachflow.api.cli"]


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without its BREACHFLOW_* settings, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREACHFLOW_")}
    return env | {"PYTHONPATH": str(ROOT)} | variables


def breachflow(directory: Path, *argv: str, **variables: str) -> subprocess.CompletedProcess:
    """Run ``breachflow argv…`` in ``directory`` (default data dir ``directory/var``) to its end."""
    return subprocess.run([*COMMAND, *argv], cwd=directory, env=environment(**variables),
                          capture_output=True, text=True, timeout=60)
