"""The AP dossier: a school's master data for the AP's form, special categories, other EU/EEA
countries and the overall severity of an incident (issue 10)

Revision 0005, after 0004. Every new column is nullable: schools and incidents made before it
read as not yet recorded, which the dossier lists under "still to collect".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('special_categories', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('other_eu_countries', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('severity', sa.String(length=20), nullable=True))

    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('kvk_number', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('sector', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('dpo_registration', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('contact_person', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("breachflow migrates forward only: restore the backup taken before the upgrade")
