"""容缺 due dates revised once a year's holiday arrangement is loaded: the working days each was counted.

``due_working_days``: the due date is that many working days after the (Shanghai) day the case was submitted.
Rows stored before this revision keep NULL; the intake service fills it at its first revision pass
(services/intake/revisions.py: from the stored date while its year is still provisional, otherwise from the
rule that set it, the deferral period capped by the matters' promised days).

Revision ID: intake_0010_deferral_revision
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0010_deferral_revision"
down_revision = "intake_0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("intake_deferred_materials") as batch:
        batch.add_column(sa.Column("due_working_days", sa.Integer, nullable=True))
    op.create_index("ix_intake_deferred_materials_due_date_provisional", "intake_deferred_materials",
                    ["due_date_provisional"])


def downgrade():
    op.drop_index("ix_intake_deferred_materials_due_date_provisional", table_name="intake_deferred_materials")
    with op.batch_alter_table("intake_deferred_materials") as batch:
        batch.drop_column("due_working_days")
