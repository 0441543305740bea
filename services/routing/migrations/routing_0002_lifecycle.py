"""Item lifecycle: item columns, cases, history, deferred materials.

Revision ID: routing_0002
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "routing_0002"
down_revision = "routing_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("routing_items") as batch:
        # Existing rows (none yet in any deployment) get their routing time as clock start and placement.
        batch.add_column(sa.Column("clock_started_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("placed_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(128)))
        batch.add_column(sa.Column("return_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("returns_locked", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("clock_paused_at", UTCDateTime))
        batch.add_column(sa.Column("result", sa.Text))
        batch.add_column(sa.Column("delivery_json", sa.Text))
        batch.add_column(sa.Column("closed_reason", sa.String(64)))
        batch.add_column(sa.Column("updated_at", UTCDateTime, nullable=True))
    op.execute("UPDATE routing_items SET clock_started_at = routed_at, placed_at = routed_at, updated_at = routed_at")
    with op.batch_alter_table("routing_items") as batch:
        batch.alter_column("clock_started_at", nullable=False)
        batch.alter_column("placed_at", nullable=False)
        batch.alter_column("updated_at", nullable=False)
    op.create_table(
        "routing_cases",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("completed_at", UTCDateTime),
        sa.PrimaryKeyConstraint("case_id", name="pk_routing_cases"),
    )
    op.create_table(
        "routing_item_history",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(32)),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("reason_code", sa.String(64)),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_routing_item_history"),
    )
    op.create_index("ix_routing_item_history_item_id", "routing_item_history", ["item_id"])
    op.create_table(
        "routing_deferred_materials",
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("material_code", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reminded_at", UTCDateTime),
        sa.PrimaryKeyConstraint("item_id", "material_code", name="pk_routing_deferred_materials"),
    )
    op.create_index("ix_routing_deferred_materials_case_id", "routing_deferred_materials", ["case_id"])
    op.create_index("ix_routing_deferred_materials_due_date", "routing_deferred_materials", ["due_date"])


def downgrade():
    op.drop_table("routing_deferred_materials")
    op.drop_table("routing_item_history")
    op.drop_table("routing_cases")
    with op.batch_alter_table("routing_items") as batch:
        for column in ("updated_at", "closed_reason", "delivery_json", "result", "clock_paused_at",
                       "returns_locked", "return_count", "claimed_by", "placed_at", "clock_started_at"):
            batch.drop_column(column)
