"""办不成事 reports taken at the kiosk: who reported and what they said (personal data, kept in intake only).

Revision ID: intake_0004
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "intake_0004"
down_revision = "intake_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "intake_failure_reports",
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("report_number", sa.String(32), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("case_id", sa.String(36)),
        sa.Column("item_id", sa.String(36)),
        sa.Column("reporter_name", sa.String(50), nullable=False),
        sa.Column("reporter_phone", sa.String(20), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("filed_by", sa.String(128), nullable=False),
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_intake_failure_reports"),
        sa.UniqueConstraint("report_number", name="uq_intake_failure_reports_report_number"),
    )
    op.create_index("ix_intake_failure_reports_community_code", "intake_failure_reports", ["community_code"])


def downgrade():
    op.drop_table("intake_failure_reports")
