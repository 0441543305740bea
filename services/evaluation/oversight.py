"""What units and supervisors do with ratings and findings: rectifications (call-back, result, overdue sweep),
appeals, 体验官 and their findings, and 督办单. Each call is one unit of work; a refusal writes nothing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, or_, select

from services.evaluation import domain
from services.evaluation.adapters.orm import (
    Appeal,
    Attachment,
    EvaluationCase,
    EvaluationItem,
    Evaluator,
    Finding,
    Rating,
    Rectification,
    SupervisionOrder,
)
from services.evaluation.facts import EvaluationRules
from services.evaluation.ratings import open_rectification, refresh_effective_rating
from services.evaluation.schemas import (
    AppealDecision,
    AppealFiling,
    AppealList,
    AppealView,
    AttachmentUpload,
    CallbackRecord,
    EvaluatorRegistered,
    EvaluatorRegistration,
    FindingFiling,
    FindingView,
    RectificationClosure,
    RectificationList,
    RectificationView,
    SupervisionAnswer,
    SupervisionOrderIssue,
    SupervisionOrderList,
    SupervisionOrderView,
)
from shared.auth import Principal
from shared.clock import new_id
from shared.events import (
    AppealDecidedV1,
    RectificationClosedV1,
    RectificationClosedV2,
    RectificationOverdueV1,
    SupervisionOrderAnsweredV1,
    SupervisionOrderIssuedV1,
)
from shared.http import ApiError
from shared.outbox import UnitOfWork

log = structlog.get_logger(__name__)


def jurisdiction(principal: Principal, rules: EvaluationRules, *, kinds=("staff", "specialist")) -> str:
    """The caller's jurisdiction as a division-code prefix; 403 for other kinds of client."""
    if principal.kind not in kinds or principal.unit_code not in rules.catalogue.units:
        raise domain.Forbidden("not_staff", f"this is for {', '.join(kinds)} clients only")
    return rules.catalogue.jurisdiction_prefix(principal.unit_code)


# ── rectifications ─────────────────────────────────────────────────────────────────────────────────────


def _rect_view(r: Rectification) -> RectificationView:
    return RectificationView(rectification_id=r.rectification_id, origin=r.origin, origin_id=r.origin_id,
                             item_id=r.item_id, unit_code=r.unit_code, level=r.level, state=r.state,
                             opened_at=r.opened_at, deadline=r.deadline,
                             deadline_provisional=bool(r.deadline_provisional), escalate_at=r.escalate_at,
                             escalate_at_provisional=bool(r.escalate_at_provisional),
                             supervising_unit_code=r.supervising_unit_code, callback_at=r.callback_at,
                             callback_outcome=r.callback_outcome, result=r.result,
                             reason_code=r.result_reason_code, closed_at=r.closed_at)


def _rect_event_fields(r: Rectification) -> dict:
    return {"item_id": r.item_id, "case_id": r.case_id, "matter_code": r.matter_code,
            "department_code": r.department_code, "level": r.level, "unit_code": r.unit_code,
            "district_code": r.district_code, "rectification_id": r.rectification_id, "origin": r.origin,
            "origin_id": r.origin_id}


def _publish_closed(uow: UnitOfWork, r: Rectification) -> None:
    """``rectification.closed`` in both versions, side by side (shared/events.py): v2 adds the coded reason."""
    fields = dict(**_rect_event_fields(r), result=r.result, callback_outcome=r.callback_outcome,
                  closed_at=r.closed_at)
    uow.publish(RectificationClosedV1(**fields))
    case = uow.session.get(EvaluationCase, r.case_id) if r.case_id else None
    uow.publish(RectificationClosedV2(**fields, reason_code=r.result_reason_code,
                                      case_number=case.case_number if case else None,
                                      community_code=case.community_code if case else None))


def _load_rectification(uow: UnitOfWork, rectification_id: str, principal: Principal,
                        rules: EvaluationRules) -> Rectification:
    prefix = jurisdiction(principal, rules)
    r = uow.session.get(Rectification, rectification_id, with_for_update=True)
    if r is None:
        raise domain.NotFound("unknown_rectification", "no such rectification")
    if not (r.unit_code.startswith(prefix) or (r.supervising_unit_code or "x").startswith(prefix)):
        raise domain.Forbidden("outside_jurisdiction", "the rectification lies outside your jurisdiction")
    return r


def get_rectification(rectification_id: str, principal: Principal, *, unit_of_work: UnitOfWork,
                      rules: EvaluationRules) -> RectificationView:
    with unit_of_work as uow:
        return _rect_view(_load_rectification(uow, rectification_id, principal, rules))


