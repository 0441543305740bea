"""Routing handler: a submitted case becomes one routed item per matter."""

from __future__ import annotations

import structlog

from services.routing.adapters.orm import DeferredMaterial, RoutedCase, RoutedItem, record_new_item_statuses
from services.routing.domain import RoutingImpossible, route_case
from services.routing.follow_ups import SYSTEM_ACTOR, lock_case
from services.routing.item_actions import WorkRules
from services.routing.item_events import item_event, move_to_unit, record_change, routed_event
from services.routing.lifecycle import OPEN_STATUSES, Action, next_status
from shared.catalogue import Level, UnknownCode
from shared.clock import new_id
from shared.db import insert_new_objects, is_postgres
from shared.events import CaseSubmittedV1, CloudEvent, CustodyRecordedV1, EscalationOrderedV1, ItemEscalatedV1
from shared.nameko_ext import PermanentError
from shared.outbox import UnitOfWork

log = structlog.get_logger(__name__)

CASE_SUBMITTED_CONSUMER = "routing.case-submitted"


def route_submitted_case(event: CloudEvent, *, unit_of_work: UnitOfWork, rules: WorkRules) -> int:
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
        uow.session.add(RoutedCase(case_id=submitted.case_id, case_number=submitted.case_number,
                                   community_code=submitted.community_code))
        deferred_by_matter: dict[str, list] = {}
        for deferred in submitted.deferred_materials:
            deferred_by_matter.setdefault(deferred.matter_code, []).append(deferred)
        for decision in decisions:
            item = RoutedItem(
                id=new_id(), case_id=submitted.case_id, case_number=submitted.case_number,
                matter_code=decision.matter_code, community_code=submitted.community_code,
                department_code=decision.department_code, level=str(decision.level),
                unit_code=decision.unit_code, status=decision.status, waiting_for=" ".join(decision.waiting_for),
                legal_deadline=decision.legal_deadline, promised_deadline=decision.promised_deadline,
                deadline_provisional=decision.deadline_provisional,
                legal_days=decision.legal_days, promised_days=decision.promised_days,
                deadlines_counted_from=submitted.submitted_at,
                catalogue_version=rules.catalogue.version, routed_at=now, clock_started_at=now, placed_at=now,
                return_count=0, returns_locked=False, updated_at=now, accepting_unit_code=submitted.accepting_unit_code)
            uow.session.add(item)
            for deferred in deferred_by_matter.get(decision.matter_code, ()):
                uow.session.add(DeferredMaterial(item_id=item.id, material_code=deferred.material_code,
                                                 case_id=item.case_id, due_date=deferred.due_date, state="pending"))
            record_change(uow, item, actor=SYSTEM_ACTOR, action="route", from_status=None, at=now,
                          level=item.level, unit_code=item.unit_code,
                          event=routed_event(item, at=now, resident_channels=submitted.resident_channels))
            if submitted.accepting_unit_code:
                _record_received_at_accepting_window(uow, item, submitted, rules, at=now)
            if decision.deadline_provisional:
                log.warning("deadline computed without an official calendar for its year; add the year to "
                            "the calendar override file", matter=decision.matter_code)
        record_new_item_statuses(uow.session)  # the per-status counts, which the flush hook would have written
        insert_new_objects(uow.session)  # Core inserts of the new rows: the unit of work's flush cost more
        uow.commit()
        log.info("case routed", items=len(decisions),
                 levels=sorted({str(decision.level) for decision in decisions}))
        return len(decisions)


def _record_received_at_accepting_window(uow: UnitOfWork, item: RoutedItem, submitted: CaseSubmittedV1,
                                         rules: WorkRules, *, at) -> None:
    """通办: the accepting window holds the materials it received for this item until it forwards them."""
    matter = rules.catalogue.matter(item.matter_code)
    received = [material.name for material in matter.materials if material.code in submitted.received_material_codes]
    accepting_unit = rules.catalogue.units.get(submitted.accepting_unit_code)
    what = (f"{accepting_unit.name if accepting_unit else submitted.accepting_unit_code}收取："
            f"{'、'.join(received) if received else '申请材料'}")
    actor = submitted.accepted_by or submitted.accepting_unit_code
    record_change(uow, item, actor=actor, action="custody", from_status=item.status, at=at, note=what,
                  step="received_at_accepting_window", recorded_by=SYSTEM_ACTOR,
                  accepting_unit_code=submitted.accepting_unit_code,
                  event=item_event(CustodyRecordedV1, item, at=at, actor=actor, step="received_at_accepting_window",
                                   what=what[:300]))


ESCALATION_ORDERS_CONSUMER = "routing.escalation-orders"


def escalate_item(event: CloudEvent, *, unit_of_work: UnitOfWork, rules: WorkRules) -> bool:
    """Move an item up its line on the escalation service's order; False if nothing moved.

    An order made for a level the item has already left (a redelivery, or a return in between), or for
    an item already decided, is recorded as handled and changes nothing.
    """
    order = event.payload()
    if not isinstance(order, EscalationOrderedV1):
        raise PermanentError(f"{ESCALATION_ORDERS_CONSUMER} cannot handle {event.type}")
    with unit_of_work as uow:
        if not uow.claim_message(ESCALATION_ORDERS_CONSUMER, event):
            return False
        item = uow.session.get(RoutedItem, order.item_id)
        if item is None:
            raise PermanentError("escalation order names an item routing does not hold")
        lock_case(uow, item.case_id)
        if is_postgres(uow.session.get_bind()):
            uow.session.refresh(item, with_for_update=True)
        matter = rules.catalogue.matter(item.matter_code)
        above = rules.catalogue.desk_level_above(matter, Level(item.level))
        if item.status not in OPEN_STATUSES or item.level != order.from_level or above is None:
            log.info("escalation order changes nothing", item_id=item.id, status=item.status, level=item.level)
            uow.commit()
            return False
        now = uow.clock.now()
        previous, from_level, from_unit = item.status, item.level, item.unit_code
        item.status = next_status(previous, Action.ESCALATE)
        item.level, item.unit_code = str(above), rules.catalogue.unit_at(item.community_code, above).code
        record_change(uow, item, actor=SYSTEM_ACTOR, action=str(Action.ESCALATE), from_status=previous, at=now,
                      reason_code=order.reason, note=order.note, from_level=from_level, from_unit_code=from_unit,
                      event=item_event(ItemEscalatedV1, item, at=now, from_level=from_level,
                                       from_unit_code=from_unit, reason=order.reason))
        move_to_unit(uow, item, level=item.level, unit_code=item.unit_code, at=now, reason="escalated")
        uow.commit()
        log.info("item escalated", item_id=item.id, to_level=item.level, reason=order.reason)
        return True
