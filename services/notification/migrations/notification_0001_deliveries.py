"""Notification's delivery log, its attempts, and the staff inbox.

Revision ID: notification_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "notification_0001"
down_revision = None
branch_labels = ("notification",)
depends_on = "kernel_0001"


def upgrade():
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("item_id", sa.String(36), nullable=True),
        sa.Column("community_code", sa.String(12), nullable=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=True),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_reason", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("address_hint", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.UniqueConstraint("recipient", "channel", "cause",
                            name="uq_notification_deliveries_recipient_channel_cause"),
    )
    op.create_index("ix_notification_deliveries_case_id", "notification_deliveries", ["case_id"])
    op.create_index("ix_notification_deliveries_due", "notification_deliveries", ["channel", "next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table(
        "notification_attempts",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("provider_ref", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_notification_attempts"),
        sa.ForeignKeyConstraint(["delivery_id"], ["notification_deliveries.id"],
                                name="fk_notification_attempts_delivery_id_notification_deliveries"),
    )
    op.create_index("ix_notification_attempts_delivery_id", "notification_attempts", ["delivery_id"])
    op.create_table(
        "notification_inbox",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("case_number", sa.String(32), nullable=True),
        sa.Column("item_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_inbox"),
        sa.UniqueConstraint("delivery_id", name="uq_notification_inbox_delivery_id"),
        sa.ForeignKeyConstraint(["delivery_id"], ["notification_deliveries.id"],
                                name="fk_notification_inbox_delivery_id_notification_deliveries"),
    )
    op.create_index("ix_notification_inbox_unit_code", "notification_inbox", ["unit_code"])


def downgrade():
    op.drop_table("notification_inbox")
    op.drop_table("notification_attempts")
    op.drop_index("ix_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
