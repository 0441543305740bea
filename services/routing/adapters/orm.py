"""Routing's table: one row per item, the source of truth for where each item went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime


class RoutedItem(Base):
    __tablename__ = "routing_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    case_number: Mapped[str] = mapped_column(String(32))
    matter_code: Mapped[str] = mapped_column(String(64))
    community_code: Mapped[str] = mapped_column(String(12))
    department_code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[str] = mapped_column(String(32))
    waiting_for: Mapped[str] = mapped_column(String(500))  # space-separated matter codes
    legal_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    promised_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean)
    catalogue_version: Mapped[str] = mapped_column(String(64))
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # A case has one item per matter: a redelivered submission can never create a second one.
    __table_args__ = (UniqueConstraint("case_id", "matter_code", name="uq_routing_items_case_matter"),)
