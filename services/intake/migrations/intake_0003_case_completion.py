"""A case's completion and its one-trip delivery, as routing reports them.

Revision ID: intake_0003
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("intake_cases") as batch:
        batch.add_column(sa.Column("completed_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("delivery_json", sa.Text, nullable=True))


def downgrade():
    with op.batch_alter_table("intake_cases") as batch:
        batch.drop_column("delivery_json")
        batch.drop_column("completed_at")
