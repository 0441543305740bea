"""Routing's tables: items (the source of truth for where each item is and how far it got), their
append-only history, the cases they belong to, and the 容缺 materials still owed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")


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
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, index=True)
    catalogue_version: Mapped[str] = mapped_column(String(64))
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the deadlines started counting: routing, or release from waiting for a prerequisite.
    clock_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the item reached its current unit: the return limit counts from here.
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    returns_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    clock_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(Text)
    delivery_json: Mapped[str | None] = mapped_column(Text)
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # 通办: the unit whose window took the case in for this line; it sees the item and keeps custody records.
    accepting_unit_code: Mapped[str | None] = mapped_column(String(12), index=True)
    # What the deadlines count, so that a provisional one can be counted again once its year's holiday
    # arrangement is loaded (services/routing/revisions.py): working days from deadlines_counted_from (the promised
    # count includes the days a paused clock added). NULL on rows stored before routing_0004 until revised.
    deadlines_counted_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # submission or release
    legal_days: Mapped[int | None] = mapped_column(Integer)
    promised_days: Mapped[int | None] = mapped_column(Integer)
    # The supplement request the item waits on: asked on that (Shanghai) day for that many working days.
    supplement_requested_on: Mapped[date | None] = mapped_column(Date)
    supplement_due_days: Mapped[int | None] = mapped_column(Integer)
    supplement_due_date: Mapped[date | None] = mapped_column(Date)
    supplement_due_date_provisional: Mapped[bool | None] = mapped_column(Boolean, index=True)

    # A case has one item per matter: a redelivered submission can never create a second one.
    __table_args__ = (UniqueConstraint("case_id", "matter_code", name="uq_routing_items_case_matter"),)

    @property
    def waiting_for_codes(self) -> tuple[str, ...]:
        return tuple(self.waiting_for.split())


class RoutedCase(Base):
    """One row per case: locked by every item action, so a bundle completes exactly once."""

    __tablename__ = "routing_cases"

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(String(12))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemHistoryEntry(Base):
    """Append-only: who did what to an item, when and why."""

    __tablename__ = "routing_item_history"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class DeferredMaterial(Base):
    """A 容缺 material an item is still owed, with its due date."""

    __tablename__ = "routing_deferred_materials"

    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    material_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | supplied | expired
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