def list_rectifications(principal: Principal, *, unit_of_work: UnitOfWork, rules: EvaluationRules,
                        state: str | None, limit: int, offset: int) -> RectificationList:
    prefix = jurisdiction(principal, rules)
    with unit_of_work as uow:
        where = [or_(Rectification.unit_code.startswith(prefix),
                     Rectification.supervising_unit_code.startswith(prefix))]
        if state:
            where.append(Rectification.state == state)
        total = uow.session.scalar(select(func.count()).select_from(Rectification).where(*where))
        rows = uow.session.scalars(select(Rectification).where(*where).order_by(Rectification.deadline)
                                   .limit(limit).offset(offset)).all()
        return RectificationList(rectifications=[_rect_view(r) for r in rows], total=total)


def record_callback(rectification_id: str, body: CallbackRecord, principal: Principal, *,
                    unit_of_work: UnitOfWork, rules: EvaluationRules, now: datetime) -> RectificationView:
    with unit_of_work as uow:
        r = _load_rectification(uow, rectification_id, principal, rules)
        if principal.unit_code != r.unit_code:
            raise domain.Forbidden("not_owner", "the owning unit calls the resident back")
        if r.state == "closed":
            raise domain.Conflict("rectification_closed", "the rectification is already closed")
        r.callback_at, r.callback_outcome, r.callback_note = now, body.outcome, body.note
        view = _rect_view(r)
        uow.commit()
    return view


def close(rectification_id: str, body: RectificationClosure, principal: Principal, *, unit_of_work: UnitOfWork,
          rules: EvaluationRules, now: datetime) -> RectificationView:
    with unit_of_work as uow:
        r = _load_rectification(uow, rectification_id, principal, rules)
        domain.check_closure(state=r.state, owner_unit=r.unit_code, actor_unit=principal.unit_code,
                             callback_recorded=r.callback_at is not None, result=body.result, reason=body.reason,
                             reason_code=body.reason_code)
        r.state, r.result, r.result_reason, r.closed_at = "closed", body.result, body.reason, now
        r.result_reason_code = body.reason_code
        _publish_closed(uow, r)
        view = _rect_view(r)
        uow.commit()
    log.info("rectification closed", rectification_id=rectification_id, result=body.result)
    return view


def sweep_overdue(unit_of_work: Callable[[], UnitOfWork], *, rules: EvaluationRules, now: datetime,
                  batch: int = 200) -> dict:
    """Warn on rectifications past their deadline, hand those past the grace to the level above. Each row is
    locked and re-checked, so replicas sweeping together raise each stage once."""
    fired = {"warning": 0, "escalated": 0}
    with unit_of_work() as uow:
        ids = uow.session.scalars(select(Rectification.rectification_id).where(
            Rectification.state.in_(("open", "warned")), Rectification.deadline <= now)
            .order_by(Rectification.deadline).limit(batch)).all()
    for rectification_id in ids:
        with unit_of_work() as uow:
            r = uow.session.get(Rectification, rectification_id, with_for_update=True)
            stage = domain.overdue_stage(state=r.state, deadline=r.deadline, escalate_at=r.escalate_at, now=now)
            if stage is None:
                continue
            supervising = None
            if stage == "warning":
                r.state, r.warned_at = "warned", now
            else:
                supervising = domain.escalation_unit(rules.catalogue, r.unit_code) or r.unit_code
                r.state, r.escalated_at, r.supervising_unit_code = "escalated", now, supervising
            uow.publish(RectificationOverdueV1(**_rect_event_fields(r), stage=stage, deadline=r.deadline,
                                               supervising_unit_code=supervising, raised_at=now))
            uow.commit()
            fired[stage] += 1
            log.info("rectification overdue", rectification_id=rectification_id, stage=stage)
    return fired


# ── appeals ────────────────────────────────────────────────────────────────────────────────────────────


def _appeal_view(a: Appeal) -> AppealView:
    return AppealView(appeal_id=a.appeal_id, rating_id=a.rating_id, unit_code=a.unit_code,
                      deciding_unit_code=a.deciding_unit_code, grounds=a.grounds, statement=a.statement or "",
                      state=a.state, decision_reason=a.decision_reason or "", filed_at=a.filed_at,
                      decided_at=a.decided_at)


