"""The retention job's indexes (services/subscriptions/retention.py): delivered deliveries and matched events by
age, and deliveries by event (is an event still needed; its foreign key checked when an event is deleted).

Revision ID: subscriptions_0004
"""
import sqlalchemy as sa
from alembic import op

revision = "subscriptions_0004"
down_revision = "subscriptions_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_subscriptions_deliveries_delivered", "subscriptions_deliveries", ["created_at"],
                    postgresql_where=sa.text("status = 'delivered'"), sqlite_where=sa.text("status = 'delivered'"))
    op.create_index("ix_subscriptions_deliveries_event", "subscriptions_deliveries", ["event_id"])
    op.create_index("ix_subscriptions_events_received", "subscriptions_events", ["received_at"])


def downgrade():
    op.drop_index("ix_subscriptions_events_received", table_name="subscriptions_events")
    op.drop_index("ix_subscriptions_deliveries_event", table_name="subscriptions_deliveries")
    op.drop_index("ix_subscriptions_deliveries_delivered", table_name="subscriptions_deliveries")
