"""Routing's item events and case completions in, into the rates read model: one unit of work each.

A redelivered or replayed event changes nothing (the consumer record, ``UnitOfWork.claim_message``), and every
write is a function of the facts so far, never an increment: first routing, first response, latest deadline,
close time. Events may arrive out of order; an older state never overwrites a newer one. Routing's revisions of
provisional deadlines (``item.deadline-revised``) move the promised deadline the resolution rate is measured
against; an event older than the one whose deadline the row holds brings no deadline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC

import structlog

from services.evaluation import domain
from services.evaluation.adapters.orm import EvaluationCase, EvaluationItem
from shared.catalogue import Catalogue
from shared.events import (
    CaseCompletedV1,
    CloudEvent,
    ItemAcceptedV1,
    ItemClaimedV1,
    ItemDeadlineRevisedV1,
    ItemEvent,
    ItemRejectedV1,
    ItemReleasedV1,
    ItemResolvedV1,
    ItemReturnedV1,
    ItemRoutedV1,
    ItemSupplementRequestedV1,
    ItemSupplementSuppliedV1,
    ItemTerminatedV1,
)
from shared.nameko_ext import PermanentError
from shared.outbox import UnitOfWork, insert_ignoring_duplicates
from shared.workdays import WorkdayCalendar

log = structlog.get_logger(__name__)

CONSUMER = "evaluation.events"
_RANK = {"waiting": 0, "queued": 1, "claimed": 2, "accepted": 3, "supplement_requested": 4,
         "resolved": 5, "rejected": 5, "terminated": 5}


@dataclass(frozen=True)
class EvaluationRules:
    catalogue: Catalogue
    calendar: WorkdayCalendar
    settings: domain.EvaluationSettings
    reasons: domain.ReasonCatalogue
    link_key: str
    link_days: int
    fingerprint_key: str  # HMAC key of raters' phone fingerprints (the service's own secret)


def handle_event(event: CloudEvent, *, unit_of_work: UnitOfWork, rules: EvaluationRules) -> str:
    payload = event.payload()
    if isinstance(payload, CaseCompletedV1):
        with unit_of_work as uow:
            if not uow.claim_message(CONSUMER, event):
                return "duplicate"
            uow.session.execute(insert_ignoring_duplicates(uow.session, EvaluationCase).values(
                case_id=payload.case_id, case_number=payload.case_number, community_code=payload.community_code,
                outcomes=json.dumps({o.item_id: o.status for o in payload.outcomes}),
                completed_at=payload.completed_at))
            uow.commit()
        return payload.event_type
    if not isinstance(payload, ItemEvent):
        raise PermanentError(f"{CONSUMER} cannot handle {event.type}")
    if not payload.changes_item:
        return "ignored"
    with unit_of_work as uow:
        if not uow.claim_message(CONSUMER, event):
            return "duplicate"
        now = uow.clock.now().astimezone(UTC)
        uow.session.execute(insert_ignoring_duplicates(uow.session, EvaluationItem).values(
            item_id=payload.item_id, case_id=payload.case_id, matter_code=payload.matter_code,
            department_code=payload.department_code, level=payload.level, unit_code=payload.unit_code,
            district_code=payload.district_code, community_code=payload.community_code, status=payload.status,
            as_of=payload.occurred_at, responded_in_time=0, concluded_in_time=0, return_count=0,
            flag_return_reset=0, flag_late_suspension=0, flag_reopened=0, updated_at=now))
        item = uow.session.get(EvaluationItem, payload.item_id, with_for_update=True)
        apply(item, payload, rules)
        item.updated_at = now
        uow.commit()
    return payload.event_type


def _newer(item: EvaluationItem, event: ItemEvent) -> bool:
    if event.occurred_at != item.as_of:
        return event.occurred_at > item.as_of
    return _RANK[event.status] >= _RANK[item.status]


def _take_deadline(item: EvaluationItem,
                   event: ItemRoutedV1 | ItemReleasedV1 | ItemSupplementSuppliedV1 | ItemDeadlineRevisedV1) -> None:
    """The promised deadline an item event states, unless the row holds one from a later event (the time ordering
    routing's own events follow): a late or replayed event, or a stale revision (routing's ``item.deadline-revised``
    of a provisional deadline, once its year's holiday arrangement was loaded), never brings back a deadline a newer
    revision or a later change replaced."""
    if item.deadline_as_of is None or event.occurred_at >= item.deadline_as_of:
        item.promised_deadline, item.deadline_as_of = event.promised_deadline, event.occurred_at


def apply(item: EvaluationItem, event: ItemEvent, rules: EvaluationRules) -> None:
    """Fold one item event into the item's row (pure over the row; exposed for the unit tests)."""
    calendar, settings = rules.calendar, rules.settings
    at = event.occurred_at
    if item.status in domain.FINAL_ITEM_STATUSES and event.status not in domain.FINAL_ITEM_STATUSES \
            and at > item.as_of:
        item.flag_reopened = 1  # resolution followed by reopening
    if _newer(item, event) and not isinstance(event, ItemReturnedV1):
        item.status, item.as_of = event.status, at
        item.level, item.unit_code, item.department_code = event.level, event.unit_code, event.department_code
    if isinstance(event, ItemRoutedV1 | ItemReleasedV1):
        first = item.routed_at is None or at < item.routed_at
        if first:
            item.routed_at = at
        # The response clock starts when the item can be worked: at first routing, or at its release when it
        # first waited for a prerequisite.
        if isinstance(event, ItemReleasedV1):
            item.respond_by = domain.respond_deadline(calendar, at, settings.response_working_days)
        elif event.status != "waiting" and (item.respond_by is None or first):
            item.respond_by = domain.respond_deadline(calendar, at, settings.response_working_days)
        if item.clock_started_at is None or isinstance(event, ItemReleasedV1):
            item.clock_started_at = at
        _take_deadline(item, event)
    elif isinstance(event, ItemClaimedV1 | ItemAcceptedV1):
        if item.responded_at is None or at < item.responded_at:
            item.responded_at = at
    elif isinstance(event, ItemSupplementRequestedV1):
        if event.clock_paused and item.clock_started_at and item.promised_deadline and domain.late_suspension(
                calendar, clock_started_at=item.clock_started_at, promised_deadline=item.promised_deadline,
                paused_at=at):
            item.flag_late_suspension = 1
    elif isinstance(event, ItemSupplementSuppliedV1):
        _take_deadline(item, event)
    elif isinstance(event, ItemDeadlineRevisedV1):
        _take_deadline(item, event)
    elif isinstance(event, ItemReturnedV1):
        item.return_count = max(item.return_count, event.return_count)
        if item.clock_started_at and item.promised_deadline and calendar.used_share(
                item.clock_started_at, item.promised_deadline, at) >= 0.8:
            item.flag_return_reset = 1  # a return late in the clock, where a fresh unit would start afresh
    elif isinstance(event, ItemResolvedV1 | ItemRejectedV1 | ItemTerminatedV1):
        item.closed_at = at
    item.responded_in_time = int(item.responded_at is not None and item.respond_by is not None
                                 and item.responded_at <= item.respond_by)
    item.concluded_in_time = int(item.status in ("resolved", "rejected") and item.closed_at is not None
                                 and item.promised_deadline is not None and item.closed_at <= item.promised_deadline)
