"""The escalation service's tables.

- ``escalation_items``: what the service knows of each item, from routing's events (a read model), plus the
  internal-loop state and the 督办 marks it adds.
- ``escalation_deadlines``: every timer, as a row. Replicas find due rows with a periodic sweep and fire
  each one under row locks, so a deadline fires once however many replicas run, and one that passed while
  the service was down fires at the first sweep after the start.
- ``escalation_whistle_calls``: 吹哨 calls and their acknowledgements.
- ``escalation_actions``: append-only log of what the service did and saw (the analysis counts from it).
- ``escalation_failure_reports`` with their history entries and 容缺 grants: the 办不成事 window.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")


class EscalationItem(Base):
    __tablename__ = "escalation_items"

    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36))
    case_number: Mapped[str] = mapped_column(String(32))
    matter_code: Mapped[str] = mapped_column(String(64))
    department_code: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(String(12))
    district_code: Mapped[str] = mapped_column(String(12))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[str] = mapped_column(String(32))
    # The time of the item state held here: an older event never overwrites it.
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    first_level: Mapped[str | None] = mapped_column(String(16))
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The clock: started at routing (or release), deadlines as routing set them, paused while waiting for
    # material where the matter says so. A release starts a new cycle: its 督办 stages fire afresh.
    clock_cycle: Mapped[int] = mapped_column(Integer, default=0)
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    legal_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_budget_seconds: Mapped[float | None] = mapped_column(Float)
    clock_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The internal loop: community -> street -> done; how the community's own loop ended.
    loop_state: Mapped[str | None] = mapped_column(String(16))
    loop_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    loop_outcome: Mapped[str | None] = mapped_column(String(32))
    loop_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The level an escalation order was last made from, so one level is ordered up once.
    ordered_up_from: Mapped[str | None] = mapped_column(String(16))
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    legal_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Deadline(Base):
    __tablename__ = "escalation_deadlines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # What the deadline is for, unique: "<kind>:<subject>[:<cycle>]"; arming twice finds the same row.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    # The row locked before the deadline itself, in the same order as every other writer: item, report, grant.
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    call_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))  # pending | fired | cancelled | parked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failed attempts to fire it: the sweep leaves it alone until next_attempt_at, and parks it after too many.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        # The sweep's only query: pending rows, earliest first.
        Index("ix_escalation_deadlines_pending", "due_at",
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    )


class WhistleCall(Base):
    __tablename__ = "escalation_whistle_calls"

    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(36), index=True)
    department_code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    caller_level: Mapped[str] = mapped_column(String(16))
    caller_unit_code: Mapped[str] = mapped_column(String(12))
    district_code: Mapped[str] = mapped_column(String(12))
    called_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ack_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))  # called | acknowledged | escalated | cancelled
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # One call per department each time the item reaches a level.
    __table_args__ = (UniqueConstraint("item_id", "caller_level", "department_code",
                                       name="uq_escalation_whistle_calls_item_level_department"),)


class EscalationAction(Base):
    """Append-only: what the escalation service did or observed, for the item history and the analysis."""

    __tablename__ = "escalation_actions"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    item_id: Mapped[str | None] = mapped_column(String(36), index=True)
    report_id: Mapped[str | None] = mapped_column(String(36))
    matter_code: Mapped[str | None] = mapped_column(String(64))
    department_code: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str | None] = mapped_column(String(16))
    unit_code: Mapped[str | None] = mapped_column(String(12))
    community_code: Mapped[str | None] = mapped_column(String(12))
    district_code: Mapped[str | None] = mapped_column(String(12))
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class FailureReport(Base):
    """A 办不成事 report. No personal data: the reporter's name, phone and own words stay in intake (kiosk
    reports) or with the staff member who filed it; ``note`` is refused when it looks like an ID or phone."""

    __tablename__ = "escalation_failure_reports"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_number: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    district_code: Mapped[str] = mapped_column(String(12))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    community_code: Mapped[str | None] = mapped_column(String(12))
    case_id: Mapped[str | None] = mapped_column(String(36))
    item_id: Mapped[str | None] = mapped_column(String(36))
    matter_code: Mapped[str | None] = mapped_column(String(64))
    department_code: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str | None] = mapped_column(String(16))
    report_class: Mapped[str | None] = mapped_column(String(16))
    cause_code: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(128))
    specialist: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    time_limit_days: Mapped[int | None] = mapped_column(Integer)
    opinion_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opinion_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_limit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportEntry(Base):
    """Append-only history of a report: filing, class, assignment, each contact, the outcome, return visits."""

    __tablename__ = "escalation_report_entries"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    department_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class DeferralGrant(Base):
    """容缺 granted by a specialist as a coordination outcome: the materials still owed and their follow-up."""

    __tablename__ = "escalation_deferral_grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36), index=True)
    item_id: Mapped[str] = mapped_column(String(36), index=True)
    case_id: Mapped[str] = mapped_column(String(36))
    case_number: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(String(12))
    matter_code: Mapped[str] = mapped_column(String(64))
    department_code: Mapped[str] = mapped_column(String(32))
    material_codes: Mapped[str] = mapped_column(String(500))  # space-separated, the ones still owed
    due_date: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))  # pending | supplied | overdue
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
