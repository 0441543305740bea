"""Enterprise applicants: the organisation (name, 统一社会信用代码) beside the person who acts for it.

The person (legal representative or authorised agent) keeps using the existing name, ID number, phone
and e-mail columns, so personal data stays where it always was and is protected the same way.

Revision ID: intake_0005
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0005"
down_revision = "intake_0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("intake_applicants") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="person"))
        batch.add_column(sa.Column("organisation_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("uscc", sa.String(18), nullable=True))
        batch.add_column(sa.Column("representative_role", sa.String(32), nullable=True))
        batch.create_index("ix_intake_applicants_uscc", ["uscc"])


def downgrade():
    with op.batch_alter_table("intake_applicants") as batch:
        batch.drop_index("ix_intake_applicants_uscc")
        batch.drop_column("representative_role")
        batch.drop_column("uscc")
        batch.drop_column("organisation_name")
        batch.drop_column("kind")
