"""An SMS's provider template: its code and parameters, beside the free text (template-based gateways).

Revision ID: notification_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "notification_0003"
down_revision = "notification_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("notification_deliveries", sa.Column("template_code", sa.String(64), nullable=True))
    op.add_column("notification_deliveries", sa.Column("template_params", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("notification_deliveries", "template_params")
    op.drop_column("notification_deliveries", "template_code")
