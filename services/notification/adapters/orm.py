"""Notification's tables: the delivery log (one row per recipient, channel and cause, with every attempt)
and the staff inbox.

No address is stored: a resident's phone and email are asked from intake when a message is sent and
forgotten afterwards; the log keeps a masked hint (``139****5678``) for audits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


class Delivery(Base):
    __tablename__ = "notification_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(128))          # resident:<case>, unit:<unit>:<dept>, webhook:<name>
    channel: Mapped[str] = mapped_column(String(16))             # sms, email, webhook, inbox
    cause: Mapped[str] = mapped_column(String(255))              # <event source>#<event id>/<message kind>
    kind: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(128))
    case_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)  # None: not about a case
    item_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    community_code: Mapped[str | None] = mapped_column(String(12), nullable=True)  # whose staff may read the log
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    document: Mapped[str | None] = mapped_column(Text, nullable=True)  # a webhook's JSON body, signed when sent
    # An SMS as template-based gateways take it: the provider's template code and its parameters (a JSON object
    # of short strings); ``body`` keeps the free text for gateways that take text.
    template_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    template_params: Mapped[str | None] = mapped_column(Text, nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))              # pending, sent, failed, skipped
    hold_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    address_hint: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # Exactly once per recipient, channel and cause: a redelivered or replayed event inserts nothing.
        UniqueConstraint("recipient", "channel", "cause", name="uq_notification_deliveries_recipient_channel_cause"),
        # The sweep's only query: pending rows of one channel that are due, oldest first.
        Index("ix_notification_deliveries_due", "channel", "next_attempt_at",
              postgresql_where=status == "pending", sqlite_where=status == "pending"),
        # The retention job's query: finished deliveries, oldest first (services/notification/retention.py).
        Index("ix_notification_deliveries_finished", "created_at",
              postgresql_where=status.in_(("sent", "skipped")), sqlite_where=status.in_(("sent", "skipped"))),
    )


class DeliveryAttempt(Base):
    __tablename__ = "notification_attempts"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), ForeignKey("notification_deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))             # sent, transient, permanent, skipped
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)


class InboxMessage(Base):
    __tablename__ = "notification_inbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), ForeignKey("notification_deliveries.id"), unique=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    department_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    case_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    item_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportCase(Base):
    """The case a 办不成事 report concerns, remembered from ``report.filed``: later report events name only the
    report, and the resident is reached through intake by case id. A report about no case has no row."""

    __tablename__ = "notification_report_cases"

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36))
    community_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
