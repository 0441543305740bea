"""好差评: a rating arrives (signed link, kiosk or window pad, lookup page), is checked by the domain rules and
stored with its events in one unit of work; a bad one opens a rectification in the same transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from services.evaluation import domain
from services.evaluation.adapters.orm import EvaluationCase, EvaluationItem, Rating, Rectification
from services.evaluation.facts import EvaluationRules
from services.evaluation.schemas import (
    RateableItem,
    RatingLinkIssue,
    RatingLinkIssued,
    RatingLinkView,
    RatingSubmission,
    RatingView,
    ReasonOption,
)
from shared.auth import Principal
from shared.clock import new_id
from shared.events import RatingSubmittedV1, RectificationOpenedV1, RectificationOpenedV2
from shared.outbox import UnitOfWork
from shared.rating_links import sign_rating_link, verify_rating_link

log = structlog.get_logger(__name__)


def rater_fingerprint(key: str, phone: str | None) -> str | None:
    return hmac.new(key.encode(), phone.encode(), hashlib.sha256).hexdigest() if phone else None


def case_for_link(token: str, *, rules: EvaluationRules, now: datetime) -> str:
    return verify_rating_link(rules.link_key, token, now=now)


def issue_link(body: RatingLinkIssue, *, principal: Principal, unit_of_work: UnitOfWork, rules: EvaluationRules,
               now: datetime) -> RatingLinkIssued:
    """A link for a completed case (by id, or by the number on the receipt): for staff of the case's line, the
    kiosk of its community, and the console service, which asks only for a case a resident has just looked up
    at intake with its number and her phone ending (the notification service signs its own links)."""
    with unit_of_work as uow:
        if body.case_id is not None:
            case = uow.session.get(EvaluationCase, body.case_id)
        else:
            case = uow.session.scalars(select(EvaluationCase).where(
                EvaluationCase.case_number == body.case_number)).first()
        if case is None:
            raise domain.NotFound("unknown_case", "no completed case with this id or number")
        case_id, completed_at = case.case_id, case.completed_at
        if principal.kind != "console":
            _require_scope(principal, case.community_code, rules)
    expires = completed_at + timedelta(days=rules.link_days)
    if expires <= now:
        raise domain.Conflict("rating_window_closed", "the case's rating window has closed")
    return RatingLinkIssued(case_id=case_id, token=sign_rating_link(rules.link_key, case_id=case_id,
                                                                    expires_at=expires), expires_at=expires)


def _require_scope(principal: Principal, community_code: str, rules: EvaluationRules) -> None:
    if principal.kind == "kiosk":
        if principal.unit_code != community_code:
            raise domain.Forbidden("community_forbidden", "a kiosk rates only cases of its own community")
        return
    if principal.kind not in ("staff", "specialist") or principal.unit_code not in rules.catalogue.units \
            or not rules.catalogue.is_within(community_code, principal.unit_code):
        raise domain.Forbidden("outside_jurisdiction", "the case lies outside your jurisdiction")


def link_view(case_id: str, *, unit_of_work: UnitOfWork, rules: EvaluationRules) -> RatingLinkView:
    with unit_of_work as uow:
        case = uow.session.get(EvaluationCase, case_id)
        if case is None:
            raise domain.NotFound("unknown_case", "no completed case with this id")
        outcomes = json.loads(case.outcomes)
        items = {i.item_id: i for i in uow.session.scalars(select(EvaluationItem).where(
            EvaluationItem.item_id.in_(list(outcomes))))}
        ratings = uow.session.scalars(select(Rating).where(Rating.case_id == case_id,
                                                           Rating.superseded_by.is_(None))).all()
        return RatingLinkView(
            case_id=case.case_id, case_number=case.case_number, completed_at=case.completed_at,
            window_closes_at=case.completed_at + timedelta(days=rules.settings.rating_window_days),
            levels=list(domain.LEVEL_NAMES.values()),
            reasons=[ReasonOption(code=code, name=name, kind=kind) for code, name, kind in rules.reasons.options()],
            items=[RateableItem(item_id=item_id, matter_code=items[item_id].matter_code if item_id in items else None,
                                status=status, ratings=[_view(r) for r in ratings if r.item_id == item_id])
                   for item_id, status in outcomes.items()])


def _view(rating: Rating, *, replaces: str | None = None, rectification_id: str | None = None) -> RatingView:
    level = domain.RatingLevel(rating.level)
    return RatingView(rating_id=rating.rating_id, item_id=rating.item_id, case_id=rating.case_id,
                      channel=rating.channel, level=level.value, level_name=domain.LEVEL_NAMES[level],
                      reason_codes=json.loads(rating.reason_codes), submitted_at=rating.submitted_at,
                      replaces=replaces, excluded=rating.excluded, rectification_id=rectification_id)


def submit(case_id: str, body: RatingSubmission, *, channel: str, unit_of_work: UnitOfWork, rules: EvaluationRules,
           now: datetime, kiosk: Principal | None = None, fingerprint: str | None = None) -> tuple[RatingView, bool]:
    """Store a rating; returns its view and whether it replaced an earlier one (a change within the window)."""
    level = domain.parse_level(body.level)
    reasons = tuple(body.reason_codes)
    rules.reasons.check(level, reasons)
    with unit_of_work as uow:
        session = uow.session
        case = session.get(EvaluationCase, case_id)
        item = session.get(EvaluationItem, body.item_id, with_for_update=True)
        if item is not None and item.case_id != case_id:
            item = None
        if case is None and item is None:
            raise domain.NotFound("unknown_case", "no such case, or none of its items has been seen")
        if kiosk is not None:
            _require_scope(kiosk, case.community_code if case else item.community_code, rules)
        status = None
        if case is not None:
            status = json.loads(case.outcomes).get(body.item_id)
            if status is None:
                raise domain.NotFound("unknown_item", "the case has no such item")
        rated = None if item is None and case is None else domain.RatedItem(
            item_id=body.item_id, case_id=case_id, community_code=(case or item).community_code,
            unit_code=item.unit_code if item else "", status=status or item.status,
            case_completed_at=case.completed_at if case else None)
        prior = session.scalars(select(Rating).where(Rating.item_id == body.item_id, Rating.channel == channel,
                                                     Rating.superseded_by.is_(None))).first()
        decision = domain.decide_rating(rated, domain.PriorRating(prior.rating_id, prior.submitted_at)
                                        if prior else None, now=now, settings=rules.settings)
        if item is None:
            raise domain.Conflict("item_facts_pending", "the item's facts have not arrived yet; try again shortly")
        rating = Rating(rating_id=new_id(), item_id=item.item_id, case_id=case_id, unit_code=item.unit_code,
                        channel=channel, level=level.value, reason_codes=json.dumps(list(reasons)),
                        comment=body.comment, rater_fingerprint=fingerprint, submitted_at=now, excluded=False)
        if decision == "replace":
            prior.superseded_by = rating.rating_id
            session.flush()
        session.add(rating)
        session.flush()
        refresh_effective_rating(session, item, rules.settings)
        uow.publish(RatingSubmittedV1(**_item_fields(item), rating_id=rating.rating_id, rating_level=level.value,
                                      channel=channel, reason_codes=reasons,
                                      replaces=prior.rating_id if decision == "replace" else None,
                                      submitted_at=now))
        rectification_id = None
        if domain.opens_rectification(level):
            open_for_item = session.scalars(select(Rectification).where(
                Rectification.item_id == item.item_id, Rectification.origin == "rating",
                Rectification.state != "closed")).first()
            rectification_id = open_for_item.rectification_id if open_for_item else open_rectification(
                uow, rules, origin="rating", origin_id=rating.rating_id, now=now, **_item_fields(item))
        view = _view(rating, replaces=prior.rating_id if decision == "replace" else None,
                     rectification_id=rectification_id)
        uow.commit()
    log.info("rating stored", item_id=item.item_id, rating_id=view.rating_id, level=level.value, channel=channel)
    return view, decision == "replace"


def _item_fields(item: EvaluationItem) -> dict:
    return {"item_id": item.item_id, "case_id": item.case_id, "matter_code": item.matter_code,
            "department_code": item.department_code, "level": item.level, "unit_code": item.unit_code,
            "district_code": item.district_code}


def refresh_effective_rating(session, item: EvaluationItem, settings: domain.EvaluationSettings) -> None:
    """The item's rating in the rates: its latest live rating that no upheld appeal excluded, or none."""
    latest = session.scalars(select(Rating).where(
        Rating.item_id == item.item_id, Rating.superseded_by.is_(None), Rating.excluded.is_(False))
        .order_by(Rating.submitted_at.desc(), Rating.rating_id.desc())).first()
    if latest is None:
        item.rated_at, item.satisfaction = None, None
    else:
        item.rated_at = latest.submitted_at
        item.satisfaction = domain.satisfaction_value(domain.RatingLevel(latest.level), settings.basic_weight)


