"""Routing's item events in, one unit of work each: the read model, the internal loop, 吹哨 calls, and the
deadline rows that follow from where the item now stands.

Events may arrive more than once (the consumer record makes a redelivery change nothing) and out of order
(several workers, several replicas): the item row is locked for the whole change, an older state never
overwrites a newer one, and a closed item never reopens.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import select

from services.escalation import failure_reports
from services.escalation.adapters.orm import DeferralGrant, EscalationItem, WhistleCall
from services.escalation.domain import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    SUPERVISION_KINDS,
    DeadlineKind,
    ItemClock,
    community_loop_applies,
    community_loop_ends,
    loop_outcome,
    shift_legal_deadline,
    street_loop_ends,
    supervision_due,
    whistle_desks,
    working_seconds,
)
from services.escalation.records import (
    EscalationRules,
    arm,
    cancel,
    cancel_all,
    deadlines_of,
    lock,
    open_whistle_call,
    record_action,
    supervision_key,
)
from shared.catalogue import Level, Matter
from shared.events import (
    CloudEvent,
    ItemDeadlineRevisedV1,
    ItemEscalatedV1,
    ItemEvent,
    ItemReleasedV1,
    ItemReturnedV1,
    ItemRoutedV1,
    ItemSupplementRequestedV1,
    ItemSupplementSuppliedV1,
    ReportFiledV1,
)
from shared.nameko_ext import PermanentError
from shared.outbox import UnitOfWork, insert_ignoring_duplicates

log = structlog.get_logger(__name__)

CONSUMER = "escalation.events"

# Within one instant (a frozen clock, or two changes in the same millisecond) the later step of the
# lifecycle wins; a final status is never undone by anything but a later final one.
_STATUS_RANK = {"waiting": 0, "queued": 1, "claimed": 2, "accepted": 3, "supplement_requested": 4,
                "resolved": 5, "rejected": 5, "terminated": 5}


def handle_event(event: CloudEvent, *, unit_of_work: UnitOfWork, rules: EscalationRules) -> str:
    """Apply one event; returns what was done ("duplicate" for a redelivery), for logs and test waiters."""
    payload = event.payload()
    if isinstance(payload, ReportFiledV1):
        return failure_reports.take_filed_report(event, payload, unit_of_work=unit_of_work, rules=rules)
    if not isinstance(payload, ItemEvent):
        raise PermanentError(f"{CONSUMER} cannot handle {event.type}")
    structlog.contextvars.bind_contextvars(item_id=payload.item_id, case_id=payload.case_id)
    with unit_of_work as uow:
        if not uow.claim_message(CONSUMER, event):
            return "duplicate"
        now = uow.clock.now().astimezone(UTC)
        item = _lock_or_create(uow, payload, now)
        apply_item_event(uow, item, payload, rules=rules, now=now)
        item.updated_at = now
        uow.commit()
    return payload.event_type


def _lock_or_create(uow: UnitOfWork, event: ItemEvent, now: datetime) -> EscalationItem:
    # Insert-or-nothing, then lock: two first events of one item in two workers never collide.
    uow.session.execute(insert_ignoring_duplicates(uow.session, EscalationItem).values(
        item_id=event.item_id, case_id=event.case_id, case_number=event.case_number, matter_code=event.matter_code,
        department_code=event.department_code, community_code=event.community_code,
        district_code=event.district_code, level=event.level, unit_code=event.unit_code, status=event.status,
        as_of=event.occurred_at, placed_at=event.occurred_at, clock_cycle=0, updated_at=now))
    return lock(uow, EscalationItem, event.item_id)


def _is_newer(item: EscalationItem, event: ItemEvent) -> bool:
    if item.status in FINAL_STATUSES and event.status not in FINAL_STATUSES:
        return False
    if event.occurred_at != item.as_of:
        return event.occurred_at > item.as_of
    return _STATUS_RANK[event.status] >= _STATUS_RANK[item.status]


def apply_item_event(uow: UnitOfWork, item: EscalationItem, event: ItemEvent, *, rules: EscalationRules,
                     now: datetime) -> None:
    matter = rules.catalogue.matters.get(event.matter_code)
    was_final = item.status in FINAL_STATUSES
    newer = _is_newer(item, event)
    # A return names the unit that gave the item back; the item.routed that follows names where it went.
    if newer and not isinstance(event, ItemReturnedV1):
        if (event.level, event.unit_code) != (item.level, item.unit_code):
            item.placed_at = event.occurred_at
        item.status, item.level, item.unit_code = event.status, event.level, event.unit_code
        item.department_code, item.district_code = event.department_code, event.district_code
        item.as_of = event.occurred_at

    calendar = rules.calendar
    if isinstance(event, ItemRoutedV1):
        item.routed_at = item.routed_at or event.occurred_at
        if event.route_reason == "submitted":
            item.first_level = item.first_level or event.level
        if item.promised_deadline is None:
            _start_clock(item, event.occurred_at if event.route_reason == "submitted" else None,
                         event.promised_deadline, event.legal_deadline, rules)
        elif newer and item.clock_paused_at is None and event.promised_deadline != item.promised_deadline:
            # Routing keeps the deadlines on a return or an escalation; follow it should that ever change.
            item.promised_deadline, item.legal_deadline = event.promised_deadline, event.legal_deadline
        if (event.route_reason == "submitted" and matter is not None and item.loop_state is None
                and community_loop_applies(matter, Level(event.level)) and item.status in OPEN_STATUSES
                and item.status != "waiting" and item.level == Level.COMMUNITY):
            item.loop_state = "community"
            item.loop_ends_at = community_loop_ends(calendar, matter, event.occurred_at)
            arm(uow, key=f"{DeadlineKind.LOOP_COMMUNITY}:{item.item_id}", kind=DeadlineKind.LOOP_COMMUNITY,
                subject_type="item", subject_id=item.item_id, due_at=item.loop_ends_at, now=now)
    elif isinstance(event, ItemReleasedV1):
        if item.clock_started_at != event.occurred_at:  # a new clock: its 督办 stages fire afresh
            if item.clock_started_at is not None or item.promised_deadline is not None:
                item.clock_cycle += 1
            _start_clock(item, event.occurred_at, event.promised_deadline, event.legal_deadline, rules)
            item.clock_paused_at = None
    elif isinstance(event, ItemSupplementRequestedV1):
        if event.clock_paused and newer:
            item.clock_paused_at = event.occurred_at
    elif isinstance(event, ItemSupplementSuppliedV1):
        if item.promised_deadline is not None and event.promised_deadline != item.promised_deadline:
            if item.legal_deadline is not None:
                item.legal_deadline = shift_legal_deadline(calendar, item.legal_deadline, item.promised_deadline,
                                                           event.promised_deadline)
            item.promised_deadline = event.promised_deadline
        if newer:
            item.clock_paused_at = None
        _settle_granted_materials(uow, item, event, now=now)
    elif isinstance(event, ItemDeadlineRevisedV1):
        _follow_revised_deadlines(uow, item, event, matter, rules=rules, now=now)
    elif isinstance(event, ItemEscalatedV1):
        record_action(uow, "item_escalated", at=event.occurred_at, item=item, level=event.level,
                      unit_code=event.unit_code, from_level=event.from_level, reason=event.reason)
        if item.status in OPEN_STATUSES and item.level == event.level and matter is not None:
            _call_in(uow, item, matter, rules=rules, now=now)

    _follow_loop(uow, item, event, matter, rules=rules, now=now)
    if item.status in FINAL_STATUSES and not was_final:
        _close(uow, item, at=event.occurred_at)
    reconcile_supervision(uow, item, rules=rules, now=now)


def _start_clock(item: EscalationItem, started_at: datetime | None, promised: datetime, legal: datetime,
                 rules: EscalationRules) -> None:
    item.clock_started_at = started_at
    item.promised_deadline, item.legal_deadline = promised, legal
    # Without the start (first seen after a return or escalation) the warning share cannot be measured.
    item.promised_budget_seconds = (working_seconds(rules.calendar, started_at, promised)
                                    if started_at is not None else None)


def _follow_revised_deadlines(uow: UnitOfWork, item: EscalationItem, event: ItemDeadlineRevisedV1,
                              matter: Matter | None, *, rules: EscalationRules, now: datetime) -> None:
    """Routing counted provisional deadlines again once their year's holiday arrangement was loaded. Taken
    only where this service still holds the deadlines the revision replaced: a later change already built on
    the revised ones (a supplement that moved the promised deadline on) is not undone by a late revision. The
    warning budget and the internal-loop boxes were counted on the same provisional calendar, so they are
    counted again too; reconcile_supervision then moves the pending 督办 rows."""
    calendar = rules.calendar
    if item.promised_deadline is not None and item.promised_deadline == event.previous_promised_deadline:
        item.promised_deadline = event.promised_deadline
        if item.clock_started_at is not None and matter is not None:
            limit_end = calendar.deadline_at(item.clock_started_at, matter.promised_days)[0]
            item.promised_budget_seconds = working_seconds(calendar, item.clock_started_at, limit_end)
    if item.legal_deadline is not None and item.legal_deadline == event.previous_legal_deadline:
        item.legal_deadline = event.legal_deadline
    if (item.loop_state == "community" and matter is not None and item.routed_at is not None
            and matter.internal_loop_days is not None):
        item.loop_ends_at = community_loop_ends(calendar, matter, item.routed_at)
        arm(uow, key=f"{DeadlineKind.LOOP_COMMUNITY}:{item.item_id}", kind=DeadlineKind.LOOP_COMMUNITY,
            subject_type="item", subject_id=item.item_id, due_at=item.loop_ends_at, now=now)
    elif item.loop_state == "street" and item.placed_at is not None:
        arm(uow, key=f"{DeadlineKind.LOOP_STREET}:{item.item_id}", kind=DeadlineKind.LOOP_STREET,
            subject_type="item", subject_id=item.item_id,
            due_at=street_loop_ends(calendar, item.placed_at, rules.settings.street_loop_days), now=now)
    record_action(uow, "deadlines_revised", at=event.occurred_at, item=item, level=item.level,
                  unit_code=item.unit_code)


def reconcile_supervision(uow: UnitOfWork, item: EscalationItem, *, rules: EscalationRules, now: datetime) -> None:
    """Make the 督办 deadline rows match where the item's clock stands: armed while it runs, cancelled while it
    is paused or closed, moved with its deadlines; a stage that has fired in this cycle never fires again."""
    due = supervision_due(ItemClock(status=item.status, promised_deadline=item.promised_deadline,
                                    legal_deadline=item.legal_deadline,
                                    promised_budget_seconds=item.promised_budget_seconds,
                                    paused=item.clock_paused_at is not None),
                          calendar=rules.calendar, warning_share=rules.settings.warning_share)
    known = deadlines_of(uow, item.item_id, SUPERVISION_KINDS)
    for kind in SUPERVISION_KINDS:
        key = supervision_key(kind, item)
        if kind in due:
            arm(uow, key=key, kind=kind, subject_type="item", subject_id=item.item_id, due_at=due[kind], now=now,
                known=known)
        else:
            cancel(uow, key=key, known=known)


def _follow_loop(uow: UnitOfWork, item: EscalationItem, event: ItemEvent, matter: Matter | None, *,
                 rules: EscalationRules, now: datetime) -> None:
    """The internal loop: how the community's own time box ended, then the street's box, then done."""
    if item.loop_state == "community":
        left_by = None
        if isinstance(event, ItemEscalatedV1) or (isinstance(event, ItemRoutedV1)
                                                  and event.route_reason == "escalated"):
            left_by = "escalated" if event.level != Level.COMMUNITY else None
        elif isinstance(event, ItemReturnedV1) and event.level == Level.COMMUNITY:
            left_by = "returned"
        elif isinstance(event, ItemRoutedV1) and event.route_reason == "returned" and event.level != Level.COMMUNITY:
            left_by = "returned"
        outcome = None
        if left_by is not None or event.status in FINAL_STATUSES:
            outcome = loop_outcome(status=event.status, occurred_at=event.occurred_at,
                                   loop_ends_at=item.loop_ends_at, left_by=left_by)
        if outcome is not None:
            item.loop_outcome, item.loop_ended_at = str(outcome), event.occurred_at
            item.loop_state = "left" if left_by else "done"
            cancel(uow, key=f"{DeadlineKind.LOOP_COMMUNITY}:{item.item_id}")
            record_action(uow, "loop_ended", at=event.occurred_at, item=item, level=str(Level.COMMUNITY),
                          unit_code=item.community_code, outcome=str(outcome))
    if item.loop_state in ("left", "street") and matter is not None:
        street_key = f"{DeadlineKind.LOOP_STREET}:{item.item_id}"
        if item.status in OPEN_STATUSES and item.level == Level.STREET and item.loop_state == "left":
            item.loop_state = "street"
            arm(uow, key=street_key, kind=DeadlineKind.LOOP_STREET, subject_type="item", subject_id=item.item_id,
                due_at=street_loop_ends(rules.calendar, item.placed_at or event.occurred_at,
                                        rules.settings.street_loop_days), now=now)
        elif item.status in FINAL_STATUSES or item.level == Level.DISTRICT:
            cancel(uow, key=street_key)
            item.loop_state = "done"


def _close(uow: UnitOfWork, item: EscalationItem, *, at: datetime) -> None:
    """A final item owes nothing more: its timers and open calls go."""
    item.closed_at = at
    cancel_all(uow, subject_id=item.item_id, kinds=(DeadlineKind.LOOP_COMMUNITY, DeadlineKind.LOOP_STREET,
                                                    DeadlineKind.WHISTLE_ACK))
    for call in uow.session.scalars(select(WhistleCall).where(WhistleCall.item_id == item.item_id,
                                                              WhistleCall.state == "called")):
        call.state = "cancelled"


def _call_in(uow: UnitOfWork, item: EscalationItem, matter: Matter, *, rules: EscalationRules,
             now: datetime) -> None:
    """吹哨: the item reached this level by escalation; call in the departments it names. Calls still open at a
    level it has left are superseded by the new ones."""
    for stale in uow.session.scalars(select(WhistleCall).where(WhistleCall.item_id == item.item_id,
                                                               WhistleCall.state == "called",
                                                               WhistleCall.caller_level != item.level)):
        stale.state = "cancelled"
        cancel(uow, key=f"{DeadlineKind.WHISTLE_ACK}:{stale.call_id}")
    for desk in whistle_desks(rules.catalogue, matter, item.community_code, Level(item.level)):
        call = open_whistle_call(uow, item, desk, caller_level=item.level, caller_unit_code=item.unit_code,
                                 rules=rules, now=now)
        if call is None:
            continue
        record_action(uow, "whistle_called", at=now, item=item, level=call.level, unit_code=call.unit_code,
                      called_department=call.department_code, caller_level=call.caller_level)
        log.info("departments called in", department=call.department_code, level=call.level)


def _settle_granted_materials(uow: UnitOfWork, item: EscalationItem, event: ItemSupplementSuppliedV1, *,
                              now: datetime) -> None:
    """容缺 granted by a specialist: the materials routing records as supplied are no longer owed."""
    query = select(DeferralGrant).where(DeferralGrant.item_id == item.item_id, DeferralGrant.state == "pending")
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    for grant in uow.session.scalars(query):
        still_owed = sorted(set(grant.material_codes.split()) - set(event.material_codes))
        if still_owed:
            grant.material_codes = " ".join(still_owed)
            continue
        grant.state, grant.settled_at = "supplied", now
        for kind in (DeadlineKind.DEFERRAL_REMINDER, DeadlineKind.DEFERRAL_DUE):
            cancel(uow, key=f"{kind}:{grant.id}")
        record_action(uow, "deferral_supplied", at=now, item=item, grant_id=grant.id, report_ref=grant.report_id)
