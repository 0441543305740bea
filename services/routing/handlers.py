"""Routing handler: a submitted case becomes one routed item per matter."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from services.routing.adapters.orm import RoutedItem
from services.routing.domain import RoutingImpossible, route_case
from shared.catalogue import Catalogue, UnknownCode
from shared.clock import new_id
from shared.events import CaseSubmittedV1, CloudEvent, ItemRoutedV1
from shared.nameko_ext import PermanentError
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar

log = structlog.get_logger(__name__)

CASE_SUBMITTED_CONSUMER = "routing.case-submitted"


@dataclass(frozen=True)
class RoutingRules:
    catalogue: Catalogue
    calendar: WorkdayCalendar


def route_submitted_case(event: CloudEvent, *, unit_of_work: UnitOfWork, rules: RoutingRules) -> int:
    """Create and route the case's items; returns how many were created (0 for a redelivery)."""
    submitted = event.payload()
    if not isinstance(submitted, CaseSubmittedV1):
        raise PermanentError(f"{CASE_SUBMITTED_CONSUMER} cannot handle {event.type}")
    structlog.contextvars.bind_contextvars(case_id=submitted.case_id)
    if submitted.catalogue_version != rules.catalogue.version:
        log.warning("case was taken in under another catalogue version; routing by the current one",
                    case_catalogue=submitted.catalogue_version, current_catalogue=rules.catalogue.version)
    try:
        decisions = route_case(rules.catalogue, rules.calendar, community_code=submitted.community_code,
                               matter_codes=submitted.matter_codes, submitted_at=submitted.submitted_at)
    except (UnknownCode, RoutingImpossible) as exc:
        raise PermanentError(str(exc)) from exc

    with unit_of_work as uow:
        if not uow.claim_message(CASE_SUBMITTED_CONSUMER, event):
            log.info("case already routed; redelivery ignored")
            return 0
        now = uow.clock.now()
        for decision in decisions:
            item = RoutedItem(
                id=new_id(), case_id=submitted.case_id, case_number=submitted.case_number,
                matter_code=decision.matter_code, community_code=submitted.community_code,
                department_code=decision.department_code, level=str(decision.level),
                unit_code=decision.unit_code, status=decision.status, waiting_for=" ".join(decision.waiting_for),
                legal_deadline=decision.legal_deadline, promised_deadline=decision.promised_deadline,
                deadline_provisional=decision.deadline_provisional,
                catalogue_version=rules.catalogue.version, routed_at=now)
            uow.session.add(item)
            uow.publish(ItemRoutedV1(
                item_id=item.id, case_id=item.case_id, case_number=item.case_number,
                matter_code=item.matter_code, department_code=item.department_code, level=item.level,
                unit_code=item.unit_code, district_code=decision.district_code,
                community_code=item.community_code, status=decision.status,
                waiting_for=decision.waiting_for, legal_deadline=item.legal_deadline,
                promised_deadline=item.promised_deadline, deadline_provisional=item.deadline_provisional,
                catalogue_version=item.catalogue_version, occurred_at=now))
            if decision.deadline_provisional:
                log.warning("deadline computed without an official calendar for its year; add the year to "
                            "the calendar override file", matter=decision.matter_code)
        uow.commit()
        log.info("case routed", items=len(decisions),
                 levels=sorted({str(decision.level) for decision in decisions}))
        return len(decisions)
