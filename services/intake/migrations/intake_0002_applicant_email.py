"""Optional e-mail address of the applicant, for notices by e-mail.

Revision ID: intake_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("intake_applicants") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))


def downgrade():
    with op.batch_alter_table("intake_applicants") as batch:
        batch.drop_column("email")
