"""The 办不成事 window: reports taken in (from kiosks through intake, or filed by staff), classified, worked by a
specialist, closed with an outcome, checked by a return visit, reopened when the person disagrees.

Every action locks the report row, checks the caller's jurisdiction, asks the state table, applies the change,
appends a history entry and records the event, in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, time

import structlog
from sqlalchemy import func, select

from services.escalation.access import Forbidden, NotFound, in_scope, prefix_for
from services.escalation.adapters.orm import DeferralGrant, EscalationItem, FailureReport, ReportEntry
from services.escalation.domain import (
    DeadlineKind,
    ReportAction,
    ReportFacts,
    ReportRefused,
    ReportStatus,
    check_may_close,
    class_limits,
    contains_personal_data,
    deferral_reminder_day,
    next_report_status,
    report_number,
)
from services.escalation.records import EscalationRules, arm, cancel, lock, record_action, report_event
from services.escalation.schemas import (
    Assignment,
    Classification,
    Closure,
    ContactRecord,
    DeferralGrantView,
    FailureReportFiling,
    FailureReportView,
    ReportEntryView,
    ReturnVisit,
)
from shared.auth import Principal
from shared.catalogue import Level
from shared.clock import new_id
from shared.events import (
    CloudEvent,
    ReportAssignedV1,
    ReportClassifiedV1,
    ReportClosedV1,
    ReportContactRecordedV1,
    ReportDeferralGrantedV1,
    ReportFiledV1,
    ReportReopenedV1,
    ReportReturnVisitedV1,
)
from shared.outbox import UnitOfWork
from shared.workdays import SHANGHAI

log = structlog.get_logger(__name__)

WORKERS = ("staff", "specialist")           # who works reports
_OPEN = (ReportStatus.OPEN, ReportStatus.ASSIGNED)
_CLASS_DEADLINES = (DeadlineKind.REPORT_OPINION, DeadlineKind.REPORT_TIME_LIMIT)
REPORT_FILED_CONSUMER = "escalation.events"


def _check_note(text: str, field: str = "note") -> None:
    if text and contains_personal_data(text):
        raise ReportRefused("personal_data_in_text", f"{field} looks like it carries an ID-card or phone number; "
                            "personal data stays in intake", status=422, field=field)


def _check_cause(rules: EscalationRules, code: str | None) -> None:
    if code is None:
        return
    cause = rules.causes.get(code)
    if cause is None or cause.retired:
        raise ReportRefused("unknown_cause", "not a cause of the taxonomy", status=422, cause_code=code,
                            allowed=sorted(c.code for c in rules.causes.values() if not c.retired))


def _check_department(rules: EscalationRules, code: str | None) -> None:
    if code is not None and code not in rules.catalogue.departments:
        raise ReportRefused("unknown_department", "not a department of the catalogue", status=422,
                            department_code=code)


def _entry(uow: UnitOfWork, report: FailureReport, *, actor: str, action: str, at: datetime, note: str = "",
           department_code: str | None = None, **details) -> None:
    uow.session.add(ReportEntry(report_id=report.report_id, at=at, actor=actor, action=action,
                                department_code=department_code, note=note,
                                details=json.dumps(details, ensure_ascii=False, default=str)))
    report.updated_at = at


# ── Taking reports in ───────────────────────────────────────────────────────────────────────────────


def take_filed_report(event: CloudEvent, filed: ReportFiledV1, *, unit_of_work: UnitOfWork,
                      rules: EscalationRules) -> str:
    """A report filed at a kiosk (through intake) becomes a report here; our own staff filings come back on the
    bus too and change nothing."""
    with unit_of_work as uow:
        if not uow.claim_message(REPORT_FILED_CONSUMER, event):
            return "duplicate"
        if uow.session.get(FailureReport, filed.report_id) is not None:
            uow.commit()
            return "known"
        report = FailureReport(
            report_id=filed.report_id, report_number=filed.report_number, channel=filed.channel,
            district_code=filed.district_code, unit_code=filed.unit_code, community_code=filed.community_code,
            case_id=filed.case_id, item_id=filed.item_id, matter_code=filed.matter_code,
            department_code=filed.department_code, level=filed.level, report_class=None,
            cause_code=filed.cause_code if filed.cause_code in rules.causes else None, owner=filed.owner,
            status=str(ReportStatus.OPEN), reopen_count=0, note="", filed_at=filed.occurred_at,
            updated_at=filed.occurred_at)
        uow.session.add(report)
        _entry(uow, report, actor=filed.owner, action="file", at=filed.occurred_at, channel=filed.channel)
        record_action(uow, "report_filed", at=filed.occurred_at, report=report)
        uow.commit()
        log.info("failure report taken in", report_id=report.report_id, channel=report.channel)
        return filed.event_type


def file_report(principal: Principal, body: FailureReportFiling, *, unit_of_work: UnitOfWork,
                rules: EscalationRules, now: datetime) -> FailureReportView:
    """Staff (or a specialist) file for a resident: they are the first person asked, so they own it, wherever the
    resident lives (首问负责). A case or item the report names must be within the filer's jurisdiction, though:
    a report about a case reaches its resident (a receipt SMS) and her item's record, so no one files about
    another jurisdiction's cases; from elsewhere, the report names the community and the matter only."""
    prefix = prefix_for(principal, rules.catalogue, kinds=WORKERS, reason="report_forbidden")
    _check_note(body.note)
    _check_cause(rules, body.cause_code)
    _check_department(rules, body.department_code)
    if body.community_code is not None and (body.community_code not in rules.catalogue.units or
                                            rules.catalogue.units[body.community_code].level is not Level.COMMUNITY):
        raise ReportRefused("unknown_community", "not a community of the catalogue", status=422)
    if body.matter_code is not None and body.matter_code not in rules.catalogue.matters:
        raise ReportRefused("unknown_matter", "not a matter of the catalogue", status=422)
    with unit_of_work as uow:
        item = _item_in_scope(uow, body, prefix)
        report_id = new_id()
        report = FailureReport(
            report_id=report_id, report_number=report_number(now, report_id), channel="staff",
            district_code=principal.unit_code[:6] + "000000", unit_code=principal.unit_code,
            community_code=body.community_code or (item.community_code if item else None),
            case_id=body.case_id or (item.case_id if item else None), item_id=body.item_id,
            matter_code=body.matter_code or (item.matter_code if item else None),
            department_code=body.department_code or (item.department_code if item else None),
            level=item.level if item else None, owner=principal.name, status=str(ReportStatus.OPEN),
            reopen_count=0, note=body.note, filed_at=now, updated_at=now)
        uow.session.add(report)
        _entry(uow, report, actor=principal.name, action="file", at=now, note=body.note, channel="staff")
        uow.publish(report_event(ReportFiledV1, report, at=now, channel="staff", community_code=report.community_code,
                                 case_id=report.case_id, item_id=report.item_id, matter_code=report.matter_code,
                                 department_code=report.department_code, level=report.level,
                                 report_class=body.report_class, cause_code=body.cause_code, owner=report.owner))
        record_action(uow, "report_filed", at=now, report=report)
        if body.report_class is not None:
            if body.cause_code is None:
                raise ReportRefused("cause_missing", "a classified report names its cause", status=422)
            _classify(uow, report, principal, Classification(report_class=body.report_class,
                                                             cause_code=body.cause_code,
                                                             time_limit_days=body.time_limit_days),
                      rules=rules, now=now)
        # the answer is read inside the transaction: read after the commit, a database lost just then would turn a
        # filing that was made into a 500, and the caller would file it again
        view = report_view(uow, report, with_history=True)
        uow.commit()
        return view


