"""Routing's items table.

Revision ID: routing_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "routing_0001"
down_revision = None
branch_labels = ("routing",)
depends_on = "kernel_0001"


def upgrade():
    op.create_table(
        "routing_items",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("waiting_for", sa.String(500), nullable=False),
        sa.Column("legal_deadline", UTCDateTime, nullable=False),
        sa.Column("promised_deadline", UTCDateTime, nullable=False),
        sa.Column("deadline_provisional", sa.Boolean, nullable=False),
        sa.Column("catalogue_version", sa.String(64), nullable=False),
        sa.Column("routed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_routing_items"),
        sa.UniqueConstraint("case_id", "matter_code", name="uq_routing_items_case_matter"),
    )
    op.create_index("ix_routing_items_case_id", "routing_items", ["case_id"])
    op.create_index("ix_routing_items_unit_code", "routing_items", ["unit_code"])


def downgrade():
    op.drop_table("routing_items")
