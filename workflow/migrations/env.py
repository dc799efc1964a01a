"""Alembic's environment: runs the revisions on the connection ``workflow.schema`` passes in
(``config.attributes["connection"]``), inside that connection's transaction."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from breachflow.notifications import models as _notification_tables  # noqa: F401  (the schema is every table)
from breachflow.workflow import models as _workflow_tables  # noqa: F401
from breachflow.workflow.migrations.render import render_item

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by rebuilding it
    render_item=render_item,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
