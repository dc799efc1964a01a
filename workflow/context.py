"""What every command needs: settings, the database engine, the keys, the deadline periods."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from breachflow.workflow import clocks, crypto, db, files, keystore, schema
from breachflow.workflow.config import Settings
from breachflow.workflow.deadlines import Periods
from breachflow.workflow.hooks import Notifier
from breachflow.workflow.models import event_t


@dataclass(frozen=True)
class Context:
    settings: Settings
    engine: Engine
    keys: crypto.KeyRing
    periods: Periods
    audit_key: bytes = field(repr=False)  # HMAC key of the timeline chain
    checkpoint_key: Ed25519PrivateKey = field(repr=False)  # signs checkpoints of the chain
    notifier: Notifier | None = None

    @classmethod
    def open(cls, settings: Settings, engine: Engine | None = None, *, adopt_periods: bool = False) -> Context:
        """Connect to an initialised installation at this breachflow's schema revision (through
        ``engine``, default the process's engine for its URL); refuse if any of its keys is unusable.
        The stored deadlines are computed first if there are none; with ``adopt_periods`` (``serve``,
        ``worker``) they are recomputed if they follow other periods, else that is refused
        (``clocks.ensure_current``)."""
        engine = engine or db.engine_of(settings)
        schema.require_current(engine)
        ctx = cls(
            settings, engine, crypto.load_key_ring(settings), Periods.from_settings(settings),
            audit_key=keystore.read(settings, keystore.AUDIT).value,
            checkpoint_key=keystore.read(settings, keystore.CHECKPOINT).value,
        )
        clocks.ensure_current(engine, ctx.periods, datetime.now(UTC), adopt=adopt_periods)  # keys first: refused, it writes nothing
        return ctx

    def with_notifier(self, notifier: Notifier) -> Context:
        """This context, with notices written by ``notifier`` inside each command."""
        return replace(self, notifier=notifier)


def initialise(settings: Settings) -> list[str]:
    """Set up an installation, or check and upgrade the one that is there; say what was found or done.

    Key files are created only while there is no database, and before it: a crash in between
    leaves keys without a database, which the next run completes. Beside an existing database a
    missing key is refused (``SecretUnavailable``), never replaced, unless nothing depends on it
    (``_unused_secrets``). The schema is upgraded first there, so a database newer than this
    breachflow is refused before anything is written.
    """
    engine = db.engine_of(settings)
    done = _tighten(settings, engine)
    if not db.has_schema(engine):
        return [*done, *keystore.prepare(settings, create=True), *schema.upgrade(engine),
                f"database ready at {db.where(engine)}"]
    upgraded = schema.upgrade(engine)
    return [*done, *keystore.prepare(settings, create=False, unused=_unused_secrets(settings, engine)), *upgraded,
            f"kept the database at {db.where(engine)}"]


def _unused_secrets(settings: Settings, engine: Engine) -> set[keystore.Secret]:
    """Keys nothing in this installation depends on yet, so a missing one may be created: the
    audit key before the first timeline event, the checkpoint key before the first checkpoint
    (installations from before these keys existed have neither)."""
    unused = set()
    with db.read_transaction(engine) as conn:
        if conn.execute(sa.select(event_t.c.id).limit(1)).first() is None:
            unused.add(keystore.AUDIT)
    directory = settings.resolved_checkpoint_dir
    if not (directory.is_dir() and any(directory.glob("checkpoint-*.json"))):
        unused.add(keystore.CHECKPOINT)
    return unused


def _tighten(settings: Settings, engine: Engine) -> list[str]:
    """Take group's and others' access away from the data directory and the SQLite files an
    older breachflow (or a hand-made copy) left open."""
    paths = [settings.data_dir]
    if db.is_sqlite(engine) and engine.url.database not in (None, "", ":memory:"):
        database = Path(engine.url.database)
        paths += [database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))]
    return [f"took group's and others' access away from {path} (was {mode:o})"
            for path in paths if (mode := files.tighten(path)) is not None]
