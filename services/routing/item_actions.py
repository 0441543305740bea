"""Staff and department work on items: the queue, one item's view, and every action through the state table.

Each action locks the item's case, checks the caller's jurisdiction and the item's owner, asks the
lifecycle table whether the transition is allowed, applies it, appends history, records the event,
then settles the case (dependents released or closed, completion) in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import structlog
from sqlalchemy import func, or_, select

from services.routing.adapters.orm import (
    DISTRICT_PREFIX_LENGTH,
    OPEN_STATUS_LIST,
    STREET_PREFIX_LENGTH,
    DeferredMaterial,
    ItemHistoryEntry,
    RoutedItem,
)
from services.routing.follow_ups import lock_case, pending_deferrals, settle_case
from services.routing.item_events import item_event, move_to_unit, record_change
from services.routing.lifecycle import (
    OPEN_STATUSES,
    Action,
    ReturnPolicy,
    TransitionRefused,
    decide_assignment,
    decide_return,
    next_status,
    resume_after_pause,
)
from services.routing.schemas import (
    CodedDecision,
    CustodyStep,
    DeferredMaterialView,
    HistoryEntryView,
    ItemView,
    Resolution,
    SupplementRecord,
    SupplementRequest,
)
from shared.auth import Principal
from shared.catalogue import Catalogue, Level
from shared.events import (
    CROSS_LINE_CUSTODY_STEPS,
    CustodyRecordedV1,
    Delivery,
    ItemAcceptedV1,
    ItemClaimedV1,
    ItemRejectedV1,
    ItemResolvedV1,
    ItemReturnedV1,
    ItemSupplementRequestedV1,
    ItemSupplementSuppliedV1,
)
from shared.outbox import UnitOfWork
from shared.workdays import SHANGHAI, WorkdayCalendar

log = structlog.get_logger(__name__)

# A queue says how many items match up to this many ("1000+" beyond): an exact count of a district's years of
# closed items would cost a scan of all of them on every page.
COUNT_CAP = 1000
UNIT_CODE_LENGTH = 12


class ItemForbidden(TransitionRefused):
    status = 403


class ItemNotFound(TransitionRefused):
    status = 404


class InvalidAction(TransitionRefused):
    status = 422


@dataclass(frozen=True)
class QueuePosition:
    """Where a queue page ended: the sort key of its last item (promised deadline, then id)."""

    promised_deadline: datetime
    item_id: str


@dataclass(frozen=True)
class WorkRules:
    catalogue: Catalogue
    calendar: WorkdayCalendar
    return_policy: ReturnPolicy = ReturnPolicy()


def jurisdiction_prefix(principal: Principal, catalogue: Catalogue) -> str:
    if principal.kind not in ("staff", "department") or principal.unit_code not in catalogue.units:
        raise ItemForbidden("item_forbidden", "only staff and department systems work items")
    return catalogue.jurisdiction_prefix(principal.unit_code)


def check_in_scope(principal: Principal, item: RoutedItem, catalogue: Catalogue, *,
                   residents_items_too: bool = False, accepted_here_too: bool = False) -> None:
    """The item sits at a unit of the caller's jurisdiction (and department, for a department system).

    ``residents_items_too``: also an item of a case from the caller's communities, wherever it is
    handled, so a community's social worker can record hand-overs for her residents' items at the street.
    ``accepted_here_too``: also an item whose case the caller's unit took in for another line (通办), to follow
    it and record the custody of its materials and result; working it stays with the entitled unit.
    """
    prefix = jurisdiction_prefix(principal, catalogue)
    placed_here = (item.unit_code.startswith(prefix)
                   or (residents_items_too and item.community_code.startswith(prefix))
                   or (accepted_here_too and item.accepting_unit_code is not None
                       and item.accepting_unit_code.startswith(prefix)))
    if not placed_here or not principal.may_see_department(item.department_code):
        raise ItemForbidden("item_forbidden", "this item is outside your jurisdiction")


@dataclass(frozen=True)
class QueuePage:
    items: list[ItemView]
    next_position: QueuePosition | None   # where the next page starts; None on the last page
    count: int                            # matching items, counted up to COUNT_CAP
    count_exact: bool                     # False: there are more than COUNT_CAP


def _scope_column(prefix: str):
    """The column whose equality with ``prefix`` is "in the jurisdiction" (unit_code LIKE prefix || '%'): the stored
    district or street prefix, or the unit itself for a community (see RoutedItem.district_prefix)."""
    if len(prefix) == DISTRICT_PREFIX_LENGTH:
        return RoutedItem.district_prefix
    if len(prefix) == STREET_PREFIX_LENGTH:
        return RoutedItem.street_prefix
    return RoutedItem.unit_code


def list_queue(principal: Principal, *, unit_of_work: UnitOfWork, rules: WorkRules, now: datetime,
               status: str | None = None, matter: str | None = None, overdue: bool | None = None,
               limit: int = 50, after: QueuePosition | None = None) -> QueuePage:
    """The caller's open items (or those of one status), closest to their promised deadline first, a page at a
    time: the next page starts after the last item of this one (keyset), so every page costs the same, and
    each query is one ordered range of an index made for it (RoutedItem's __table_args__)."""
    prefix = jurisdiction_prefix(principal, rules.catalogue)
    if not principal.may_see_department(principal.department):
        # a department system whose token names no department sees nothing, not everything
        return QueuePage([], None, 0, True)
    conditions = [_scope_column(prefix) == prefix]
    if principal.department is not None:
        conditions.append(RoutedItem.department_code == principal.department)
    # The open statuses written out as the partial indexes' predicate is, so the planner can prove it.
    conditions.append(RoutedItem.status == status if status else RoutedItem.status.in_(OPEN_STATUS_LIST))
    if matter:
        conditions.append(RoutedItem.matter_code == matter)
    if overdue is not None:
        conditions.append((RoutedItem.promised_deadline < now) if overdue else (RoutedItem.promised_deadline >= now))
    counted = select(func.count()).select_from(
        select(RoutedItem.id).where(*conditions).limit(COUNT_CAP + 1).subquery())
    page = conditions
    if after is not None:
        # (promised_deadline, id) > (after): the first inequality alone bounds the index range.
        page = [*conditions, RoutedItem.promised_deadline >= after.promised_deadline,
                or_(RoutedItem.promised_deadline > after.promised_deadline, RoutedItem.id > after.item_id)]
    with unit_of_work as uow:
        # The count rides along with the page (an uncorrelated subquery, run once): one round trip, not two.
        rows = uow.session.execute(select(RoutedItem, counted.scalar_subquery()).where(*page)
                                   .order_by(RoutedItem.promised_deadline, RoutedItem.id).limit(limit + 1)).all()
        more = len(rows) > limit
        items = [item for item, _ in rows[:limit]]
        matching = rows[0][1] if rows else uow.session.scalar(counted)
        # One query for the page's 容缺 materials, not one per item (a queue page is read often).
        deferrals: dict[str, list[DeferredMaterial]] = {item.id: [] for item in items}
        for deferral in uow.session.scalars(select(DeferredMaterial).where(DeferredMaterial.item_id.in_(deferrals))
                                            .order_by(DeferredMaterial.material_code)):
            deferrals[deferral.item_id].append(deferral)
        views = [item_view(uow, item, rules, now, deferrals=deferrals[item.id]) for item in items]
        following = QueuePosition(items[-1].promised_deadline, items[-1].id) if more and items else None
    return QueuePage(views, following, min(matching, COUNT_CAP), matching <= COUNT_CAP)


def list_accepted_here(principal: Principal, *, unit_of_work: UnitOfWork, rules: WorkRules, now: datetime,
                       status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[ItemView], int]:
    """通办: the items of cases the caller's unit took in for other lines, in any status, newest first, so the
    window can forward materials and hand results back."""
    prefix = jurisdiction_prefix(principal, rules.catalogue)
    # Unit codes are 12 digits: the codes starting with the prefix are one range of the accepting-unit index, in
    # any collation (LIKE 'prefix%' uses no index under PostgreSQL's C.UTF-8).
    query = select(RoutedItem).where(RoutedItem.accepting_unit_code.between(
        prefix.ljust(UNIT_CODE_LENGTH, "0"), prefix.ljust(UNIT_CODE_LENGTH, "9")))
    if principal.department:
        query = query.where(RoutedItem.department_code == principal.department)
    if status:
        query = query.where(RoutedItem.status == status)
    with unit_of_work as uow:
        total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = uow.session.scalars(query.order_by(RoutedItem.routed_at.desc(), RoutedItem.id)
                                   .limit(limit).offset(offset)).all()
        return [item_view(uow, item, rules, now) for item in rows], total


def get_item(item_id: str, principal: Principal, *, unit_of_work: UnitOfWork, rules: WorkRules,
             now: datetime) -> ItemView:
    with unit_of_work as uow:
        item = _find(uow, item_id)
        check_in_scope(principal, item, rules.catalogue, accepted_here_too=True)
        return item_view(uow, item, rules, now, with_history=True)


def act(item_id: str, action: Action, principal: Principal, body, *, unit_of_work: UnitOfWork, rules: WorkRules,
        now: datetime) -> ItemView:
    """Apply one staff action; raises TransitionRefused (409), ItemForbidden (403), ItemNotFound, InvalidAction."""
    with unit_of_work as uow:
        item = _find(uow, item_id)
        check_in_scope(principal, item, rules.catalogue)
        case = lock_case(uow, item.case_id)
        if uow.session.get_bind().dialect.name == "postgresql":
            uow.session.refresh(item, with_for_update=True)  # read it again under the case lock
        if item.claimed_by not in (None, principal.name) and action is not Action.CLAIM:
            raise TransitionRefused("not_item_owner", f"the item is claimed by {item.claimed_by}",
                                    current_status=item.status, claimed_by=item.claimed_by)
        if action is Action.CLAIM and item.claimed_by not in (None, principal.name):
            raise TransitionRefused("claimed_by_other", f"the item is already claimed by {item.claimed_by}",
                                    current_status=item.status, claimed_by=item.claimed_by)
        previous = item.status
        item.status = next_status(previous, action)
        APPLY[action](uow, item, principal, body, rules, now, previous)
        settle_case(uow, case, catalogue=rules.catalogue, calendar=rules.calendar, now=now)
        # the answer is read before the commit: read after it, a database lost just then turned an action that
        # had taken effect into a 500, and the clerk did it again (the fault suite's return taken twice)
        view = item_view(uow, item, rules, now, with_history=True)
        uow.commit()
        return view


def record_custody(item_id: str, principal: Principal, body: CustodyStep, *, unit_of_work: UnitOfWork,
                   rules: WorkRules, now: datetime) -> ItemView:
    """代办: a hand-over of material or result; recorded, not a change of status."""
    with unit_of_work as uow:
        item = _find(uow, item_id)
        check_in_scope(principal, item, rules.catalogue, residents_items_too=True, accepted_here_too=True)
        if body.step in CROSS_LINE_CUSTODY_STEPS and item.accepting_unit_code is None:
            raise InvalidAction("not_taken_in_for_another_line",
                                f"{body.step} is a step of an item taken in by another line's window (通办)")
        if item.status in ("rejected", "terminated"):
            raise TransitionRefused("transition_not_allowed", f"nothing changes hands for a {item.status} item",
                                    current_status=item.status)
        actor = body.agent_id or principal.name
        record_change(uow, item, actor=actor, action="custody", from_status=item.status, at=now,
                      note=body.what, step=body.step, recorded_by=principal.actor,
                      event=item_event(CustodyRecordedV1, item, at=now, actor=actor, step=body.step, what=body.what))
        view = item_view(uow, item, rules, now, with_history=True)   # before the commit, as in act()
        uow.commit()
        return view


# ── one function per action: the effects beyond the status change ──────────────────────────────────


def _claim(uow, item, principal, body, rules, now, previous):
    item.claimed_by = principal.name
    record_change(uow, item, actor=principal.actor, action="claim", from_status=previous, at=now,
                  event=item_event(ItemClaimedV1, item, at=now, actor=principal.name))


def _accept(uow, item, principal, body, rules, now, previous):
    record_change(uow, item, actor=principal.actor, action="accept", from_status=previous, at=now, note=body.note,
                  event=item_event(ItemAcceptedV1, item, at=now, actor=principal.name))


def _request_supplement(uow, item, principal, body: SupplementRequest, rules, now, previous):
    matter = rules.catalogue.matter(item.matter_code)
    unknown = sorted(set(body.materials) - {material.code for material in matter.materials})
    if unknown:
        raise InvalidAction("unknown_material", "these materials are not asked for by the matter", materials=unknown)
    due = rules.calendar.add_workdays(now.astimezone(SHANGHAI).date(), body.due_in_working_days)
    if due.provisional:
        log.warning("supplement due date counted in a year without the official holiday arrangement",
                    item_id=item.id, years=sorted(due.assumed_years))
    if matter.supplement_pauses_clock:
        item.clock_paused_at = now
    item.supplement_requested_on = now.astimezone(SHANGHAI).date()
    item.supplement_due_days = body.due_in_working_days
    item.supplement_due_date, item.supplement_due_date_provisional = due.date, due.provisional
    record_change(uow, item, actor=principal.actor, action="request-supplement", from_status=previous, at=now,
                  note=body.note, materials=body.materials, due_date=due.date.isoformat(),
                  due_date_provisional=due.provisional,
                  event=item_event(ItemSupplementRequestedV1, item, at=now, actor=principal.name,
                                   material_codes=tuple(body.materials), due_date=due.date,
                                   due_date_provisional=due.provisional,
                                   clock_paused=matter.supplement_pauses_clock))


def _record_supplement(uow, item, principal, body: SupplementRecord, rules, now, previous):
    owed = {deferral.material_code: deferral for deferral in pending_deferrals(uow, item.id)}
    for code in body.materials:
        if code in owed:
            owed[code].state = "supplied"
    if previous != "supplement_requested" and not set(body.materials) & set(owed):
        raise TransitionRefused("nothing_owed", "none of these materials is owed for this item",
                                current_status=previous)
    if item.clock_paused_at is not None:
        moved = resume_after_pause(rules.calendar, item.promised_deadline, item.clock_paused_at, now)
        if item.promised_days is not None:  # the count the promised deadline is revised from
            item.promised_days += rules.calendar.workdays_between(
                item.promised_deadline.astimezone(SHANGHAI).date(), moved.astimezone(SHANGHAI).date())
        item.promised_deadline = moved
        item.clock_paused_at = None
        # The deadline may have moved into a year whose arrangement is not loaded yet.
        item.deadline_provisional = item.deadline_provisional or not rules.calendar.covers(
            item.promised_deadline.astimezone(SHANGHAI).year)
    record_change(uow, item, actor=principal.actor, action="record-supplement", from_status=previous, at=now,
                  note=body.note, materials=body.materials,
                  event=item_event(ItemSupplementSuppliedV1, item, at=now, actor=principal.name,
                                   material_codes=tuple(body.materials), promised_deadline=item.promised_deadline))


def _resolve(uow, item, principal, body: Resolution, rules, now, previous):
    item.result = body.result
    item.delivery_json = body.delivery.model_dump_json()
    record_change(uow, item, actor=principal.actor, action="resolve", from_status=previous, at=now,
                  note=body.result, delivery=body.delivery.model_dump(mode="json"),
                  event=item_event(ItemResolvedV1, item, at=now, actor=principal.name, result=body.result,
                                   delivery=body.delivery))


def _reject(uow, item, principal, body: CodedDecision, rules, now, previous):
    if body.reason_code not in rules.catalogue.reject_reasons:
        raise InvalidAction("unknown_reason", "not a reject reason of the catalogue", reason_code=body.reason_code,
                            allowed=sorted(rules.catalogue.reject_reasons))
    item.closed_reason = body.reason_code
    record_change(uow, item, actor=principal.actor, action="reject", from_status=previous, at=now,
                  reason_code=body.reason_code, note=body.note,
                  event=item_event(ItemRejectedV1, item, at=now, actor=principal.name, reason_code=body.reason_code,
                                   note=body.note))


def _return(uow, item, principal, body: CodedDecision, rules, now, previous):
    if body.reason_code not in rules.catalogue.return_reasons:
        raise InvalidAction("unknown_reason", "not a return reason of the catalogue", reason_code=body.reason_code,
                            allowed=sorted(rules.catalogue.return_reasons))
    decision = decide_return(rules.catalogue, rules.calendar, matter=rules.catalogue.matter(item.matter_code),
                             community_code=item.community_code, level=Level(item.level), placed_at=item.placed_at,
                             now=now, return_count=item.return_count, returns_locked=item.returns_locked,
                             policy=rules.return_policy)
    item.return_count += 1
    returned_from = (item.level, item.unit_code)
    # The returning unit hears of its own return under its own placement…
    returned = item_event(ItemReturnedV1, item, at=now, actor=principal.name, reason_code=body.reason_code,
                          note=body.note, return_count=item.return_count)
    record_change(uow, item, actor=principal.actor, action="return", from_status=previous, at=now,
                  reason_code=body.reason_code, note=body.note, returned_from=list(returned_from),
                  to=[str(decision.level), decision.unit_code], event=returned)
    # …and the next unit receives it as a routed item, keeping the resident's original deadlines.
    item.returns_locked = decision.returns_locked
    move_to_unit(uow, item, level=decision.level, unit_code=decision.unit_code, at=now, reason="returned")


def _assign(uow, item, principal, body, rules, now, previous):
    level = decide_assignment(rules.catalogue, returns_locked=item.returns_locked, deciding_unit=principal.unit_code,
                              item_unit=item.unit_code, target_unit=body.unit_code,
                              department_code=body.department_code)
    record_change(uow, item, actor=principal.name, action="assign", from_status=previous, at=now, note=body.reason,
                  assigned_from=[item.level, item.unit_code, item.department_code],
                  to=[str(level), body.unit_code, body.department_code])
    item.department_code = body.department_code
    item.returns_locked = True  # the assigned unit can no longer return it
    move_to_unit(uow, item, level=level, unit_code=body.unit_code, at=now, reason="assigned")


APPLY = {
    Action.CLAIM: _claim,
    Action.ACCEPT: _accept,
    Action.REQUEST_SUPPLEMENT: _request_supplement,
    Action.RECORD_SUPPLEMENT: _record_supplement,
    Action.RESOLVE: _resolve,
    Action.REJECT: _reject,
    Action.RETURN: _return,
    Action.ASSIGN: _assign,
}


def _find(uow: UnitOfWork, item_id: str) -> RoutedItem:
    item = uow.session.get(RoutedItem, item_id)
    if item is None:
        raise ItemNotFound("item_not_found", "no item with that id")
    return item


def _open_supplement_request(uow: UnitOfWork, item: RoutedItem) -> tuple[date, bool] | None:
    """Due date (and its provisional flag) of the supplement request the item is waiting on."""
    entry = uow.session.scalars(select(ItemHistoryEntry)
                                .where(ItemHistoryEntry.item_id == item.id,
                                       ItemHistoryEntry.action == "request-supplement")
                                .order_by(ItemHistoryEntry.seq.desc()).limit(1)).first()
    if entry is None:
        return None
    details = json.loads(entry.details)
    if "due_date" not in details:
        return None
    return date.fromisoformat(details["due_date"]), bool(details.get("due_date_provisional", False))


def item_view(uow: UnitOfWork, item: RoutedItem, rules: WorkRules, now: datetime,
              with_history: bool = False, deferrals: list[DeferredMaterial] | None = None) -> ItemView:
    catalogue, calendar = rules.catalogue, rules.calendar
    measured_at = item.clock_paused_at or now
    used = (calendar.used_share(item.clock_started_at, item.promised_deadline, measured_at)
            if item.promised_deadline > item.clock_started_at else 1.0)
    if deferrals is None:
        deferrals = uow.session.scalars(select(DeferredMaterial).where(DeferredMaterial.item_id == item.id)
                                        .order_by(DeferredMaterial.material_code)).all()
    # Only items waiting for a supplement look it up (a queue page is mostly other statuses); the item holds it
    # since routing_0004, older requests are read from the history.
    supplement_due = None
    if item.status == "supplement_requested":
        supplement_due = ((item.supplement_due_date, bool(item.supplement_due_date_provisional))
                          if item.supplement_due_date is not None else _open_supplement_request(uow, item))
    history = None
    if with_history:
        entries = uow.session.scalars(select(ItemHistoryEntry).where(ItemHistoryEntry.item_id == item.id)
                                      .order_by(ItemHistoryEntry.seq)).all()
        history = [HistoryEntryView(at=e.at, actor=e.actor, action=e.action, from_status=e.from_status,
                                    to_status=e.to_status, reason_code=e.reason_code, note=e.note,
                                    details=json.loads(e.details)) for e in entries]
    return ItemView(
        item_id=item.id, case_id=item.case_id, case_number=item.case_number, matter_code=item.matter_code,
        matter_name=catalogue.matters[item.matter_code].name if item.matter_code in catalogue.matters else "",
        department_code=item.department_code, level=item.level, unit_code=item.unit_code,
        unit_name=catalogue.units[item.unit_code].name if item.unit_code in catalogue.units else "",
        status=item.status, claimed_by=item.claimed_by, waiting_for=list(item.waiting_for_codes),
        legal_deadline=item.legal_deadline, promised_deadline=item.promised_deadline,
        deadline_provisional=item.deadline_provisional, promised_time_used=round(used, 4),
        supplement_due_date=supplement_due[0] if supplement_due else None,
        supplement_due_date_provisional=supplement_due[1] if supplement_due else None,
        overdue=item.status in OPEN_STATUSES and item.clock_paused_at is None and now > item.promised_deadline,
        clock_paused=item.clock_paused_at is not None, return_count=item.return_count, result=item.result,
        accepting_unit_code=item.accepting_unit_code,
        accepting_unit_name=(catalogue.units[item.accepting_unit_code].name
                             if item.accepting_unit_code in catalogue.units else None),
        delivery=Delivery.model_validate_json(item.delivery_json) if item.delivery_json else None,
        deferred_materials=[DeferredMaterialView(material_code=d.material_code, due_date=d.due_date, state=d.state)
                            for d in deferrals],
        history=history,
    )


