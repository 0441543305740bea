"""What follows when an item reaches a final state: dependents released or closed, the case completed once.

Called inside the unit of work of the change that caused it, with the case row locked, so two items
of one case finishing at the same moment (in two replicas) still complete the case exactly once.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select

from services.routing.adapters.orm import DeferredMaterial, RoutedCase, RoutedItem
from services.routing.item_events import item_event, record_change
from services.routing.lifecycle import (
    FINAL_STATUSES,
    Action,
    next_status,
    one_trip_delivery,
    prerequisite_failed,
    prerequisites_met,
)
from shared.catalogue import Catalogue
from shared.db import is_postgres
from shared.events import CaseCompletedV1, Delivery, ItemOutcome, ItemReleasedV1, ItemTerminatedV1
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar

SYSTEM_ACTOR = "system"


def lock_case(uow: UnitOfWork, case_id: str) -> RoutedCase:
    """Lock the case row (PostgreSQL); SQLite serialises writers anyway."""
    query = select(RoutedCase).where(RoutedCase.case_id == case_id)
    if is_postgres(uow.session.get_bind()):
        query = query.with_for_update()
    return uow.session.scalars(query).one()


def items_of_case(uow: UnitOfWork, case_id: str) -> list[RoutedItem]:
    query = select(RoutedItem).where(RoutedItem.case_id == case_id).order_by(RoutedItem.routed_at, RoutedItem.id)
    if is_postgres(uow.session.get_bind()):
        query = query.with_for_update()
    return list(uow.session.scalars(query))


def terminate_item(uow: UnitOfWork, item: RoutedItem, *, reason_code: str, note: str, now: datetime) -> None:
    previous = item.status
    item.status = next_status(item.status, Action.TERMINATE)
    item.closed_reason = reason_code
    item.claimed_by = None
    record_change(uow, item, actor=SYSTEM_ACTOR, action=str(Action.TERMINATE), from_status=previous, at=now,
                  reason_code=reason_code, note=note,
                  event=item_event(ItemTerminatedV1, item, at=now, reason_code=reason_code, note=note))


def settle_case(uow: UnitOfWork, case: RoutedCase, *, catalogue: Catalogue, calendar: WorkdayCalendar,
                now: datetime) -> None:
    """Release or close waiting dependents, then complete the case if every item is final."""
    items = items_of_case(uow, case.case_id)
    statuses = {item.matter_code: item.status for item in items}
    changed = True
    while changed:  # closing one dependent may close its own dependents
        changed = False
        for item in items:
            if item.status != "waiting":
                continue
            failed = prerequisite_failed(item.waiting_for_codes, statuses)
            if failed is not None:
                reason = "prerequisite_rejected" if statuses[failed] == "rejected" else "prerequisite_terminated"
                terminate_item(uow, item, reason_code=reason, note=f"prerequisite {failed} was {statuses[failed]}",
                               now=now)
            elif prerequisites_met(item.waiting_for_codes, statuses):
                release_item(uow, item, catalogue=catalogue, calendar=calendar, now=now)
            else:
                continue
            statuses[item.matter_code] = item.status
            changed = True
    if case.completed_at is None and all(item.status in FINAL_STATUSES for item in items):
        complete_case(uow, case, items, catalogue=catalogue, now=now)


def release_item(uow: UnitOfWork, item: RoutedItem, *, catalogue: Catalogue, calendar: WorkdayCalendar,
                 now: datetime) -> None:
    """The prerequisite resolved: the item enters its queue with a fresh clock."""
    matter = catalogue.matter(item.matter_code)
    previous = item.status
    item.status = next_status(item.status, Action.RELEASE)
    item.clock_started_at = now
    item.legal_deadline, legal_provisional = calendar.deadline_at(now, matter.legal_days)
    item.promised_deadline, promised_provisional = calendar.deadline_at(now, matter.promised_days)
    item.deadline_provisional = legal_provisional or promised_provisional
    item.legal_days, item.promised_days = matter.legal_days, matter.promised_days
    item.deadlines_counted_from = now
    record_change(uow, item, actor=SYSTEM_ACTOR, action=str(Action.RELEASE), from_status=previous, at=now,
                  event=item_event(ItemReleasedV1, item, at=now, legal_deadline=item.legal_deadline,
                                   promised_deadline=item.promised_deadline,
                                   deadline_provisional=item.deadline_provisional))


def complete_case(uow: UnitOfWork, case: RoutedCase, items: list[RoutedItem], *, catalogue: Catalogue,
                  now: datetime) -> None:
    case.completed_at = now
    deliveries = [Delivery.model_validate(json.loads(item.delivery_json)) for item in items
                  if item.status == "resolved" and item.delivery_json]
    community_name = catalogue.units[case.community_code].name if case.community_code in catalogue.units else ""
    uow.publish(CaseCompletedV1(
        case_id=case.case_id, case_number=case.case_number, community_code=case.community_code,
        outcomes=tuple(ItemOutcome(item_id=item.id, matter_code=item.matter_code, status=item.status)
                       for item in items),
        delivery=one_trip_delivery(deliveries, community_name), completed_at=now))


def pending_deferrals(uow: UnitOfWork, item_id: str) -> list[DeferredMaterial]:
    return list(uow.session.scalars(select(DeferredMaterial).where(DeferredMaterial.item_id == item_id,
                                                                   DeferredMaterial.state == "pending")))
