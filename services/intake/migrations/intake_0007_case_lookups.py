"""The resident lookup: misses and lockouts per case number and per client, and the ledger of materials staff
asked for or recorded (what is still missing).

Revision ID: intake_0007
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "intake_0007"
down_revision = "intake_0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "intake_material_ledger",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("material_code", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due_date", sa.Date),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "matter_code", "material_code", name="pk_intake_material_ledger"),
        sa.ForeignKeyConstraint(["case_id"], ["intake_cases.id"],
                                name="fk_intake_material_ledger_case_id_intake_cases"),
    )
    op.create_table(
        "intake_lookup_guards",
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("misses", sa.Integer, nullable=False),
        sa.Column("window_started_at", UTCDateTime),
        sa.Column("locked_until", UTCDateTime),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_intake_lookup_guards"),
    )


def downgrade():
    op.drop_table("intake_lookup_guards")
    op.drop_table("intake_material_ledger")
