"""Enterprise applicants: the organisation (name, 统一社会信用代码) beside the person who acts for it.

The person (legal representative or authorised agent) is stored in the existing sealed name, ID number,
phone and e-mail columns (intake_0005: encrypted, with the ID number's blind index), so a legal
representative's personal data is protected exactly like a resident's. The new columns hold only the
organisation's public data (name and USCC, printed on its business licence) and the person's role.

Revision ID: intake_0009
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0009"
down_revision = "intake_0008_reach"
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