def _item_in_scope(uow: UnitOfWork, body: FailureReportFiling, prefix: str) -> EscalationItem | None:
    """The item a filing names (or None), after checking that it, its case and its community are known and in the
    caller's jurisdiction: placed at one of the caller's units, or about a resident of one of its communities."""
    if body.item_id is None:
        if body.case_id is not None:
            communities = set(uow.session.scalars(select(EscalationItem.community_code)
                                                  .where(EscalationItem.case_id == body.case_id)))
            if not communities:
                raise ReportRefused("unknown_case", "the escalation service has not seen this case", status=422)
            if not all(in_scope(prefix, community) for community in communities):
                raise Forbidden("report_forbidden", "this case is outside your jurisdiction")
            if body.community_code is not None and communities != {body.community_code}:
                raise ReportRefused("case_mismatch", "the case is of another community", status=422)
        return None
    item = uow.session.get(EscalationItem, body.item_id)
    if item is None:
        raise ReportRefused("unknown_item", "the escalation service has not seen this item", status=422)
    if not in_scope(prefix, item.unit_code, item.community_code):
        raise Forbidden("report_forbidden", "this item is outside your jurisdiction")
    if body.case_id not in (None, item.case_id) or body.community_code not in (None, item.community_code):
        raise ReportRefused("case_mismatch", "the item is of another case or community", status=422)
    return item


