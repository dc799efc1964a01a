"""Deadlines as indexed rows, and the periods they were computed with (issue 9)

Revision 0003, after 0002. The tables start empty: the first process that opens the database
finds no ``clock_basis`` and computes every incident's rows (``workflow.clocks.ensure_current``),
with the periods it is configured with.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_basis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("periods", sa.String(length=200), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "deadline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("next_look_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deadline_incident", "deadline", ["incident_id", "is_open", "due_at"])
    op.create_index("ix_deadline_next_look_at", "deadline", ["next_look_at"])
    op.create_index("ix_deadline_open_due", "deadline", ["is_open", "due_at", "id"])


def downgrade() -> None:
    raise NotImplementedError("breachflow migrates forward only: restore the backup taken before the upgrade")
