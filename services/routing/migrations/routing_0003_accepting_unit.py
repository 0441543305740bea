"""通办: the unit whose window took an item's case in for another line (it sees the item and records custody).

Revision ID: routing_0003_accepting_unit
"""
import sqlalchemy as sa
from alembic import op

revision = "routing_0003_accepting_unit"
down_revision = "routing_0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("routing_items") as batch:
        batch.add_column(sa.Column("accepting_unit_code", sa.String(12), nullable=True))
    op.create_index("ix_routing_items_accepting_unit_code", "routing_items", ["accepting_unit_code"])


def downgrade():
    op.drop_index("ix_routing_items_accepting_unit_code", table_name="routing_items")
    with op.batch_alter_table("routing_items") as batch:
        batch.drop_column("accepting_unit_code")
