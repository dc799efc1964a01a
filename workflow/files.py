"""Owner-only files: the data directory, the SQLite database, key files.

Nothing breachflow creates on disk is readable by group or others. A file is written whole or not
at all (a temporary file, flushed to disk, then moved into place, and the directory flushed too),
so a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> None:
    """Create the directory ``path`` owner-only (0700) if it is missing (its parents as usual)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only (0600) if it is missing, in an owner-only directory."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))


def tighten(path: Path) -> int | None:
    """Take group's and others' access away from ``path`` if it has any; its old mode, or ``None``
    when there was nothing to take (or no such file)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None
    if not mode & 0o077:
        return None
    path.chmod(mode & ~0o077)
    return mode


def write_private(path: Path, data: bytes | Iterable[bytes], *, replace: bool) -> bool:
    """Write ``data`` (bytes, or chunks of them) to ``path`` (0600) atomically and durably.

    With ``replace`` false an existing file is kept and the answer is ``False``.
    """
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in [data] if isinstance(data, bytes) else data:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path exists: never overwrites
            except FileExistsError:
                return False
        _fsync_dir(path.parent)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def new_private(path: Path) -> Iterator[Path]:
    """Make the new file ``path`` whole or not at all: the block fills an owner-only temporary file
    beside it (yielded), which then goes to disk and into place; ``FileExistsError`` if ``path``
    exists by then (never overwritten)."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
        _fsync_dir(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