def file_appeal(rating_id: str, body: AppealFiling, principal: Principal, *, unit_of_work: UnitOfWork,
                rules: EvaluationRules, now: datetime) -> AppealView:
    jurisdiction(principal, rules, kinds=("staff",))
    with unit_of_work as uow:
        rating = uow.session.get(Rating, rating_id, with_for_update=True)
        if rating is None:
            raise domain.NotFound("unknown_rating", "no such rating")
        pending = uow.session.scalars(select(Appeal).where(Appeal.rating_id == rating_id,
                                                           Appeal.state == "pending")).first()
        domain.check_appeal(rating_unit=rating.unit_code, actor_unit=principal.unit_code,
                            open_appeal=pending is not None, excluded=rating.excluded)
        appeal = Appeal(appeal_id=new_id(), rating_id=rating_id, unit_code=rating.unit_code,
                        deciding_unit_code=domain.deciding_unit(rules.catalogue, rating.unit_code),
                        grounds=body.grounds, statement=body.statement, state="pending", decision_reason="",
                        filed_at=now)
        uow.session.add(appeal)
        view = _appeal_view(appeal)
        uow.commit()
    return view


def list_appeals(principal: Principal, *, unit_of_work: UnitOfWork, rules: EvaluationRules, state: str | None,
                 limit: int, offset: int) -> AppealList:
    prefix = jurisdiction(principal, rules)
    with unit_of_work as uow:
        where = [or_(Appeal.unit_code.startswith(prefix), Appeal.deciding_unit_code.startswith(prefix))]
        if state:
            where.append(Appeal.state == state)
        total = uow.session.scalar(select(func.count()).select_from(Appeal).where(*where))
        rows = uow.session.scalars(select(Appeal).where(*where).order_by(Appeal.filed_at).limit(limit)
                                   .offset(offset)).all()
        return AppealList(appeals=[_appeal_view(a) for a in rows], total=total)


def decide_appeal(appeal_id: str, body: AppealDecision, principal: Principal, *, unit_of_work: UnitOfWork,
                  rules: EvaluationRules, now: datetime) -> AppealView:
    jurisdiction(principal, rules, kinds=("staff",))
    with unit_of_work as uow:
        appeal = uow.session.get(Appeal, appeal_id, with_for_update=True)
        if appeal is None:
            raise domain.NotFound("unknown_appeal", "no such appeal")
        domain.check_decision(rules.catalogue, rating_unit=appeal.unit_code, actor_unit=principal.unit_code,
                              state=appeal.state)
        rating = uow.session.get(Rating, appeal.rating_id, with_for_update=True)
        item = uow.session.get(EvaluationItem, rating.item_id, with_for_update=True)
        appeal.state = "upheld" if body.upheld else "dismissed"
        appeal.decision_reason, appeal.decided_at = body.reason, now
        if body.upheld:
            rating.excluded = True  # kept in the record, out of the rates
            uow.session.flush()
            refresh_effective_rating(uow.session, item, rules.settings)
            opened = uow.session.scalars(select(Rectification).where(
                Rectification.origin == "rating", Rectification.origin_id == rating.rating_id,
                Rectification.state != "closed").with_for_update()).first()
            if opened is not None:
                opened.state, opened.result, opened.closed_at = "closed", "appeal_upheld", now
                opened.result_reason = "appeal upheld"
                _publish_closed(uow, opened)
        uow.publish(AppealDecidedV1(
            item_id=item.item_id, case_id=item.case_id, matter_code=item.matter_code,
            department_code=item.department_code, level=item.level, unit_code=appeal.unit_code,
            district_code=item.district_code, appeal_id=appeal.appeal_id, rating_id=rating.rating_id,
            grounds=appeal.grounds, upheld=body.upheld, deciding_unit_code=principal.unit_code, decided_at=now))
        view = _appeal_view(appeal)
        uow.commit()
    return view


# ── 体验官 ─────────────────────────────────────────────────────────────────────────────────────────────


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register_evaluator(body: EvaluatorRegistration, principal: Principal, *, unit_of_work: UnitOfWork,
                       rules: EvaluationRules, now: datetime) -> EvaluatorRegistered:
    jurisdiction(principal, rules, kinds=("staff",))
    if rules.catalogue.unit(principal.unit_code).level != "district":
        raise domain.Forbidden("not_district_staff", "evaluators are registered by district staff")
    token = secrets.token_urlsafe(32)
    with unit_of_work as uow:
        evaluator = Evaluator(evaluator_id=new_id(), display_name=body.display_name, category=body.category,
                              token_digest=_digest(token), district_code=principal.unit_code,
                              registered_by=principal.unit_code, registered_at=now, active=True)
        uow.session.add(evaluator)
        uow.commit()
    return EvaluatorRegistered(evaluator_id=evaluator.evaluator_id, category=body.category, token=token)


