"""Baseline: the schema as it was when migrations began (what ``create_all`` made until then).

Revision 0001, the first. A database made before migrations existed is adopted as this revision
(``workflow.schema``). UTC times are ``DateTime(timezone=True)`` (``models.UTCDateTime`` reads and
writes them), sealed values ``LargeBinary``, SQLModel's strings ``String`` without a length.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('data_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('destroyed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_table('reference_counter',
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('last', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('year')
    )
    op.create_table('incident',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reference', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(), nullable=False),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reported_by', sa.String(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('data_key_id', sa.Integer(), nullable=False),
        sa.Column('event_count', sa.Integer(), nullable=False),
        sa.Column('head_hash', sa.String(length=64), nullable=False),
        sa.Column('personal', sa.LargeBinary(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('clock_moved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('clock_moved_by', sa.String(), nullable=True),
        sa.Column('discovered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('breach_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('breach_ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('nature_actions', sa.JSON(), nullable=True),
        sa.Column('affected_systems', sa.JSON(), nullable=True),
        sa.Column('cause_category', sa.String(), nullable=True),
        sa.Column('group_size_min', sa.Integer(), nullable=True),
        sa.Column('group_size_max', sa.Integer(), nullable=True),
        sa.Column('records_count', sa.Integer(), nullable=True),
        sa.Column('data_kinds', sa.JSON(), nullable=True),
        sa.Column('data_unreadable', sa.Boolean(), nullable=True),
        sa.Column('subjects_informed', sa.Boolean(), nullable=True),
        sa.Column('subjects_informed_count', sa.Integer(), nullable=True),
        sa.Column('fix_tested', sa.Boolean(), nullable=True),
        sa.Column('data_lost_or_altered', sa.Boolean(), nullable=True),
        sa.Column('backup_checked', sa.Boolean(), nullable=True),
        sa.Column('fix_applied', sa.Boolean(), nullable=True),
        sa.Column('system_verified', sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_key.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('reference')
    )
    op.create_index('ix_incident_cause_category', 'incident', ['cause_category'])
    op.create_index('ix_incident_discovered_at', 'incident', ['discovered_at'])
    op.create_index('ix_incident_state', 'incident', ['state'])
    op.create_index('ix_incident_state_discovered', 'incident', ['state', 'discovered_at'])
    op.create_table('school',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('brin', sa.String(length=8), nullable=False),
        sa.Column('name', sa.String(), nullable=False),
        sa.Column('language', sa.String(), nullable=False),
        sa.Column('contract_ends_on', sa.Date(), nullable=True),
        sa.Column('data_key_id', sa.Integer(), nullable=False),
        sa.Column('contacts', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_key.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('brin')
    )
    op.create_table('affected_school',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('affected_count', sa.Integer(), nullable=True),
        sa.Column('informed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('informed_via', sa.String(), nullable=True),
        sa.Column('told_to_notify_ap_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.ForeignKeyConstraint(['school_id'], ['school.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'school_id')
    )
    op.create_index('ix_affected_school_incident_id', 'affected_school', ['incident_id'])
    op.create_index('ix_affected_school_school_id', 'affected_school', ['school_id'])
    op.create_table('ap_notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(), nullable=False),
        sa.Column('ap_reference', sa.String(), nullable=False),
        sa.Column('notified_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('school_ids', sa.JSON(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_by', sa.String(), nullable=False),
        sa.Column('delay_reason', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_ap_notification_incident_id', 'ap_notification', ['incident_id'])
    op.create_table('notice_snapshot',
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('facts', sa.LargeBinary(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.ForeignKeyConstraint(['school_id'], ['school.id']),
        sa.PrimaryKeyConstraint('incident_id', 'school_id')
    )
    op.create_table('outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=True),
        sa.Column('school_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(), nullable=False),
        sa.Column('message_id', sa.String(length=255), nullable=False),
        sa.Column('recipients', sa.LargeBinary(), nullable=True),
        sa.Column('sealed', sa.LargeBinary(), nullable=True),
        sa.Column('status', sa.String(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.ForeignKeyConstraint(['school_id'], ['school.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id')
    )
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_attempt_at'])
    op.create_index('ix_outbox_incident_id', 'outbox', ['incident_id'])
    op.create_table('reminder',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('deadline', sa.String(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('offset_label', sa.String(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'deadline', 'school_id', 'offset_label')
    )
    op.create_table('timeline_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(), nullable=False),
        sa.Column('kind', sa.String(), nullable=False),
        sa.Column('from_state', sa.String(), nullable=True),
        sa.Column('to_state', sa.String(), nullable=True),
        sa.Column('payload', sa.LargeBinary(), nullable=True),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'seq')
    )
    op.create_table('user_account',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=80), nullable=False),
        sa.Column('role', sa.String(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=True),
        sa.Column('email', sa.String(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['school_id'], ['school.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('username')
    )
    op.create_table('api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('label', sa.String(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_api_token_user_id', 'api_token', ['user_id'])
    op.create_table('idempotency_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'key')
    )


def downgrade() -> None:
    raise NotImplementedError("breachflow migrates forward only: restore the backup taken before the upgrade")
