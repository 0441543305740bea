"""The coded reason a rectification was closed with (解释说明 or 无法整改), for the resident's SMS.

Revision ID: evaluation_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "evaluation_0002"
down_revision = "evaluation_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("evaluation_rectifications") as batch:
        batch.add_column(sa.Column("result_reason_code", sa.String(32), nullable=True))


def downgrade():
    with op.batch_alter_table("evaluation_rectifications") as batch:
        batch.drop_column("result_reason_code")