def evaluator_for(authorization: str | None, *, unit_of_work: UnitOfWork) -> tuple[str, str]:
    """(evaluator id, district code) for an ``Authorization: Evaluator <token>`` header; 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "evaluator" or not token.strip():
        raise ApiError(401, "unauthenticated", "send 'Authorization: Evaluator <token>'")
    with unit_of_work as uow:
        evaluator = uow.session.scalars(select(Evaluator).where(Evaluator.token_digest == _digest(token.strip()),
                                                                Evaluator.active.is_(True))).first()
        if evaluator is None:
            raise ApiError(401, "unauthenticated", "the evaluator token is not recognised")
        return evaluator.evaluator_id, evaluator.district_code


def _finding_view(f: Finding, attachments: list[str]) -> FindingView:
    return FindingView(finding_id=f.finding_id, evaluator_id=f.evaluator_id, unit_code=f.unit_code,
                       item_id=f.item_id, severity=f.severity, filed_at=f.filed_at,
                       rectification_id=f.rectification_id, attachments=attachments)


def file_finding(evaluator: tuple[str, str], body: FindingFiling, *, unit_of_work: UnitOfWork,
                 rules: EvaluationRules, now: datetime) -> FindingView:
    """A finding opens a rectification through the same loop as a bad rating; it never enters a rate."""
    evaluator_id, district_code = evaluator
    if body.unit_code not in rules.catalogue.units:
        raise domain.Refusal("unknown_unit", "no such unit")
    if not body.unit_code.startswith(district_code[:6]):
        raise domain.Forbidden("outside_jurisdiction", "an evaluator files findings in its own district")
    with unit_of_work as uow:
        item = uow.session.get(EvaluationItem, body.item_id) if body.item_id else None
        if body.item_id and (item is None or item.unit_code != body.unit_code):
            raise domain.Refusal("unknown_item", "the item is not known at that unit")
        finding = Finding(finding_id=new_id(), evaluator_id=evaluator_id, unit_code=body.unit_code,
                          district_code=district_code, item_id=body.item_id,
                          matter_code=item.matter_code if item else body.matter_code,
                          department_code=item.department_code if item else None, mode=body.mode, place=body.place,
                          tried=body.tried, went_wrong=body.went_wrong, severity=body.severity, filed_at=now)
        uow.session.add(finding)
        unit = rules.catalogue.unit(body.unit_code)
        finding.rectification_id = open_rectification(
            uow, rules, origin="finding", origin_id=finding.finding_id, now=now, item_id=body.item_id,
            case_id=item.case_id if item else None, matter_code=finding.matter_code,
            department_code=finding.department_code or "any", level=str(unit.level), unit_code=body.unit_code,
            district_code=district_code)
        view = _finding_view(finding, [])
        uow.commit()
    return view


def add_attachment(finding_id: str, evaluator: tuple[str, str], body: AttachmentUpload, *,
                   unit_of_work: UnitOfWork, rules: EvaluationRules, now: datetime) -> FindingView:
    try:
        data = base64.b64decode(body.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise domain.Refusal("attachment_encoding", "data_base64 is not base64") from None
    domain.check_attachment(body.content_type, data, rules.settings)
    with unit_of_work as uow:
        finding = uow.session.get(Finding, finding_id)
        if finding is None or finding.evaluator_id != evaluator[0]:
            raise domain.NotFound("unknown_finding", "no such finding of yours")
        count = uow.session.scalar(select(func.count()).select_from(Attachment)
                                   .where(Attachment.finding_id == finding_id))
        if count >= 5:
            raise domain.Conflict("too_many_attachments", "a finding has at most 5 photos")
        uow.session.add(Attachment(attachment_id=new_id(), finding_id=finding_id, content_type=body.content_type,
                                   size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data, added_at=now))
        uow.session.flush()
        ids = uow.session.scalars(select(Attachment.attachment_id).where(Attachment.finding_id == finding_id)).all()
        view = _finding_view(finding, list(ids))
        uow.commit()
    return view


# ── 督办单 ─────────────────────────────────────────────────────────────────────────────────────────────


def _order_view(o: SupervisionOrder, now: datetime) -> SupervisionOrderView:
    return SupervisionOrderView(order_id=o.order_id, subject_type=o.subject_type, subject_id=o.subject_id,
                                issuer_unit_code=o.issuer_unit_code, target_unit_code=o.target_unit_code,
                                what=o.what, due_at=o.due_at, due_at_provisional=bool(o.due_at_provisional),
                                issued_at=o.issued_at, answered_at=o.answered_at, answer=o.answer or "",
                                state=domain.order_state(answered_at=o.answered_at, due_at=o.due_at, now=now))


def _order_event_fields(uow: UnitOfWork, rules: EvaluationRules, o: SupervisionOrder) -> dict:
    """Codes and ids of a 督办单 for its events: the addressed unit, the subject's item, case, matter and department.
    Never what it asks nor the answer (text stays here)."""
    subject = uow.session.get(EvaluationItem if o.subject_type == "item" else Rectification, o.subject_id)
    return {"item_id": subject.item_id, "case_id": subject.case_id, "matter_code": subject.matter_code,
            "department_code": subject.department_code or "any",
            "level": str(rules.catalogue.unit(o.target_unit_code).level), "unit_code": o.target_unit_code,
            "district_code": o.district_code, "order_id": o.order_id, "subject_type": o.subject_type,
            "subject_id": o.subject_id, "issuer_unit_code": o.issuer_unit_code, "due_at": o.due_at}


def issue_order(body: SupervisionOrderIssue, principal: Principal, *, unit_of_work: UnitOfWork,
                rules: EvaluationRules, now: datetime) -> SupervisionOrderView:
    jurisdiction(principal, rules, kinds=("staff",))
    if body.target_unit_code not in rules.catalogue.units:
        raise domain.Refusal("unknown_unit", "no such unit")
    with unit_of_work as uow:
        subject = uow.session.get(EvaluationItem if body.subject_type == "item" else Rectification, body.subject_id)
        if subject is None:
            raise domain.NotFound("unknown_subject", f"no such {body.subject_type}")
        domain.check_supervisor(rules.catalogue, supervisor_unit=principal.unit_code, kind=principal.kind,
                                subject_unit=subject.unit_code, target_unit=body.target_unit_code)
        due_at, provisional = domain.order_due(rules.calendar, now, body.due_in_working_days)
        order = SupervisionOrder(order_id=new_id(), subject_type=body.subject_type, subject_id=body.subject_id,
                                 issuer_unit_code=principal.unit_code, target_unit_code=body.target_unit_code,
                                 district_code=subject.district_code, what=body.what, due_at=due_at,
                                 due_days=body.due_in_working_days, due_at_provisional=provisional,
                                 issued_at=now, answer="")
        uow.session.add(order)
        uow.publish(SupervisionOrderIssuedV1(**_order_event_fields(uow, rules, order), issued_at=now))
        view = _order_view(order, now)
        uow.commit()
    return view


def answer_order(order_id: str, body: SupervisionAnswer, principal: Principal, *, unit_of_work: UnitOfWork,
                 rules: EvaluationRules, now: datetime) -> SupervisionOrderView:
    jurisdiction(principal, rules)
    with unit_of_work as uow:
        order = uow.session.get(SupervisionOrder, order_id, with_for_update=True)
        if order is None:
            raise domain.NotFound("unknown_order", "no such supervision order")
        if order.target_unit_code != principal.unit_code:
            raise domain.Forbidden("not_ordered_unit", "only the unit the order names answers it")
        if order.answered_at is not None:
            raise domain.Conflict("order_answered", "the order is already answered")
        order.answer, order.answered_at = body.answer, now
        uow.publish(SupervisionOrderAnsweredV1(**_order_event_fields(uow, rules, order), answered_at=now,
                                               late=now > order.due_at))
        view = _order_view(order, now)
        uow.commit()
    return view


def list_orders(principal: Principal, *, unit_of_work: UnitOfWork, rules: EvaluationRules, now: datetime,
                overdue_only: bool, limit: int, offset: int) -> SupervisionOrderList:
    prefix = jurisdiction(principal, rules)
    now = now.astimezone(UTC)
    with unit_of_work as uow:
        where = [or_(SupervisionOrder.issuer_unit_code.startswith(prefix),
                     SupervisionOrder.target_unit_code.startswith(prefix))]
        overdue_where = [*where, SupervisionOrder.due_at < now, or_(
            SupervisionOrder.answered_at.is_(None), SupervisionOrder.answered_at > SupervisionOrder.due_at)]
        overdue = uow.session.scalar(select(func.count()).select_from(SupervisionOrder).where(*overdue_where))
        chosen = overdue_where if overdue_only else where
        total = uow.session.scalar(select(func.count()).select_from(SupervisionOrder).where(*chosen))
        rows = uow.session.scalars(select(SupervisionOrder).where(*chosen).order_by(SupervisionOrder.due_at)
                                   .limit(limit).offset(offset)).all()
        return SupervisionOrderList(orders=[_order_view(o, now) for o in rows], total=total, overdue=overdue)
