"""Indexes for the retention job: published outbox rows by publication time, processed-message records by
when they were handled (shared/retention.py), so that "older than the cut-off" is an index range scan.

Every service's branch has a revision that depends on this one (``<service>_…_retention``), so
``sanji migrate <service>`` brings it to each service's database.

Revision ID: kernel_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "kernel_0002"
down_revision = "kernel_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_outbox_published_at", "outbox_messages", ["published_at"],
                    postgresql_where=sa.text("published_at IS NOT NULL"),
                    sqlite_where=sa.text("published_at IS NOT NULL"))
    op.create_index("ix_processed_messages_processed_at", "processed_messages", ["processed_at"])


def downgrade():
    op.drop_index("ix_processed_messages_processed_at", table_name="processed_messages")
    op.drop_index("ix_outbox_published_at", table_name="outbox_messages")