# ── Reading ─────────────────────────────────────────────────────────────────────────────────────────


def _find_in_scope(uow: UnitOfWork, report_id: str, principal: Principal, rules: EscalationRules, *,
                   for_update: bool = False) -> FailureReport:
    prefix = prefix_for(principal, rules.catalogue, kinds=WORKERS, reason="report_forbidden")
    report = lock(uow, FailureReport, report_id) if for_update else uow.session.get(FailureReport, report_id)
    if report is None:
        report = uow.session.scalars(select(FailureReport).where(FailureReport.report_number == report_id)).first()
        if report is not None and for_update:
            report = lock(uow, FailureReport, report.report_id)
    if report is None:
        raise NotFound("report_not_found", "no report with that id or number")
    if not in_scope(prefix, report.unit_code, report.community_code):
        raise Forbidden("report_forbidden", "this report is outside your jurisdiction")
    return report


def get_report(report_id: str, principal: Principal, *, unit_of_work: UnitOfWork,
               rules: EscalationRules) -> FailureReportView:
    with unit_of_work as uow:
        return report_view(uow, _find_in_scope(uow, report_id, principal, rules), with_history=True)


def list_reports(principal: Principal, *, unit_of_work: UnitOfWork, rules: EscalationRules,
                 status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[FailureReportView], int]:
    prefix = prefix_for(principal, rules.catalogue, kinds=WORKERS, reason="report_forbidden")
    query = select(FailureReport).where(FailureReport.unit_code.startswith(prefix)
                                        | FailureReport.community_code.startswith(prefix))
    if status:
        query = query.where(FailureReport.status == status)
    if principal.kind == "specialist" and status is None:
        query = query.where(FailureReport.status.in_([str(s) for s in _OPEN]))
    with unit_of_work as uow:
        total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = uow.session.scalars(query.order_by(FailureReport.filed_at, FailureReport.report_id)
                                   .limit(limit).offset(offset)).all()
        return [report_view(uow, report) for report in rows], total


# ── Actions ─────────────────────────────────────────────────────────────────────────────────────────


def act(report_id: str, action: ReportAction, principal: Principal, body, *, unit_of_work: UnitOfWork,
        rules: EscalationRules, now: datetime) -> FailureReportView:
    with unit_of_work as uow:
        report = _find_in_scope(uow, report_id, principal, rules, for_update=True)
        ACTIONS[action](uow, report, principal, body, rules=rules, now=now)
        view = report_view(uow, report, with_history=True)   # read before the commit, as for a filing (above)
        uow.commit()
        return view