def open_rectification(uow: UnitOfWork, rules: EvaluationRules, *, origin: str, origin_id: str, now: datetime,
                       item_id: str | None, case_id: str | None, matter_code: str | None, department_code: str,
                       level: str, unit_code: str, district_code: str) -> str:
    settings = rules.settings
    due = domain.rectification_due(rules.calendar, now, settings.rectification_days, settings.escalate_after_days)
    rectification = Rectification(
        rectification_id=new_id(), origin=origin, origin_id=origin_id, item_id=item_id, case_id=case_id,
        matter_code=matter_code, department_code=department_code, level=level, unit_code=unit_code,
        district_code=district_code, state="open", opened_at=now, deadline=due.deadline, escalate_at=due.escalate_at,
        deadline_days=settings.rectification_days, escalate_after_days=settings.escalate_after_days,
        deadline_provisional=due.deadline_provisional, escalate_at_provisional=due.escalate_at_provisional,
        callback_note="", result_reason="")
    uow.session.add(rectification)
    # Both versions side by side (shared/events.py): v2 adds the provisional flags and the escalation time.
    fields = dict(item_id=item_id, case_id=case_id, matter_code=matter_code, department_code=department_code,
                  level=level, unit_code=unit_code, district_code=district_code,
                  rectification_id=rectification.rectification_id, origin=origin, origin_id=origin_id,
                  deadline=due.deadline, opened_at=now)
    uow.publish(RectificationOpenedV1(**fields))
    uow.publish(RectificationOpenedV2(**fields, deadline_provisional=due.deadline_provisional,
                                      escalate_at=due.escalate_at,
                                      escalate_at_provisional=due.escalate_at_provisional))
    log.info("rectification opened", rectification_id=rectification.rectification_id, origin=origin,
             unit_code=unit_code, deadline_provisional=due.deadline_provisional)
    return rectification.rectification_id
