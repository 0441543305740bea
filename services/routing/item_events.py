"""Building item events and history entries from an item row: one place, so every event carries the
same placement fields and every change leaves a history line."""

from __future__ import annotations

import json
from datetime import datetime

from services.routing.adapters.orm import ItemHistoryEntry, RoutedItem
from shared.events import ItemEvent, ItemRoutedV1
from shared.outbox import UnitOfWork


def item_event(event_class: type[ItemEvent], item: RoutedItem, *, at: datetime, **fields) -> ItemEvent:
    return event_class(
        item_id=item.id, case_id=item.case_id, case_number=item.case_number, matter_code=item.matter_code,
        department_code=item.department_code, level=item.level, unit_code=item.unit_code,
        district_code=item.unit_code[:6] + "000000", community_code=item.community_code, status=item.status,
        occurred_at=at, **fields)


def record_change(uow: UnitOfWork, item: RoutedItem, *, actor: str, action: str, from_status: str | None,
                  at: datetime, event: ItemEvent | None = None, reason_code: str | None = None, note: str = "",
                  **details) -> None:
    """Append the history line and record the event, in the caller's transaction."""
    uow.session.add(ItemHistoryEntry(item_id=item.id, at=at, actor=actor, action=action, from_status=from_status,
                                     to_status=item.status, reason_code=reason_code, note=note,
                                     details=json.dumps(details, ensure_ascii=False, default=str)))
    item.updated_at = at
    if event is not None:
        uow.publish(event)


def routed_event(item: RoutedItem, *, at: datetime, reason: str = "submitted",
                 resident_channels: tuple[str, ...] | None = None) -> ItemRoutedV1:
    """The item.routed event announcing the item in its current unit's queue (``resident_channels``: passed on
    from case.submitted on the first routing)."""
    return item_event(ItemRoutedV1, item, at=at, route_reason=reason, waiting_for=item.waiting_for_codes,
                      legal_deadline=item.legal_deadline, promised_deadline=item.promised_deadline,
                      deadline_provisional=item.deadline_provisional, catalogue_version=item.catalogue_version,
                      accepting_unit_code=item.accepting_unit_code, resident_channels=resident_channels)


def move_to_unit(uow: UnitOfWork, item: RoutedItem, *, level: str, unit_code: str, at: datetime, reason: str) -> None:
    """Put the item in another unit's queue (after a return or an escalation): no owner there yet, the
    return limit counts from now, the resident's deadlines stay, and item.routed announces it."""
    item.level, item.unit_code = str(level), unit_code
    item.claimed_by = None
    item.placed_at = at
    uow.publish(routed_event(item, at=at, reason=reason))
