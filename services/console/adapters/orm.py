"""The console's own tables: personal staff accounts, their sessions, and the audit trail.

Passwords are argon2 hashes. A session row is found by the SHA-256 of its cookie value, so the table
itself lets nobody in. The audit trail is append-only: who, when, what, on which item or account.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")


class Account(Base):
    __tablename__ = "console_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # None: OpenID Connect only
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    unit_code: Mapped[str] = mapped_column(String(12))
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    roles: Mapped[str] = mapped_column(String(255))           # space-separated, see accounts.ROLES
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    development: Mapped[bool] = mapped_column(Boolean, default=False)  # made by `make run`; refused in production
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def role_list(self) -> tuple[str, ...]:
        return tuple(self.roles.split())


class LoginSession(Base):
    __tablename__ = "console_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    __tablename__ = "console_audit"
    __table_args__ = (Index("ix_console_audit_at", "at"),)

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    detail: Mapped[str] = mapped_column(Text, default="")
