"""What every command needs: settings, the database engine, the keys, the deadline periods."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from breachflow.workflow import crypto, db, keystore
from breachflow.workflow.config import Settings
from breachflow.workflow.deadlines import Periods
from breachflow.workflow.errors import NotInitialised
from breachflow.workflow.hooks import Notifier


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
    def open(cls, settings: Settings) -> Context:
        """Connect to an initialised installation; refuse if any of its keys is unusable."""
        engine = db.engine_of(settings)
        if not db.has_schema(engine):
            raise NotInitialised(f"no breachflow database at {db.where(engine)}; run 'breachflow init'")
        return cls(
            settings, engine, crypto.load_key_ring(settings), Periods.from_settings(settings),
            audit_key=keystore.read(settings, keystore.AUDIT).value,
            checkpoint_key=keystore.read(settings, keystore.CHECKPOINT).value,
        )

    def with_notifier(self, notifier: Notifier) -> Context:
        """This context, with notices written by ``notifier`` inside each command."""
        return replace(self, notifier=notifier)


def initialise(settings: Settings) -> list[str]:
    """Set up an installation, or check the one that is there; say what was found or done.

    Key files are created only while there is no database, and before it: a crash in between
    leaves keys without a database, which the next run completes. Beside an existing database a
    missing key is refused (``SecretUnavailable``), never replaced.
    """
    engine = db.engine_of(settings)
    if db.has_schema(engine):
        return [*keystore.prepare(settings, create=False), f"kept the database at {db.where(engine)}"]
    done = keystore.prepare(settings, create=True)
    db.create_schema(engine)
    return [*done, f"database ready at {db.where(engine)}"]
