"""Draft the next revision: ``python -m breachflow.workflow.migrations "what changes"``.

Compares the models with a scratch SQLite database upgraded to the newest revision, and writes
what differs as the next numbered revision into ``versions/`` (of the checkout, with an editable
install). A draft is a start: review it, then run ``tests/test_migrations.py`` on SQLite and
PostgreSQL (see the README, "How to add a migration").
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import Script
from sqlalchemy import create_engine

from breachflow.workflow import schema


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    with (tempfile.TemporaryDirectory() as scratch,
          create_engine(f"sqlite:///{Path(scratch) / 'draft.db'}").begin() as conn):
        cfg = schema.config(conn)
        command.upgrade(cfg, "head")
        cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        number = len(schema.revisions()) + 1
        script = command.revision(cfg, message=argv[0], autogenerate=True, rev_id=f"{number:04d}")
    if not isinstance(script, Script):  # one head, so one script
        raise TypeError(f"alembic drafted {script!r}")
    print(f"drafted {script.path}: review it, then run tests/test_migrations.py on SQLite and PostgreSQL")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
