"""Intake tables: cases, applicants (personal data), items read model, deferred materials, idempotency keys.

Revision ID: intake_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = "kernel_0001"


def upgrade():
    op.create_table(
        "intake_cases",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("bundle_code", sa.String(64)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("catalogue_version", sa.String(64), nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("submitted_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intake_cases"),
        sa.UniqueConstraint("case_number", name="uq_intake_cases_case_number"),
    )
    op.create_index("ix_intake_cases_community_code", "intake_cases", ["community_code"])
    op.create_table(
        "intake_applicants",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("id_fingerprint", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_intake_applicants"),
        sa.ForeignKeyConstraint(["case_id"], ["intake_cases.id"], name="fk_intake_applicants_case_id_intake_cases"),
    )
    op.create_index("ix_intake_applicants_id_fingerprint", "intake_applicants", ["id_fingerprint"])
    op.create_table(
        "intake_case_items",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("item_id", sa.String(36)),
        sa.Column("level", sa.String(16)),
        sa.Column("unit_code", sa.String(12)),
        sa.Column("department_code", sa.String(32)),
        sa.Column("legal_deadline", UTCDateTime),
        sa.Column("promised_deadline", UTCDateTime),
        sa.Column("deadline_provisional", sa.Boolean),
        sa.Column("updated_at", UTCDateTime),
        sa.PrimaryKeyConstraint("case_id", "matter_code", name="pk_intake_case_items"),
        sa.UniqueConstraint("item_id", name="uq_intake_case_items_item_id"),
        sa.ForeignKeyConstraint(["case_id"], ["intake_cases.id"], name="fk_intake_case_items_case_id_intake_cases"),
    )
    op.create_table(
        "intake_deferred_materials",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("material_code", sa.String(64), nullable=False),
        sa.Column("material_name", sa.String(100), nullable=False),
        sa.Column("matter_codes", sa.String(500), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("due_date_provisional", sa.Boolean, nullable=False),
        sa.Column("consequence", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "material_code", name="pk_intake_deferred_materials"),
        sa.ForeignKeyConstraint(["case_id"], ["intake_cases.id"],
                                name="fk_intake_deferred_materials_case_id_intake_cases"),
    )
    op.create_table(
        "intake_idempotency_keys",
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("community_code", "key", name="pk_intake_idempotency_keys"),
        sa.ForeignKeyConstraint(["case_id"], ["intake_cases.id"],
                                name="fk_intake_idempotency_keys_case_id_intake_cases"),
    )


def downgrade():
    for table in ("intake_idempotency_keys", "intake_deferred_materials", "intake_case_items",
                  "intake_applicants", "intake_cases"):
        op.drop_table(table)
