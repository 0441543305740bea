"""The retention job's index of finished deliveries by age (services/notification/retention.py), and the
kernel's retention indexes (kernel_0002) in notification's database.

Revision ID: notification_0004
"""
import sqlalchemy as sa
from alembic import op

revision = "notification_0004"
down_revision = "notification_0003"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    op.create_index("ix_notification_deliveries_finished", "notification_deliveries", ["created_at"],
                    postgresql_where=sa.text("status IN ('sent', 'skipped')"),
                    sqlite_where=sa.text("status IN ('sent', 'skipped')"))


def downgrade():
    op.drop_index("ix_notification_deliveries_finished", table_name="notification_deliveries")
