"""What every command needs: settings, the database engine, the key ring, the deadline periods."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Engine, inspect

from workflow import crypto, db
from workflow.config import Settings
from workflow.deadlines import Periods
from workflow.errors import NotInitialised
from workflow.hooks import Notifier


@dataclass(frozen=True)
class Context:
    settings: Settings
    engine: Engine
    keys: crypto.KeyRing
    periods: Periods
    notifier: Notifier | None = None

    @classmethod
    def open(cls, settings: Settings) -> Context:
        """Connect to an initialised installation."""
        engine = db.engine_for(settings.resolved_database_url)
        if not inspect(engine).has_table("incident"):
            raise NotInitialised(
                f"no breachflow database at {engine.url.render_as_string(hide_password=True)}; "
                "run 'breachflow init'"
            )
        return cls(settings, engine, crypto.load_key_ring(settings), Periods.from_settings(settings))

    def with_notifier(self, notifier: Notifier) -> Context:
        """This context, with notices written by ``notifier`` inside each command."""
        return replace(self, notifier=notifier)


def initialise(settings: Settings) -> list[str]:
    """Create the database schema and, on the embedded default, the key file; say what was done."""
    done = []
    if settings.master_keys is None:
        path = settings.resolved_key_file
        done.append(f"{'created' if crypto.create_key_file(path) else 'kept'} key file {path}")
    engine = db.engine_for(settings.resolved_database_url)
    db.create_schema(engine)
    done.append(f"database ready at {engine.url.render_as_string(hide_password=True)}")
    return done
