"""Replays from the event log (issue 18): one row per replay a subscriber asked for, with its progress.

Revision ID: subscriptions_0003

Written out as explicit operations, equal to the ORM definition (``adapters/orm.py``, ``Replay``) at this revision;
tests/integration/test_migrations.py compares the two.
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "subscriptions_0003"
down_revision = "subscriptions_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "subscriptions_replays",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("mandate", sa.Text, nullable=False),
        sa.Column("from_time", UTCDateTime, nullable=True),
        sa.Column("from_offsets", sa.Text, nullable=True),
        sa.Column("until", UTCDateTime, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("positions", sa.Text, nullable=True),
        sa.Column("events_read", sa.Integer, nullable=False),
        sa.Column("events_matched", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions_replays"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions_subscriptions.id"],
                                name="fk_subscriptions_replays_subscription"),
    )
    op.create_index("ix_subscriptions_replays_subscription_id", "subscriptions_replays", ["subscription_id"])
    op.create_index("ix_subscriptions_replays_due", "subscriptions_replays", ["status", "lease_until"])


def downgrade():
    op.drop_index("ix_subscriptions_replays_due", table_name="subscriptions_replays")
    op.drop_index("ix_subscriptions_replays_subscription_id", table_name="subscriptions_replays")
    op.drop_table("subscriptions_replays")
