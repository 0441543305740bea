"""Intake's tables. Personal data (name, ID number, phone, e-mail) lives here and nowhere else, encrypted
(``services/intake/adapters/personal_data.py``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, UTCDateTime


class CaseRecord(Base):
    __tablename__ = "intake_cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    community_code: Mapped[str] = mapped_column(String(12), index=True)
    bundle_code: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    catalogue_version: Mapped[str] = mapped_column(String(64))
    submitted_by: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_json: Mapped[str | None] = mapped_column(Text)
    # The service point it was taken in at (15分钟政务服务圈), if any.
    service_point_id: Mapped[str | None] = mapped_column(String(64))
    # 通办: the unit whose window took it in for community_code's line, and the community it was taken in at.
    accepting_unit_code: Mapped[str | None] = mapped_column(String(12), index=True)
    taken_in_community_code: Mapped[str | None] = mapped_column(String(12))

    applicant: Mapped[ApplicantRecord] = relationship(back_populates="case", cascade="all, delete-orphan")
    items: Mapped[list[CaseItemRecord]] = relationship(back_populates="case", cascade="all, delete-orphan",
                                                       order_by="CaseItemRecord.position")
    deferred: Mapped[list[DeferredMaterialRecord]] = relationship(cascade="all, delete-orphan",
                                                                  order_by="DeferredMaterialRecord.material_code")


class ApplicantRecord(Base):
    """The applicant, encrypted: each ``*_sealed`` column is AES-GCM under the row's own data key, which
    is stored wrapped by the key-encryption key ``key_id`` (shared/crypto.py). Nothing here is in clear."""

    __tablename__ = "intake_applicants"

    case_id: Mapped[str] = mapped_column(ForeignKey("intake_cases.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[str] = mapped_column(Text)
    name_sealed: Mapped[str] = mapped_column(Text)
    id_number_sealed: Mapped[str] = mapped_column(Text)
    phone_sealed: Mapped[str] = mapped_column(Text)
    email_sealed: Mapped[str | None] = mapped_column(Text)
    # Keyed blind index (HMAC-SHA256), for look-ups (credit flags, repeat visits) without the number in clear.
    id_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    # An enterprise applicant: the organisation (public data, in clear), and in the sealed columns above
    # the person acting for it (its legal representative or an authorised agent).
    kind: Mapped[str] = mapped_column(String(16), default="person", server_default="person")
    organisation_name: Mapped[str | None] = mapped_column(String(100))
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)  # public, printed on the licence
    representative_role: Mapped[str | None] = mapped_column(String(32))

    case: Mapped[CaseRecord] = relationship(back_populates="applicant")


class CaseItemRecord(Base):
    """One matter of a case, and where routing sent it (a read model fed by routing's events)."""

    __tablename__ = "intake_case_items"

    case_id: Mapped[str] = mapped_column(ForeignKey("intake_cases.id"), primary_key=True)
    matter_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    level: Mapped[str | None] = mapped_column(String(16))
    unit_code: Mapped[str | None] = mapped_column(String(12))
    department_code: Mapped[str | None] = mapped_column(String(32))
    legal_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_provisional: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[CaseRecord] = relationship(back_populates="items")


class DeferredMaterialRecord(Base):
    __tablename__ = "intake_deferred_materials"

    case_id: Mapped[str] = mapped_column(ForeignKey("intake_cases.id"), primary_key=True)
    material_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    material_name: Mapped[str] = mapped_column(String(100))
    matter_codes: Mapped[str] = mapped_column(String(500))  # space-separated matter codes
    due_date: Mapped[date] = mapped_column(Date)
    due_date_provisional: Mapped[bool] = mapped_column(Boolean, index=True)
    consequence: Mapped[str] = mapped_column(String(200))
    # Working days after the day of submission (Shanghai) the due date was counted, so that a provisional one
    # is counted again once its year's arrangement is loaded (services/intake/revisions.py); NULL before
    # intake_0010 until revised.
    due_working_days: Mapped[int | None] = mapped_column(Integer)


class IdempotencyKeyRecord(Base):
    """A retried submission with the same key returns the first case instead of making a second."""

    __tablename__ = "intake_idempotency_keys"

    community_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(ForeignKey("intake_cases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MaterialLedgerRecord(Base):
    """Materials staff asked for or recorded on an item, as routing's events report them: with the case's 容缺
    materials, what the resident lookup shows as still missing."""

    __tablename__ = "intake_material_ledger"

    case_id: Mapped[str] = mapped_column(ForeignKey("intake_cases.id"), primary_key=True)
    matter_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    material_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # requested | supplied
    due_date: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LookupGuardRecord(Base):
    """Misses of the resident lookup, per case number and per client, and the lockout they lead to. Kept in
    the database so that every console replica sees the same count."""

    __tablename__ = "intake_lookup_guards"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # case | client
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    misses: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
