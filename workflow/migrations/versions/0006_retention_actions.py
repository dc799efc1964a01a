"""Retention, data-subject rights, follow-up actions and informing the people affected (issue 11)

Revision 0006, after 0005:
- ``outbox.data_key_id`` and ``notice_snapshot.data_key_id`` name the key that seals each message, so a school's notices can be sealed
  with (and destroyed with) that school's key; existing messages were sealed with their incident's.
- ``affected_school`` records whether and how the school informed the people affected (GDPR art. 34)
  and when retention destroyed the school's part of the incident.
- ``follow_up_action``: what came out of an evaluation; ``deadline.action_id`` keeps its clock.
- ``retention_log``: every destruction by the retention job.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('follow_up_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('description', sa.LargeBinary(), nullable=False),
    sa.Column('owner', sa.String(length=80), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('blocking', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'number')
    )
    with op.batch_alter_table('follow_up_action', schema=None) as batch_op:
        batch_op.create_index('ix_follow_up_open_due', ['status', 'due_at'], unique=False)

    op.create_table('retention_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('what', sa.String(length=30), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('brin', sa.String(length=8), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('reference', sa.String(length=20), nullable=True),
    sa.Column('data_key_id', sa.Integer(), nullable=True),
    sa.Column('contract_ended_on', sa.Date(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['data_key_id'], ['data_key.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('retention_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_log_at'), ['at'], unique=False)

    with op.batch_alter_table('affected_school', schema=None) as batch_op:
        batch_op.add_column(sa.Column('people_informed', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('people_informed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('people_informed_via', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('people_informed_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('people_informed_note', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('people_informed_recorded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('destroyed_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('deadline', schema=None) as batch_op:
        batch_op.add_column(sa.Column('action_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_deadline_action_id', 'follow_up_action', ['action_id'], ['id'])

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_key_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_outbox_data_key_id', 'data_key', ['data_key_id'], ['id'])
    # every message so far was sealed with its incident's key
    with op.batch_alter_table('notice_snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_key_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_notice_snapshot_data_key_id', 'data_key', ['data_key_id'], ['id'])
    # every message and snapshot so far was sealed with its incident's key
    for table in ('outbox', 'notice_snapshot'):
        op.execute(f"UPDATE {table} SET data_key_id = "  # noqa: S608 table: one of the two names above
                   f"(SELECT incident.data_key_id FROM incident WHERE incident.id = {table}.incident_id)")


def downgrade() -> None:
    raise NotImplementedError("breachflow migrates forward only: restore the backup taken before the upgrade")
