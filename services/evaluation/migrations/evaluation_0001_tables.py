"""The evaluation service's tables: the rates read model, completions, ratings, rectifications, appeals,
体验官 and their findings with attachments, and 督办单.

Revision ID: evaluation_0001

Written out as explicit operations, equal to the ORM definitions (``adapters/orm.py``) as they were at this
revision; a later change to those tables is a new revision. tests/integration/test_migrations.py migrates a fresh
SQLite and PostgreSQL database and compares the result with the models.
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "evaluation_0001"
down_revision = None
branch_labels = ("evaluation",)
depends_on = "kernel_0001"


def upgrade():
    op.create_table(
        "evaluation_items",
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("as_of", UTCDateTime, nullable=False),
        sa.Column("routed_at", UTCDateTime, nullable=True),
        sa.Column("respond_by", UTCDateTime, nullable=True),
        sa.Column("responded_at", UTCDateTime, nullable=True),
        sa.Column("responded_in_time", sa.Integer, nullable=False),
        sa.Column("clock_started_at", UTCDateTime, nullable=True),
        sa.Column("promised_deadline", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("concluded_in_time", sa.Integer, nullable=False),
        sa.Column("return_count", sa.Integer, nullable=False),
        sa.Column("flag_return_reset", sa.Integer, nullable=False),
        sa.Column("flag_late_suspension", sa.Integer, nullable=False),
        sa.Column("flag_reopened", sa.Integer, nullable=False),
        sa.Column("rated_at", UTCDateTime, nullable=True),
        sa.Column("satisfaction", sa.Float, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_evaluation_items"),
    )
    op.create_index("ix_evaluation_items_case_id", "evaluation_items", ["case_id"])
    # Covering: a district's month is read from the indexes alone (bench/rates.py).
    op.create_index("ix_evaluation_items_due", "evaluation_items",
                    ["district_code", "promised_deadline", "unit_code", "concluded_in_time"])
    op.create_index("ix_evaluation_items_rated", "evaluation_items",
                    ["district_code", "rated_at", "unit_code", "satisfaction"])
    op.create_index("ix_evaluation_items_routed", "evaluation_items",
                    ["district_code", "routed_at", "unit_code", "responded_in_time", "flag_return_reset",
                     "flag_late_suspension", "flag_reopened"])
    op.create_table(
        "evaluation_cases",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("outcomes", sa.Text, nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_evaluation_cases"),
    )
    op.create_table(
        "evaluation_ratings",
        sa.Column("rating_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("level", sa.String(24), nullable=False),
        sa.Column("reason_codes", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("rater_fingerprint", sa.String(64), nullable=True),
        sa.Column("submitted_at", UTCDateTime, nullable=False),
        sa.Column("superseded_by", sa.String(36), nullable=True),
        sa.Column("excluded", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("rating_id", name="pk_evaluation_ratings"),
    )
    op.create_index("ix_evaluation_ratings_item_id", "evaluation_ratings", ["item_id"])
    op.create_index("ix_evaluation_ratings_rater_fingerprint", "evaluation_ratings", ["rater_fingerprint"])
    op.create_index("uq_evaluation_ratings_live", "evaluation_ratings", ["item_id", "channel"], unique=True,
                    postgresql_where=sa.text("superseded_by IS NULL"), sqlite_where=sa.text("superseded_by IS NULL"))
    op.create_table(
        "evaluation_rectifications",
        sa.Column("rectification_id", sa.String(36), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("origin_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=True),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("matter_code", sa.String(64), nullable=True),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("deadline", UTCDateTime, nullable=False),
        sa.Column("escalate_at", UTCDateTime, nullable=False),
        sa.Column("warned_at", UTCDateTime, nullable=True),
        sa.Column("escalated_at", UTCDateTime, nullable=True),
        sa.Column("supervising_unit_code", sa.String(12), nullable=True),
        sa.Column("callback_at", UTCDateTime, nullable=True),
        sa.Column("callback_outcome", sa.String(32), nullable=True),
        sa.Column("callback_note", sa.Text, nullable=False),
        sa.Column("result", sa.String(24), nullable=True),
        sa.Column("result_reason", sa.Text, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("rectification_id", name="pk_evaluation_rectifications"),
        sa.UniqueConstraint("origin_id", name="uq_evaluation_rectifications_origin_id"),
    )
    op.create_index("ix_evaluation_rectifications_item_id", "evaluation_rectifications", ["item_id"])
    op.create_index("ix_evaluation_rectifications_state", "evaluation_rectifications", ["state"])
    op.create_index("ix_evaluation_rectifications_unit_code", "evaluation_rectifications", ["unit_code"])
    op.create_table(
        "evaluation_appeals",
        sa.Column("appeal_id", sa.String(36), nullable=False),
        sa.Column("rating_id", sa.String(36), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("deciding_unit_code", sa.String(12), nullable=False),
        sa.Column("grounds", sa.String(32), nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decision_reason", sa.Text, nullable=False),
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("appeal_id", name="pk_evaluation_appeals"),
    )
    op.create_index("ix_evaluation_appeals_deciding_unit_code", "evaluation_appeals", ["deciding_unit_code"])
    op.create_index("ix_evaluation_appeals_rating_id", "evaluation_appeals", ["rating_id"])
    op.create_table(
        "evaluation_evaluators",
        sa.Column("evaluator_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("registered_by", sa.String(12), nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("evaluator_id", name="pk_evaluation_evaluators"),
        sa.UniqueConstraint("token_digest", name="uq_evaluation_evaluators_token_digest"),
    )
    op.create_table(
        "evaluation_findings",
        sa.Column("finding_id", sa.String(36), nullable=False),
        sa.Column("evaluator_id", sa.String(36), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=True),
        sa.Column("matter_code", sa.String(64), nullable=True),
        sa.Column("department_code", sa.String(32), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("tried", sa.Text, nullable=False),
        sa.Column("went_wrong", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.Column("rectification_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("finding_id", name="pk_evaluation_findings"),
    )
    op.create_index("ix_evaluation_findings_evaluator_id", "evaluation_findings", ["evaluator_id"])
    op.create_index("ix_evaluation_findings_unit_code", "evaluation_findings", ["unit_code"])
    op.create_table(
        "evaluation_attachments",
        sa.Column("attachment_id", sa.String(36), nullable=False),
        sa.Column("finding_id", sa.String(36), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("attachment_id", name="pk_evaluation_attachments"),
    )
    op.create_index("ix_evaluation_attachments_finding_id", "evaluation_attachments", ["finding_id"])
    op.create_table(
        "evaluation_supervision_orders",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("issuer_unit_code", sa.String(12), nullable=False),
        sa.Column("target_unit_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("what", sa.Text, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("answered_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("order_id", name="pk_evaluation_supervision_orders"),
    )
    op.create_index("ix_evaluation_supervision_orders_issuer_unit_code", "evaluation_supervision_orders",
                    ["issuer_unit_code"])
    op.create_index("ix_evaluation_supervision_orders_subject_id", "evaluation_supervision_orders", ["subject_id"])
    op.create_index("ix_evaluation_supervision_orders_target_unit_code", "evaluation_supervision_orders",
                    ["target_unit_code"])


def downgrade():
    op.drop_table("evaluation_supervision_orders")
    op.drop_table("evaluation_attachments")
    op.drop_table("evaluation_findings")
    op.drop_table("evaluation_evaluators")
    op.drop_table("evaluation_appeals")
    op.drop_table("evaluation_rectifications")
    op.drop_table("evaluation_ratings")
    op.drop_table("evaluation_cases")
    op.drop_table("evaluation_items")