def _classify(uow, report: FailureReport, principal: Principal, body: Classification, *, rules, now) -> None:
    _check_cause(rules, body.cause_code)
    _check_department(rules, body.department_code)
    report.status = str(next_report_status(report.status, ReportAction.CLASSIFY))
    if body.report_class == "complex" and not (body.department_code or report.department_code):
        raise ReportRefused("department_missing", "a complex report names the department that owes the opinion",
                            status=422)
    opinion_due, time_limit = class_limits(rules.calendar, body.report_class, now,
                                           opinion_days=rules.settings.opinion_days,
                                           time_limit_days=body.time_limit_days)
    # 首问负责: a kiosk report belongs to the first member of staff who takes it up.
    if report.channel == "kiosk" and report.report_class is None and principal.kind == "staff":
        report.owner = principal.name
    report.report_class, report.cause_code = body.report_class, body.cause_code
    report.department_code = body.department_code or report.department_code
    report.time_limit_days = body.time_limit_days if body.report_class == "special" else None
    report.opinion_due_at, report.time_limit_at = opinion_due, time_limit
    _arm_class_limits(uow, report, now=now)
    _entry(uow, report, actor=principal.name, action="classify", at=now, department_code=report.department_code,
           report_class=body.report_class, cause_code=body.cause_code)
    uow.publish(report_event(ReportClassifiedV1, report, at=now, report_class=body.report_class,
                             cause_code=body.cause_code, department_code=report.department_code,
                             opinion_due_at=opinion_due, time_limit_at=time_limit, classified_by=principal.name))


def _arm_class_limits(uow: UnitOfWork, report: FailureReport, *, now: datetime) -> None:
    """One pending limit per report at a time: the one its class and round owe."""
    for kind in _CLASS_DEADLINES:
        cancel(uow, key=_limit_key(kind, report))
    if report.opinion_due_at is not None and report.opinion_received_at is None:
        arm(uow, key=_limit_key(DeadlineKind.REPORT_OPINION, report), kind=DeadlineKind.REPORT_OPINION,
            subject_type="report", subject_id=report.report_id, due_at=report.opinion_due_at, now=now)
    if report.time_limit_at is not None:
        arm(uow, key=_limit_key(DeadlineKind.REPORT_TIME_LIMIT, report), kind=DeadlineKind.REPORT_TIME_LIMIT,
            subject_type="report", subject_id=report.report_id, due_at=report.time_limit_at, now=now)


def _limit_key(kind: DeadlineKind, report: FailureReport) -> str:
    return f"{kind}:{report.report_id}:{report.reopen_count}"


def _assign(uow, report: FailureReport, principal: Principal, body: Assignment, *, rules, now) -> None:
    specialist = body.specialist or (principal.name if principal.kind == "specialist" else None)
    if specialist is None:
        raise ReportRefused("specialist_missing", "name the specialist to assign", status=422)
    report.status = str(next_report_status(report.status, ReportAction.ASSIGN))
    report.specialist = specialist
    _entry(uow, report, actor=principal.name, action="assign", at=now, specialist=specialist)
    uow.publish(report_event(ReportAssignedV1, report, at=now, specialist=specialist, assigned_by=principal.name))


def _record_contact(uow, report: FailureReport, principal: Principal, body: ContactRecord, *, rules, now) -> None:
    if principal.name != report.specialist:
        raise ReportRefused("not_report_specialist", "contacts are recorded by the assigned specialist",
                            current_status=report.status)
    report.status = str(next_report_status(report.status, ReportAction.RECORD_CONTACT))
    _check_department(rules, body.department_code)
    _check_note(body.note)
    if body.kind == "opinion" and report.opinion_received_at is None:
        report.opinion_received_at = now
        cancel(uow, key=_limit_key(DeadlineKind.REPORT_OPINION, report))
    _entry(uow, report, actor=principal.name, action="contact", at=now, department_code=body.department_code,
           note=body.note, kind=body.kind, channel=body.channel, unit_code=body.unit_code)
    uow.publish(report_event(ReportContactRecordedV1, report, at=now, department_code=body.department_code,
                             contact_kind=body.kind, specialist=principal.name))


