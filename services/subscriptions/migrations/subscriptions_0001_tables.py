"""The subscriptions service's tables: subscriptions, signing secrets, matched events, deliveries, attempts,
disclosures and the revision counter.

Revision ID: subscriptions_0001

Written out as explicit operations, equal to the ORM definitions (``adapters/orm.py``) as they were at this
revision; tests/integration/test_migrations.py compares the two.
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "subscriptions_0001"
down_revision = None
branch_labels = ("subscriptions",)
depends_on = "kernel_0001"

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "subscriptions_subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("unit_prefix", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("sink_type", sa.String(16), nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.Column("stream_name", sa.String(255), nullable=True),
        sa.Column("broker_user", sa.String(128), nullable=True),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(300), nullable=True),
        sa.Column("failing_since", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions_subscriptions"),
    )
    op.create_index("ix_subscriptions_subscriptions_owner", "subscriptions_subscriptions", ["owner"])
    op.create_table(
        "subscriptions_secrets",
        sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_subscriptions_secrets"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions_subscriptions.id"],
                                name="fk_subscriptions_secrets_subscription"),
    )
    op.create_index("ix_subscriptions_secrets_subscription_id", "subscriptions_secrets", ["subscription_id"])
    op.create_table(
        "subscriptions_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("event_time", UTCDateTime, nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("community_code", sa.String(12), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_subscriptions_events"),
    )
    op.create_table(
        "subscriptions_deliveries",
        sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_time", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("first_attempt_at", UTCDateTime, nullable=True),
        sa.Column("last_attempt_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_subscriptions_deliveries"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_subscriptions_deliveries_subscription_event"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions_subscriptions.id"],
                                name="fk_subscriptions_deliveries_subscription"),
        sa.ForeignKeyConstraint(["event_id"], ["subscriptions_events.event_id"],
                                name="fk_subscriptions_deliveries_event"),
    )
    op.create_index("ix_subscriptions_deliveries_due", "subscriptions_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_subscriptions_deliveries_view", "subscriptions_deliveries",
                    ["subscription_id", "status", "seq"])
    op.create_table(
        "subscriptions_attempts",
        sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("delivery_seq", _SEQUENCE, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("attempted_at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_subscriptions_attempts"),
        sa.ForeignKeyConstraint(["delivery_seq"], ["subscriptions_deliveries.seq"],
                                name="fk_subscriptions_attempts_delivery"),
    )
    op.create_index("ix_subscriptions_attempts_delivery_seq", "subscriptions_attempts", ["delivery_seq"])
    op.create_table(
        "subscriptions_disclosures",
        sa.Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("subscriber", sa.String(128), nullable=False),
        sa.Column("subscriber_kind", sa.String(16), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("sink_type", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=True),
        sa.Column("disclosed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_subscriptions_disclosures"),
    )
    op.create_index("ix_subscriptions_disclosures_case_id", "subscriptions_disclosures", ["case_id"])
    revision_table = op.create_table(
        "subscriptions_revision",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions_revision"),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}])
