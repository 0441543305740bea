"""Intake rules: what a submission must contain to be taken in, and the 容缺 (deferred material) notice.

Pure: no framework, database or clock. The handler passes in the catalogue, the working-day
calendar and "today".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from shared.catalogue import Bundle, Catalogue, Matter, UnknownCode
from shared.refusal import Refusal
from shared.workdays import WorkdayCalendar

DEFERRAL_CONSEQUENCE = "逾期未补齐的，相关事项将终止办理，需重新申请。"


class SubmissionRefused(Refusal):
    """The submission cannot be taken in; ``reason`` is machine-readable, the message says why."""


@dataclass(frozen=True)
class DeferredMaterialNotice:
    material_code: str
    material_name: str
    matter_codes: tuple[str, ...]
    due_date: date
    due_date_provisional: bool
    consequence: str = DEFERRAL_CONSEQUENCE
    working_days: int = 0  # the due date is this many working days after the day of submission


@dataclass(frozen=True)
class AcceptedSubmission:
    community_code: str
    bundle: Bundle | None
    matters: tuple[Matter, ...]
    deferred: tuple[DeferredMaterialNotice, ...]


def assess_submission(
    catalogue: Catalogue,
    calendar: WorkdayCalendar,
    *,
    community_code: str,
    bundle_code: str | None,
    matter_codes: Iterable[str],
    provided: Iterable[str],
    deferred: Iterable[str],
    channel: str,
    today: date,
    deferral_working_days: int,
    bad_credit: bool = False,
    applicant_kind: str = "person",
) -> AcceptedSubmission:
    """Check a submission against the catalogue; return what is taken in, or raise SubmissionRefused."""
    try:
        catalogue.community(community_code)
    except UnknownCode as exc:
        raise SubmissionRefused("unknown_community", str(exc), community_code=community_code) from None
    try:
        bundle = catalogue.bundle(bundle_code) if bundle_code else None
    except UnknownCode as exc:
        raise SubmissionRefused("unknown_bundle", str(exc), bundle=bundle_code) from None
    try:
        matters = catalogue.expand(matter_codes=tuple(matter_codes), bundle_code=bundle_code)
    except UnknownCode as exc:
        raise SubmissionRefused("unknown_matter", str(exc), matter=exc.code) from None

    # A resident cannot apply for an enterprise matter, nor an enterprise for a resident's.
    wrong_kind = [matter.code for matter in matters if matter.applicant_kind != applicant_kind]
    if wrong_kind:
        if applicant_kind == "person":
            message = ("企业事项须以企业为申请人：请提供企业名称、统一社会信用代码和法定代表人或委托代理人 "
                       "(these are enterprise matters: the applicant is the enterprise, kind 'enterprise')")
        else:
            message = ("个人事项须由本人（或其代办人）申请，不能以企业为申请人 "
                       "(these are matters for a resident: the applicant is a person, kind 'person')")
        raise SubmissionRefused("applicant_kind_mismatch", message, applicant_kind=applicant_kind,
                                matters=wrong_kind)

    if channel == "proxy":
        refused = [matter.code for matter in matters if not matter.proxy_allowed]
        if refused:
            raise SubmissionRefused("proxy_not_allowed", "these matters cannot be handled by a proxy agent",
                                    matters=refused)

    provided_codes, deferred_codes = set(provided), set(deferred)
    if deferred_codes and bad_credit:
        raise SubmissionRefused("deferral_refused_bad_credit",
                                "容缺受理不适用于信用记录不良的申请人：请备齐全部材料后再提交 "
                                "(accepting with missing material is not open to applicants flagged for bad credit)")
    both = sorted(provided_codes & deferred_codes)
    if both:
        raise SubmissionRefused("material_both_provided_and_deferred",
                                "a material is listed as both provided and deferred", materials=both)
    required = {material.code for matter in matters for material in matter.materials}
    unknown = sorted((provided_codes | deferred_codes) - required)
    if unknown:
        raise SubmissionRefused("unknown_material", "these materials are not asked for by the matters submitted",
                                materials=unknown)

    for matter in matters:
        for material in matter.materials:
            if material.code in provided_codes:
                continue
            if material.code in deferred_codes and not material.deferrable:
                raise SubmissionRefused(
                    "material_not_deferrable",
                    f"{material.name} is a main material of {matter.name} and cannot be supplied later",
                    matter=matter.code, material=material.code)
            if material.code not in deferred_codes:
                raise SubmissionRefused(
                    "missing_material", f"{material.name} is required for {matter.name}",
                    matter=matter.code, material=material.code)

    notices = tuple(
        _deferral_notice(material_code, matters, calendar, today, deferral_working_days)
        for material_code in sorted(deferred_codes)
    )
    return AcceptedSubmission(community_code=community_code, bundle=bundle, matters=matters, deferred=notices)


def _deferral_notice(material_code: str, matters: tuple[Matter, ...], calendar: WorkdayCalendar, today: date,
                     deferral_working_days: int) -> DeferredMaterialNotice:
    """The due date is the configured deferral period, but never past any concerned matter's promised limit."""
    concerned = [matter for matter in matters if any(m.code == material_code for m in matter.materials)]
    working_days = min([deferral_working_days] + [matter.promised_days for matter in concerned])
    due = calendar.add_workdays(today, working_days)
    name = next(m.name for m in concerned[0].materials if m.code == material_code)
    return DeferredMaterialNotice(
        material_code=material_code,
        material_name=name,
        matter_codes=tuple(matter.code for matter in concerned),
        due_date=due.date,
        due_date_provisional=due.provisional,
        working_days=working_days,
    )


def deferral_working_days_for(catalogue: Catalogue, matter_codes: Iterable[str], deferral_working_days: int) -> int:
    """The working days a 容缺 material is given (as ``_deferral_notice`` counts them), for rows stored before the
    count was: the deferral period, never past a concerned matter's promised limit."""
    promised = [catalogue.matters[code].promised_days for code in matter_codes if code in catalogue.matters]
    return min([deferral_working_days] + promised)


def case_number(submitted_on: date, case_id: str) -> str:
    """A number a resident can read out at a window: the date plus 12 hex digits of the random case id
    (48 bits: a collision within one day is negligible even at a city's volume)."""
    return f"SJ{submitted_on:%Y%m%d}-{case_id.replace('-', '')[:12].upper()}"
