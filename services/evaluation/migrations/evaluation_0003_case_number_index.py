"""Cases looked up by their number: POST /v1/rating-links {"case_number"} (the console's lookup rating).

Revision ID: evaluation_0003
"""
from alembic import op

revision = "evaluation_0003"
down_revision = "evaluation_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_evaluation_cases_case_number", "evaluation_cases", ["case_number"])


def downgrade():
    op.drop_index("ix_evaluation_cases_case_number", table_name="evaluation_cases")
