"""The escalation service's tables: items it follows, deadline rows, 吹哨 calls, its action log, and the
办不成事 reports with their history and 容缺 grants.

Revision ID: escalation_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "escalation_0001"
down_revision = None
branch_labels = ("escalation",)
depends_on = "kernel_0001"

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "escalation_items",
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("as_of", UTCDateTime, nullable=False),
        sa.Column("first_level", sa.String(16)),
        sa.Column("routed_at", UTCDateTime),
        sa.Column("placed_at", UTCDateTime),
        sa.Column("clock_cycle", sa.Integer, nullable=False),
        sa.Column("clock_started_at", UTCDateTime),
        sa.Column("promised_deadline", UTCDateTime),
        sa.Column("legal_deadline", UTCDateTime),
        sa.Column("promised_budget_seconds", sa.Float),
        sa.Column("clock_paused_at", UTCDateTime),
        sa.Column("loop_state", sa.String(16)),
        sa.Column("loop_ends_at", UTCDateTime),
        sa.Column("loop_outcome", sa.String(32)),
        sa.Column("loop_ended_at", UTCDateTime),
        sa.Column("ordered_up_from", sa.String(16)),
        sa.Column("warned_at", UTCDateTime),
        sa.Column("promised_breached_at", UTCDateTime),
        sa.Column("legal_breached_at", UTCDateTime),
        sa.Column("closed_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_escalation_items"),
    )
    op.create_index("ix_escalation_items_unit_code", "escalation_items", ["unit_code"])
    op.create_index("ix_escalation_items_routed_at", "escalation_items", ["routed_at"])

    op.create_table(
        "escalation_deadlines",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("call_id", sa.String(36)),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("fired_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_escalation_deadlines"),
        sa.UniqueConstraint("key", name="uq_escalation_deadlines_key"),
    )
    op.create_index("ix_escalation_deadlines_subject_id", "escalation_deadlines", ["subject_id"])
    op.create_index("ix_escalation_deadlines_pending", "escalation_deadlines", ["due_at"],
                    postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))

    op.create_table(
        "escalation_whistle_calls",
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("caller_level", sa.String(16), nullable=False),
        sa.Column("caller_unit_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("called_at", UTCDateTime, nullable=False),
        sa.Column("ack_due_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("escalated_at", UTCDateTime),
        sa.PrimaryKeyConstraint("call_id", name="pk_escalation_whistle_calls"),
        sa.UniqueConstraint("item_id", "caller_level", "department_code",
                            name="uq_escalation_whistle_calls_item_level_department"),
    )
    op.create_index("ix_escalation_whistle_calls_item_id", "escalation_whistle_calls", ["item_id"])
    op.create_index("ix_escalation_whistle_calls_unit_code", "escalation_whistle_calls", ["unit_code"])

    op.create_table(
        "escalation_actions",
        sa.Column("seq", _SEQUENCE, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("item_id", sa.String(36)),
        sa.Column("report_id", sa.String(36)),
        sa.Column("matter_code", sa.String(64)),
        sa.Column("department_code", sa.String(32)),
        sa.Column("level", sa.String(16)),
        sa.Column("unit_code", sa.String(12)),
        sa.Column("community_code", sa.String(12)),
        sa.Column("district_code", sa.String(12)),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_escalation_actions"),
    )
    op.create_index("ix_escalation_actions_kind", "escalation_actions", ["kind"])
    op.create_index("ix_escalation_actions_at", "escalation_actions", ["at"])
    op.create_index("ix_escalation_actions_item_id", "escalation_actions", ["item_id"])

    op.create_table(
        "escalation_failure_reports",
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("report_number", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("community_code", sa.String(12)),
        sa.Column("case_id", sa.String(36)),
        sa.Column("item_id", sa.String(36)),
        sa.Column("matter_code", sa.String(64)),
        sa.Column("department_code", sa.String(32)),
        sa.Column("level", sa.String(16)),
        sa.Column("report_class", sa.String(16)),
        sa.Column("cause_code", sa.String(64)),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("specialist", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("time_limit_days", sa.Integer),
        sa.Column("opinion_due_at", UTCDateTime),
        sa.Column("opinion_received_at", UTCDateTime),
        sa.Column("time_limit_at", UTCDateTime),
        sa.Column("overdue_at", UTCDateTime),
        sa.Column("outcome", sa.String(32)),
        sa.Column("closed_at", UTCDateTime),
        sa.Column("confirmed_at", UTCDateTime),
        sa.Column("reopen_count", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_escalation_failure_reports"),
        sa.UniqueConstraint("report_number", name="uq_escalation_failure_reports_report_number"),
    )
    op.create_index("ix_escalation_failure_reports_unit_code", "escalation_failure_reports", ["unit_code"])
    op.create_index("ix_escalation_failure_reports_filed_at", "escalation_failure_reports", ["filed_at"])

    op.create_table(
        "escalation_report_entries",
        sa.Column("seq", _SEQUENCE, autoincrement=True, nullable=False),
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("department_code", sa.String(32)),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_escalation_report_entries"),
    )
    op.create_index("ix_escalation_report_entries_report_id", "escalation_report_entries", ["report_id"])

    op.create_table(
        "escalation_deferral_grants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("material_codes", sa.String(500), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("granted_at", UTCDateTime, nullable=False),
        sa.Column("settled_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_escalation_deferral_grants"),
    )
    op.create_index("ix_escalation_deferral_grants_report_id", "escalation_deferral_grants", ["report_id"])
    op.create_index("ix_escalation_deferral_grants_item_id", "escalation_deferral_grants", ["item_id"])


def downgrade():
    for table in ("escalation_deferral_grants", "escalation_report_entries", "escalation_failure_reports",
                  "escalation_actions", "escalation_whistle_calls", "escalation_deadlines", "escalation_items"):
        op.drop_table(table)
