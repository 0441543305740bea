"""The case each 办不成事 report concerns (for the resident's message when the report closes).

Revision ID: notification_0002
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "notification_0002"
down_revision = "notification_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_report_cases",
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_notification_report_cases"),
    )


def downgrade():
    op.drop_table("notification_report_cases")
