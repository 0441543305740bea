"""The console's accounts, sessions and audit trail.

Revision ID: console_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "console_0001"
down_revision = None
branch_labels = ("console",)
depends_on = "kernel_0001"


def upgrade():
    op.create_table(
        "console_accounts",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("oidc_subject", sa.String(255), nullable=True),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("development", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("username", name="pk_console_accounts"),
        sa.UniqueConstraint("oidc_subject", name="uq_console_accounts_oidc_subject"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_console_sessions"),
    )
    op.create_index("ix_console_sessions_username", "console_sessions", ["username"])
    op.create_table(
        "console_audit",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_console_audit"),
    )
    op.create_index("ix_console_audit_at", "console_audit", ["at"])


def downgrade():
    op.drop_table("console_audit")
    op.drop_table("console_sessions")
    op.drop_table("console_accounts")
