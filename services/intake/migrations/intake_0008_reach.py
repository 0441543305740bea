"""The 15-minute service circle and 通办: the service point a case was taken in at, and the unit that took a case
in for another line (with the community it was taken in at).

Revision ID: intake_0008_reach
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0008_reach"
down_revision = "intake_0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("intake_cases") as batch:
        batch.add_column(sa.Column("service_point_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("accepting_unit_code", sa.String(12), nullable=True))
        batch.add_column(sa.Column("taken_in_community_code", sa.String(12), nullable=True))
    op.create_index("ix_intake_cases_accepting_unit_code", "intake_cases", ["accepting_unit_code"])


def downgrade():
    op.drop_index("ix_intake_cases_accepting_unit_code", table_name="intake_cases")
    with op.batch_alter_table("intake_cases") as batch:
        batch.drop_column("taken_in_community_code")
        batch.drop_column("accepting_unit_code")
        batch.drop_column("service_point_id")
