"""Revising provisional deadlines once a year's holiday arrangement is loaded: what each deadline was counted
from, and the open supplement request's due date on the item itself.

- ``deadlines_counted_from``: the instant the deadlines count from (the submission, or the release from
  waiting); backfilled with ``clock_started_at``, the instant routing started the item's clock, which is that
  instant give or take the delivery of the submission.
- ``legal_days`` / ``promised_days``: the working days the legal and promised deadlines count from
  ``clock_started_at`` (the promised count includes the days a paused clock added). Rows stored before this
  revision keep NULL; the routing service fills them at its first revision pass (services/routing/revisions.py:
  from the stored dates while their year is still provisional, otherwise from the catalogue).
- ``supplement_requested_on`` / ``supplement_due_days`` / ``supplement_due_date`` / ``supplement_due_date_
  provisional``: the supplement request the item waits on (until now only in the history entry's details).
  Backfilled here from the latest ``request-supplement`` history entry of every item waiting for a supplement;
  the count is filled by the service like the deadlines'.

Revision ID: routing_0004_deadline_revision
"""
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "routing_0004_deadline_revision"
down_revision = "routing_0003_accepting_unit"
branch_labels = None
depends_on = None

_SHANGHAI = ZoneInfo("Asia/Shanghai")


def upgrade():
    with op.batch_alter_table("routing_items") as batch:
        batch.add_column(sa.Column("deadlines_counted_from", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("legal_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("promised_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("supplement_requested_on", sa.Date, nullable=True))
        batch.add_column(sa.Column("supplement_due_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("supplement_due_date", sa.Date, nullable=True))
        batch.add_column(sa.Column("supplement_due_date_provisional", sa.Boolean, nullable=True))
    op.create_index("ix_routing_items_deadline_provisional", "routing_items", ["deadline_provisional"])
    op.create_index("ix_routing_items_supplement_due_date_provisional", "routing_items",
                    ["supplement_due_date_provisional"])

    op.execute("UPDATE routing_items SET deadlines_counted_from = clock_started_at")

    connection = op.get_bind()
    waiting = connection.execute(sa.text(
        "SELECT h.item_id, h.at, h.details FROM routing_item_history h "
        "JOIN routing_items i ON i.id = h.item_id "
        "WHERE i.status = 'supplement_requested' AND h.action = 'request-supplement' "
        "ORDER BY h.item_id, h.seq")).all()
    latest = {}
    for item_id, at, details in waiting:
        latest[item_id] = (at, details)  # ordered by seq: the last one wins
    for item_id, (at, details) in latest.items():
        try:
            fields = json.loads(details or "{}")
            due = date.fromisoformat(fields["due_date"])
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        connection.execute(sa.text(
            "UPDATE routing_items SET supplement_requested_on = :on, supplement_due_date = :due, "
            "supplement_due_date_provisional = :provisional WHERE id = :id"),
            {"on": at.astimezone(_SHANGHAI).date(), "due": due,
             "provisional": bool(fields.get("due_date_provisional", False)), "id": item_id})


def downgrade():
    op.drop_index("ix_routing_items_supplement_due_date_provisional", table_name="routing_items")
    op.drop_index("ix_routing_items_deadline_provisional", table_name="routing_items")
    with op.batch_alter_table("routing_items") as batch:
        for column in ("supplement_due_date_provisional", "supplement_due_date", "supplement_due_days",
                       "supplement_requested_on", "promised_days", "legal_days", "deadlines_counted_from"):
            batch.drop_column(column)
