"""Deadline rows remember failed attempts to fire them (issue 15): a count, when to try again, the last error.
A row that keeps failing no longer comes back first in every sweep, and is parked after too many failures.

Revision ID: escalation_0002
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "escalation_0002"
down_revision = "escalation_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("escalation_deadlines", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("escalation_deadlines", sa.Column("next_attempt_at", UTCDateTime))
    op.add_column("escalation_deadlines", sa.Column("last_error", sa.String(500)))


def downgrade():
    with op.batch_alter_table("escalation_deadlines") as batch:
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