def _close(uow, report: FailureReport, principal: Principal, body: Closure, *, rules, now) -> None:
    _check_note(body.note)
    next_status = next_report_status(report.status, ReportAction.CLOSE)
    check_may_close(ReportFacts(status=report.status, report_class=report.report_class,
                                specialist=report.specialist, owner=report.owner,
                                opinion_received=report.opinion_received_at is not None),
                    principal.name, body.outcome, has_deferral=body.deferral is not None)
    if body.deferral is not None:
        _grant_deferral(uow, report, principal, body, rules=rules, now=now)
    report.status, report.outcome, report.closed_at = str(next_status), body.outcome, now
    for kind in _CLASS_DEADLINES:
        cancel(uow, key=_limit_key(kind, report))
    _entry(uow, report, actor=principal.name, action="close", at=now, note=body.note, outcome=body.outcome)
    uow.publish(report_event(ReportClosedV1, report, at=now, outcome=body.outcome, closed_by=principal.name))
    record_action(uow, "report_closed", at=now, report=report, outcome=body.outcome)


def _grant_deferral(uow, report: FailureReport, principal: Principal, body: Closure, *, rules, now) -> None:
    """容缺受理 as the outcome: the item may go ahead without these materials; a reminder goes to the resident a
    working day before they are due, and if they are still missing when due, the report reopens."""
    terms = body.deferral
    item = uow.session.get(EscalationItem, terms.item_id)
    if item is None:
        raise ReportRefused("unknown_item", "the escalation service has not seen this item", status=422)
    # The reminder goes to the item's resident: only for an item of the caller's jurisdiction, and of the
    # report's own case when it names one.
    prefix = prefix_for(principal, rules.catalogue, kinds=WORKERS, reason="report_forbidden")
    if not in_scope(prefix, item.unit_code, item.community_code):
        raise Forbidden("report_forbidden", "this item is outside your jurisdiction")
    if report.case_id not in (None, item.case_id):
        raise ReportRefused("case_mismatch", "the item is of another case than the report's", status=422)
    matter = rules.catalogue.matters.get(item.matter_code)
    known = {material.code for material in matter.materials} if matter else set()
    unknown = sorted(set(terms.material_codes) - known)
    if unknown:
        raise ReportRefused("unknown_material", "these materials are not asked for by the item's matter",
                            status=422, materials=unknown)
    today = now.astimezone(SHANGHAI).date()
    days = terms.due_in_working_days or rules.settings.deferral_days
    due_date = rules.calendar.add_workdays(today, days).date
    grant = DeferralGrant(id=new_id(), report_id=report.report_id, item_id=item.item_id, case_id=item.case_id,
                          case_number=item.case_number, community_code=item.community_code,
                          matter_code=item.matter_code, department_code=item.department_code,
                          material_codes=" ".join(sorted(set(terms.material_codes))), due_date=due_date,
                          state="pending", granted_by=principal.name, granted_at=now)
    uow.session.add(grant)
    remind_on = deferral_reminder_day(rules.calendar, due_date, today)
    arm(uow, key=f"{DeadlineKind.DEFERRAL_REMINDER}:{grant.id}", kind=DeadlineKind.DEFERRAL_REMINDER,
        subject_type="grant", subject_id=grant.id, due_at=datetime.combine(remind_on, time(9, 0), tzinfo=SHANGHAI),
        now=now)
    # Due by the end of the due date: followed up the first moment after it.
    arm(uow, key=f"{DeadlineKind.DEFERRAL_DUE}:{grant.id}", kind=DeadlineKind.DEFERRAL_DUE, subject_type="grant",
        subject_id=grant.id, due_at=datetime.combine(due_date, time(23, 59, 59), tzinfo=SHANGHAI), now=now)
    _entry(uow, report, actor=principal.name, action="grant-deferral", at=now, department_code=item.department_code,
           item_id=item.item_id, materials=grant.material_codes.split(), due_date=due_date.isoformat())
    uow.publish(report_event(ReportDeferralGrantedV1, report, at=now, item_id=item.item_id, case_id=item.case_id,
                             matter_code=item.matter_code, department_code=item.department_code,
                             material_codes=tuple(grant.material_codes.split()), due_date=due_date,
                             granted_by=principal.name))
    record_action(uow, "deferral_granted", at=now, report=report, item_ref=item.item_id)


