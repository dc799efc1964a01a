"""``breachflow`` as a real process in a directory of its own, as an operator runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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


class Running:
    """A ``breachflow`` process started in ``directory``, its output going to ``directory/output.log``."""

    def __init__(self, directory: Path, *argv: str, **variables: str) -> None:
        """Start ``breachflow argv…`` (``wait_until_ready`` waits for it)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.argv, self.log = argv, directory / "output.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([*COMMAND, *argv], cwd=directory, env=environment(**variables),
                                            stdout=out, stderr=subprocess.STDOUT)

    def wait_until_ready(self, port: int | None = None) -> Running:
        """Return once it listens on ``port`` if given, else once it has said its first line; stop
        it and fail, showing its output, if it ends before that."""
        deadline = time.monotonic() + 60
        while not self._ready(port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"breachflow {' '.join(self.argv)} did not start:\n{self.output}")
            time.sleep(0.05)
        return self

    def _ready(self, port: int | None) -> bool:
        if port is None:
            return "\n" in self.output
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        """Ask the process to end (SIGTERM) and wait for it; its exit status."""
        if self.running:
            self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)
