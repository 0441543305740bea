"""The evaluation service's tables.

- ``evaluation_items``: the item facts the three rates need, from routing's events (a read model), one row per
  item with the figures the rates count already decided (responded in time, concluded in time, the effective
  rating's satisfaction value) and the anti-gaming flags; indexed by district and the three period dates, so a
  district-wide month is three range scans.
- ``evaluation_cases``: completions (``case.completed``), which open the rating window.
- ``evaluation_ratings``: every rating ever given, a replaced one kept with ``superseded_by``; one live rating
  per item and channel (a partial unique index).
- ``evaluation_rectifications``, ``evaluation_appeals``, ``evaluation_evaluators``, ``evaluation_findings`` with
  ``evaluation_attachments``, and ``evaluation_supervision_orders`` (督办单).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime


class EvaluationItem(Base):
    __tablename__ = "evaluation_items"

    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    matter_code: Mapped[str] = mapped_column(String(64))
    department_code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(12))
    district_code: Mapped[str] = mapped_column(String(12))
    community_code: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_in_time: Mapped[int] = mapped_column(Integer, default=0)
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time of the item event whose promised deadline this is (routed, released, supplied, deadline-revised):
    # an older event's deadline is not taken after it (services/evaluation/facts.py). Null before evaluation_0004.
    deadline_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concluded_in_time: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    flag_return_reset: Mapped[int] = mapped_column(Integer, default=0)
    flag_late_suspension: Mapped[int] = mapped_column(Integer, default=0)
    flag_reopened: Mapped[int] = mapped_column(Integer, default=0)
    # The effective rating (the latest live, not excluded, over all channels): when, and what it counts.
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Covering: a district's month is read from the indexes alone (bench/rates.py).
        Index("ix_evaluation_items_routed", "district_code", "routed_at", "unit_code", "responded_in_time",
              "flag_return_reset", "flag_late_suspension", "flag_reopened"),
        Index("ix_evaluation_items_due", "district_code", "promised_deadline", "unit_code", "concluded_in_time"),
        Index("ix_evaluation_items_rated", "district_code", "rated_at", "unit_code", "satisfaction"),
    )


class EvaluationCase(Base):
    __tablename__ = "evaluation_cases"

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32), index=True)  # POST /v1/rating-links by case_number
    community_code: Mapped[str] = mapped_column(String(12))
    # {item_id: final status} as case.completed listed them.
    outcomes: Mapped[str] = mapped_column(Text)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Rating(Base):
    __tablename__ = "evaluation_ratings"

    rating_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(36), index=True)
    case_id: Mapped[str] = mapped_column(String(36))
    unit_code: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(24))
    reason_codes: Mapped[str] = mapped_column(Text, default="[]")
    # Personal: stays in this table, never in an event or a log line.
    comment: Mapped[str] = mapped_column(Text, default="")
    # HMAC of the rater's phone where a channel knows it (anti-gaming: many ratings from one phone).
    rater_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_by: Mapped[str | None] = mapped_column(String(36))
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("uq_evaluation_ratings_live", "item_id", "channel", unique=True,
              postgresql_where=superseded_by.is_(None), sqlite_where=superseded_by.is_(None)),
    )


class Rectification(Base):
    __tablename__ = "evaluation_rectifications"

    rectification_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))          # rating | finding
    origin_id: Mapped[str] = mapped_column(String(36), unique=True)
    item_id: Mapped[str | None] = mapped_column(String(36), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36))
    matter_code: Mapped[str | None] = mapped_column(String(64))
    department_code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    district_code: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(16), index=True)   # open | warned | escalated | closed
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    escalate_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # How they were counted (deadline: working days after opened_at; escalate_at: after the deadline), so that a
    # provisional one (a year without its holiday arrangement) is counted again once the arrangement is loaded.
    # Null for rows opened before evaluation_0004 (never flagged provisional).
    deadline_days: Mapped[int | None] = mapped_column(Integer)
    escalate_after_days: Mapped[int | None] = mapped_column(Integer)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    escalate_at_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    supervising_unit_code: Mapped[str | None] = mapped_column(String(12))
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_outcome: Mapped[str | None] = mapped_column(String(32))
    callback_note: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str | None] = mapped_column(String(24))
    result_reason: Mapped[str] = mapped_column(Text, default="")
    result_reason_code: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Appeal(Base):
    __tablename__ = "evaluation_appeals"

    appeal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rating_id: Mapped[str] = mapped_column(String(36), index=True)
    unit_code: Mapped[str] = mapped_column(String(12))
    deciding_unit_code: Mapped[str] = mapped_column(String(12), index=True)
    grounds: Mapped[str] = mapped_column(String(32))
    statement: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))  # pending | upheld | dismissed
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Evaluator(Base):
    __tablename__ = "evaluation_evaluators"

    evaluator_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))   # citizen | deputy | journalist
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    district_code: Mapped[str] = mapped_column(String(12))
    registered_by: Mapped[str] = mapped_column(String(12))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Finding(Base):
    __tablename__ = "evaluation_findings"

    finding_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    evaluator_id: Mapped[str] = mapped_column(String(36), index=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    district_code: Mapped[str] = mapped_column(String(12))
    item_id: Mapped[str | None] = mapped_column(String(36))
    matter_code: Mapped[str | None] = mapped_column(String(64))
    department_code: Mapped[str | None] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))      # visit | tried_matter
    place: Mapped[str] = mapped_column(String(200))
    tried: Mapped[str] = mapped_column(Text)
    went_wrong: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rectification_id: Mapped[str | None] = mapped_column(String(36))


class Attachment(Base):
    __tablename__ = "evaluation_attachments"

    attachment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    finding_id: Mapped[str] = mapped_column(String(36), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SupervisionOrder(Base):
    __tablename__ = "evaluation_supervision_orders"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))   # item | rectification
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    issuer_unit_code: Mapped[str] = mapped_column(String(12), index=True)
    target_unit_code: Mapped[str] = mapped_column(String(12), index=True)
    district_code: Mapped[str] = mapped_column(String(12))
    what: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Working days after issued_at (null before evaluation_0004), and whether due_at is provisional.
    due_days: Mapped[int | None] = mapped_column(Integer)
    due_at_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


EVALUATION_TABLES = [model.__table__ for model in (EvaluationItem, EvaluationCase, Rating, Rectification, Appeal,
                                                    Evaluator, Finding, Attachment, SupervisionOrder)]