def _return_visit(uow, report: FailureReport, principal: Principal, body: ReturnVisit, *, rules, now) -> None:
    _check_note(body.note)
    next_status = next_report_status(report.status, ReportAction.RETURN_VISIT, agrees_solved=body.agrees_solved,
                                     has_specialist=report.specialist is not None)
    _entry(uow, report, actor=principal.name, action="return-visit", at=now, note=body.note,
           agrees_solved=body.agrees_solved)
    uow.publish(report_event(ReportReturnVisitedV1, report, at=now, agrees_solved=body.agrees_solved,
                             visited_by=principal.name))
    if body.agrees_solved:
        report.status, report.confirmed_at = str(next_status), now
        record_action(uow, "report_confirmed", at=now, report=report)
    else:
        reopen(uow, report, reason="return_visit_disagreed", actor=principal.name, rules=rules, now=now)


def reopen(uow: UnitOfWork, report: FailureReport, *, reason: str, actor: str, rules: EscalationRules,
           now: datetime) -> None:
    """Back to its specialist (or to the window, if it never had one), with its class owing afresh: a complex
    report a new department opinion, a special one a new limit of the same length."""
    report.status = str(ReportStatus.ASSIGNED if report.specialist else ReportStatus.OPEN)
    report.reopen_count += 1
    report.outcome, report.closed_at, report.confirmed_at = None, None, None
    report.opinion_due_at, report.time_limit_at = class_limits(
        rules.calendar, report.report_class, now, opinion_days=rules.settings.opinion_days,
        time_limit_days=report.time_limit_days) if report.report_class else (None, None)
    report.opinion_received_at = None
    _arm_class_limits(uow, report, now=now)
    _entry(uow, report, actor=actor, action="reopen", at=now, reason=reason, reopen_count=report.reopen_count)
    uow.publish(report_event(ReportReopenedV1, report, at=now, reason=reason, reopen_count=report.reopen_count))
    record_action(uow, "report_reopened", at=now, report=report, reason=reason)


ACTIONS = {
    ReportAction.CLASSIFY: _classify,
    ReportAction.ASSIGN: _assign,
    ReportAction.RECORD_CONTACT: _record_contact,
    ReportAction.CLOSE: _close,
    ReportAction.RETURN_VISIT: _return_visit,
}


def report_view(uow: UnitOfWork, report: FailureReport, *, with_history: bool = False) -> FailureReportView:
    grants = uow.session.scalars(select(DeferralGrant).where(DeferralGrant.report_id == report.report_id)
                                 .order_by(DeferralGrant.granted_at, DeferralGrant.id)).all()
    history = None
    if with_history:
        entries = uow.session.scalars(select(ReportEntry).where(ReportEntry.report_id == report.report_id)
                                      .order_by(ReportEntry.seq)).all()
        history = [ReportEntryView(at=e.at, actor=e.actor, action=e.action, department_code=e.department_code,
                                   note=e.note, details=json.loads(e.details)) for e in entries]
    return FailureReportView(
        report_id=report.report_id, report_number=report.report_number, channel=report.channel, status=report.status,
        unit_code=report.unit_code, community_code=report.community_code, case_id=report.case_id,
        item_id=report.item_id, matter_code=report.matter_code, department_code=report.department_code,
        level=report.level, report_class=report.report_class, cause_code=report.cause_code, owner=report.owner,
        specialist=report.specialist, opinion_due_at=report.opinion_due_at,
        opinion_received_at=report.opinion_received_at, time_limit_at=report.time_limit_at,
        overdue=report.overdue_at is not None, outcome=report.outcome, reopen_count=report.reopen_count,
        filed_at=report.filed_at, closed_at=report.closed_at, confirmed_at=report.confirmed_at, note=report.note,
        deferrals=[DeferralGrantView(grant_id=g.id, item_id=g.item_id, matter_code=g.matter_code,
                                     material_codes=g.material_codes.split(), due_date=g.due_date, state=g.state)
                   for g in grants],
        history=history)
