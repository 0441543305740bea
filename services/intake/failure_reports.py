"""办不成事 at the kiosk: a resident reports a request that could not get done, about a case of hers or on its own.

The reporter's name, phone and own words stay here, in intake, like every applicant's; the report.filed event
carries ids and codes only, and the escalation service works the report from there (class, cause, specialist,
return visit). A kiosk files for its own community; window staff for a community in their jurisdiction.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.intake.adapters.orm import CaseItemRecord, CaseRecord
from services.intake.domain import SubmissionRefused
from services.intake.handlers import IntakeRules, NotFound, check_may_act_for
from shared.auth import Principal
from shared.catalogue import Level
from shared.clock import Clock, new_id
from shared.crypto import Keyring, SealedRecord
from shared.db import Base, UTCDateTime
from shared.events import ReportFiledV1
from shared.identity import mask_name
from shared.logging import remember_personal_values
from shared.outbox import UnitOfWork
from shared.workdays import SHANGHAI

log = structlog.get_logger(__name__)


class FailureReportRecord(Base):
    """Who reported and what they said: personal data, kept here only, encrypted like the applicant
    (``*_sealed`` under the row's data key, wrapped by the key-encryption key ``key_id``)."""

    __tablename__ = "intake_failure_reports"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_number: Mapped[str] = mapped_column(String(32), unique=True)
    community_code: Mapped[str] = mapped_column(String(12), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36))
    item_id: Mapped[str | None] = mapped_column(String(36))
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[str] = mapped_column(Text)
    reporter_name_sealed: Mapped[str] = mapped_column(Text)
    reporter_phone_sealed: Mapped[str] = mapped_column(Text)
    description_sealed: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(128))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Reporter(_Strict):
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(pattern=r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", description="for the return visit (回访)")


class FailureReportSubmission(_Strict):
    community_code: str = Field(pattern=r"^\d{12}$")
    case_id: str | None = Field(default=None, max_length=64, description="the case (id or number), if any")
    item_id: str | None = Field(default=None, max_length=64, description="the item of that case, if one")
    reporter: Reporter
    description: str = Field(min_length=1, max_length=2000, description="what could not get done, in her words")


class FailureReportReceipt(BaseModel):
    report_id: str
    report_number: str
    community_code: str
    case_id: str | None
    item_id: str | None
    matter_code: str | None
    reporter_name: str = Field(description="masked")
    filed_at: datetime
    next_step: str


def report_number(filed_at: datetime, report_id: str) -> str:
    """BCS, the Shanghai date and the start of the id: the same shape as the escalation service's numbers."""
    return f"BCS{filed_at.astimezone(SHANGHAI):%Y%m%d}-{report_id.replace('-', '')[:8].upper()}"


REPORT_FIELDS = ("reporter_name", "reporter_phone", "description")


def _context(report_id: str) -> str:
    return f"intake_failure_reports:{report_id}"


def open_report(keyring: Keyring, record: FailureReportRecord) -> dict[str, str]:
    """The reporter's name and phone and her own words, decrypted (for the 回访 return visit)."""
    sealed = SealedRecord(key_id=record.key_id, wrapped_key=record.wrapped_key,
                          fields={name: getattr(record, f"{name}_sealed") for name in REPORT_FIELDS})
    return keyring.open(sealed, context=_context(record.report_id))


def seal_report(keyring: Keyring, record: FailureReportRecord, fields: dict[str, str]) -> None:
    sealed = keyring.seal(fields, context=_context(record.report_id))
    record.key_id, record.wrapped_key = sealed.key_id, sealed.wrapped_key
    for name, value in sealed.fields.items():
        setattr(record, f"{name}_sealed", value)


def reseal_report(keyring: Keyring, record: FailureReportRecord) -> bool:
    """Re-encrypt under a fresh data key wrapped by the current key; False if it already was."""
    if record.key_id == keyring.current_key_id:
        return False
    seal_report(keyring, record, open_report(keyring, record))
    return True


def file_report(submission: FailureReportSubmission, *, principal: Principal, unit_of_work: UnitOfWork,
                rules: IntakeRules, clock: Clock) -> FailureReportReceipt:
    remember_personal_values(submission.reporter.name, submission.reporter.phone)
    catalogue = rules.catalogue
    unit = catalogue.units.get(submission.community_code)
    if unit is None or unit.level is not Level.COMMUNITY:
        raise SubmissionRefused("unknown_community", "not a community of the catalogue",
                                community_code=submission.community_code)
    check_may_act_for(principal, submission.community_code, catalogue)
    now = clock.now()
    with unit_of_work as uow:
        case = item = None
        if submission.case_id:
            case = uow.session.get(CaseRecord, submission.case_id) or uow.session.query(CaseRecord).filter(
                CaseRecord.case_number == submission.case_id).one_or_none()
            if case is None:
                raise NotFound("case_not_found", "no case with that id or number")
            if case.community_code != submission.community_code:
                raise SubmissionRefused("case_of_another_community", "the case was taken in at another community",
                                        status=422)
        if submission.item_id:
            item = uow.session.query(CaseItemRecord).filter(CaseItemRecord.item_id == submission.item_id).one_or_none()
            if item is None or (case is not None and item.case_id != case.id):
                raise SubmissionRefused("unknown_item", "no such item in the case", status=422)
            case = case or uow.session.get(CaseRecord, item.case_id)
            if case.community_code != submission.community_code:
                raise SubmissionRefused("case_of_another_community", "the case was taken in at another community",
                                        status=422)
        elif case is not None and len(case.items) == 1:
            item = case.items[0]  # a single-matter case: the report is about its one item
        report_id = new_id()
        record = FailureReportRecord(
            report_id=report_id, report_number=report_number(now, report_id),
            community_code=submission.community_code, case_id=case.id if case else None,
            item_id=item.item_id if item else None, filed_by=principal.name, filed_at=now)
        seal_report(rules.keyring, record, {"reporter_name": submission.reporter.name,
                                            "reporter_phone": submission.reporter.phone,
                                            "description": submission.description})
        uow.session.add(record)
        item_level = item.level if item is not None and item.level else None
        uow.publish(ReportFiledV1(
            report_id=report_id, report_number=record.report_number, district_code=submission.community_code[:6]
            + "000000", unit_code=submission.community_code if principal.kind == "kiosk" else principal.unit_code,
            occurred_at=now, channel="kiosk" if principal.kind == "kiosk" else "staff",
            community_code=submission.community_code, case_id=record.case_id, item_id=record.item_id,
            matter_code=item.matter_code if item else None, department_code=item.department_code if item else None,
            level=item_level, owner=principal.name))
        uow.commit()
        log.info("failure report filed", report_id=report_id, case_id=record.case_id)
        return FailureReportReceipt(
            report_id=report_id, report_number=record.report_number, community_code=record.community_code,
            case_id=record.case_id, item_id=record.item_id, matter_code=item.matter_code if item else None,
            reporter_name=mask_name(submission.reporter.name), filed_at=now,
            next_step="首问负责：社区为民服务中心将与您联系，必要时由“先解决问题再说”专员协调相关部门，办结后回访。")
