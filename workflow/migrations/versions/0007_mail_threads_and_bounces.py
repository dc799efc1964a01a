"""Mail threads and bounces (issue 12)

Revision 0007, after 0006:
- ``notice_snapshot.thread_id``: the Message-ID of a school's first notice about an incident, which
  every later notice to that school refers to (``In-Reply-To``, ``References``); filled for existing
  snapshots from the oldest message to that school about that incident.
- ``outbox.bounced`` and ``outbox.bounced_at``: recipients whose mail bounced after the server
  accepted it (sealed with the message's key), and when the latest bounce was read.
- ``ix_outbox_school_order``: a school's messages about an incident in order, so the dispatcher
  sends none before an earlier one still waiting.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notice_snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_id', sa.String(length=255), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounced', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_school_order', ['incident_id', 'school_id', 'id'], unique=False)
    op.execute("UPDATE notice_snapshot SET thread_id = (SELECT outbox.message_id FROM outbox "
               "WHERE outbox.incident_id = notice_snapshot.incident_id "
               "AND outbox.school_id = notice_snapshot.school_id ORDER BY outbox.id LIMIT 1)")


def downgrade() -> None:
    raise NotImplementedError("breachflow migrates forward only: restore the backup taken before the upgrade")
