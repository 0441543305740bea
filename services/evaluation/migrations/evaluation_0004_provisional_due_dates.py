"""Provisional due dates: a rectification's due and escalation times and a 督办单's due time counted across a year
whose holiday arrangement (调休) is not loaded yet are flagged, and counted again once it is loaded; the rates read
model remembers when routing last revised an item's deadlines.

- ``evaluation_rectifications``: ``deadline_days`` (working days after ``opened_at``), ``escalate_after_days``
  (working days after the deadline), ``deadline_provisional``, ``escalate_at_provisional``.
- ``evaluation_supervision_orders``: ``due_days`` (working days after ``issued_at``), ``due_at_provisional``.
- ``evaluation_items``: ``deadline_as_of``, the time of the item event whose promised deadline the row holds, so
  that a late event does not undo routing's revision of a provisional deadline (``item.deadline-revised``).

Rows stored before this revision keep NULL counts and are not flagged: they are left as they are (no index on the
flags either: the tables hold the few rectifications and orders of a district, and the revision pass reads the
flagged ones only when the calendar changed).

Revision ID: evaluation_0004
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "evaluation_0004"
down_revision = "evaluation_0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("evaluation_rectifications") as batch:
        batch.add_column(sa.Column("deadline_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("escalate_after_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("deadline_provisional", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("escalate_at_provisional", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("evaluation_supervision_orders") as batch:
        batch.add_column(sa.Column("due_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("due_at_provisional", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("evaluation_items") as batch:
        batch.add_column(sa.Column("deadline_as_of", UTCDateTime, nullable=True))


def downgrade():
    with op.batch_alter_table("evaluation_items") as batch:
        batch.drop_column("deadline_as_of")
    with op.batch_alter_table("evaluation_supervision_orders") as batch:
        batch.drop_column("due_at_provisional")
        batch.drop_column("due_days")
    with op.batch_alter_table("evaluation_rectifications") as batch:
        for column in ("escalate_at_provisional", "deadline_provisional", "escalate_after_days", "deadline_days"):
            batch.drop_column(column)
