"""吹哨 over HTTP: a called department acknowledges (报到) its call; calls and an item's escalation record are read
by those whose jurisdiction they are in."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select

from services.escalation.access import Forbidden, NotFound, in_scope, prefix_for
from services.escalation.adapters.orm import Deadline, EscalationAction, EscalationItem, WhistleCall
from services.escalation.domain import DeadlineKind, ReportRefused, contains_personal_data, desks_for
from services.escalation.records import (
    EscalationRules,
    cancel,
    lock,
    open_whistle_call,
    record_action,
    whistle_event,
)
from services.escalation.schemas import (
    Acknowledgement,
    ActionView,
    DeadlineView,
    ItemEscalationView,
    ManualWhistle,
    WhistleCallView,
)
from shared.auth import Principal
from shared.catalogue import Level
from shared.events import WhistleAcknowledgedV1
from shared.outbox import UnitOfWork

READERS = ("staff", "specialist", "department")


def acknowledge(call_id: str, principal: Principal, body: Acknowledgement, *, unit_of_work: UnitOfWork,
                rules: EscalationRules, now: datetime) -> WhistleCallView:
    """报到: only the called department's own system, for a desk within its jurisdiction. Acknowledging twice
    answers with the first acknowledgement; after the limit the call has been escalated (409)."""
    prefix = prefix_for(principal, rules.catalogue, kinds=("department",), reason="call_forbidden")
    if body.note and contains_personal_data(body.note):
        raise ReportRefused("personal_data_in_text", "note looks like it carries an ID-card or phone number",
                            status=422, field="note")
    with unit_of_work as uow:
        found = uow.session.get(WhistleCall, call_id)
        if found is None:
            raise NotFound("call_not_found", "no call with that id")
        if not principal.may_see_department(found.department_code) or not in_scope(prefix, found.unit_code):
            raise Forbidden("call_forbidden", "this call is for another department or outside your jurisdiction")
        item = lock(uow, EscalationItem, found.item_id)   # the item first, as every other writer does
        call = lock(uow, WhistleCall, call_id)
        if call.state == "acknowledged":
            return call_view(call, item)
        if call.state != "called":
            raise ReportRefused(f"call_{call.state}", f"the call was {call.state}", current_status=call.state)
        if now > call.ack_due_at:
            # Too late to count as 报到: the call goes up at the next sweep, and the level above calls again.
            raise ReportRefused("ack_limit_passed", f"the acknowledgement was due by {call.ack_due_at.isoformat()}",
                                current_status=call.state)
        call.state, call.acknowledged_at, call.acknowledged_by = "acknowledged", now, principal.name
        cancel(uow, key=f"{DeadlineKind.WHISTLE_ACK}:{call.call_id}")
        uow.publish(whistle_event(WhistleAcknowledgedV1, call, item, at=now, acknowledged_by=principal.name))
        record_action(uow, "whistle_acknowledged", at=now, item=item, level=call.level, unit_code=call.unit_code,
                      called_department=call.department_code, note=body.note)
        uow.commit()
        return call_view(call, item)


def blow(item_id: str, principal: Principal, body: ManualWhistle, *, unit_of_work: UnitOfWork,
         rules: EscalationRules, now: datetime) -> list[WhistleCallView]:
    """Manual 吹哨: street staff call departments in on an open item of their street at any time, not only when a
    timer escalates it. Each call runs like a timed one (acknowledge within the limit, else up a level); a
    department already called by the street for the item is not called twice (409 when nobody is left)."""
    prefix = prefix_for(principal, rules.catalogue, kinds=("staff",), reason="whistle_forbidden")
    if rules.catalogue.unit(principal.unit_code).level is not Level.STREET:
        raise Forbidden("whistle_forbidden", "a street blows the whistle", kinds=["staff"])
    if contains_personal_data(body.reason):
        raise ReportRefused("personal_data_in_text", "reason looks like it carries an ID-card or phone number",
                            status=422, field="reason")
    unknown = sorted(set(body.department_codes) - set(rules.catalogue.departments))
    if unknown:
        raise ReportRefused("unknown_department", "no such department", status=422, unknown=unknown)
    with unit_of_work as uow:
        item = lock(uow, EscalationItem, item_id)
        if item is None:
            raise NotFound("item_not_found", "the escalation service has not seen this item")
        if not in_scope(prefix, item.unit_code, item.community_code):
            raise Forbidden("whistle_forbidden", "this item is outside your jurisdiction")
        if item.status in ("resolved", "rejected", "terminated"):
            raise ReportRefused("item_closed", "the item is closed", current_status=item.status)
        matter = rules.catalogue.matters.get(item.matter_code)
        codes = body.department_codes or (list(matter.call_in_departments) if matter else []) or [item.department_code]
        calls = []
        for desk in desks_for(rules.catalogue, codes, item.community_code, Level.STREET):
            call = open_whistle_call(uow, item, desk, caller_level="street", caller_unit_code=principal.unit_code,
                                     rules=rules, now=now)
            if call is None:
                continue
            record_action(uow, "whistle_called", at=now, item=item, level=call.level, unit_code=call.unit_code,
                          called_department=call.department_code, caller_level="street", manual=True,
                          note=body.reason)
            calls.append(call)
        if not calls:
            raise ReportRefused("already_called", "every department named was already called in by the street",
                                status=409)
        views = [call_view(call, item) for call in calls]
        uow.commit()
        return views


def list_calls(principal: Principal, *, unit_of_work: UnitOfWork, rules: EscalationRules, state: str | None,
               limit: int, offset: int) -> tuple[list[WhistleCallView], int]:
    """A department system sees the calls to its own department; staff and specialists the calls made or
    received within their jurisdiction. Open calls by default, soonest limit first."""
    prefix = prefix_for(principal, rules.catalogue, kinds=READERS, reason="call_forbidden")
    query = select(WhistleCall).where(WhistleCall.unit_code.startswith(prefix)
                                      | WhistleCall.caller_unit_code.startswith(prefix))
    if principal.kind == "department":
        if principal.department is None:
            return [], 0  # a department token that names no department sees nothing, not everything
        query = query.where(WhistleCall.department_code == principal.department,
                            WhistleCall.unit_code.startswith(prefix))
    query = query.where(WhistleCall.state == (state or "called"))
    with unit_of_work as uow:
        total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
        calls = uow.session.scalars(query.order_by(WhistleCall.ack_due_at, WhistleCall.call_id)
                                    .limit(limit).offset(offset)).all()
        items = {item.item_id: item for item in uow.session.scalars(
            select(EscalationItem).where(EscalationItem.item_id.in_({call.item_id for call in calls})))}
        return [call_view(call, items[call.item_id]) for call in calls], total


def item_escalation(item_id: str, principal: Principal, *, unit_of_work: UnitOfWork,
                    rules: EscalationRules) -> ItemEscalationView:
    prefix = prefix_for(principal, rules.catalogue, kinds=READERS, reason="item_forbidden")
    with unit_of_work as uow:
        item = uow.session.get(EscalationItem, item_id)
        if item is None:
            raise NotFound("item_not_found", "the escalation service has not seen this item")
        calls = uow.session.scalars(select(WhistleCall).where(WhistleCall.item_id == item_id)
                                    .order_by(WhistleCall.called_at, WhistleCall.department_code)).all()
        # A department system reads the items of its own department, and those it was called in on.
        department_ok = principal.may_see_department(item.department_code) or any(
            principal.may_see_department(call.department_code) for call in calls)
        if not in_scope(prefix, item.unit_code, item.community_code) or not department_ok:
            raise Forbidden("item_forbidden", "this item is outside your jurisdiction")
        deadlines = uow.session.scalars(select(Deadline).where(Deadline.subject_id == item_id)
                                        .order_by(Deadline.due_at, Deadline.kind)).all()
        actions = uow.session.scalars(select(EscalationAction).where(EscalationAction.item_id == item_id)
                                      .order_by(EscalationAction.seq)).all()
        return ItemEscalationView(
            item_id=item.item_id, case_number=item.case_number, matter_code=item.matter_code,
            department_code=item.department_code, status=item.status, level=item.level, unit_code=item.unit_code,
            promised_deadline=item.promised_deadline, legal_deadline=item.legal_deadline,
            clock_paused=item.clock_paused_at is not None, loop_state=item.loop_state,
            loop_ends_at=item.loop_ends_at, loop_outcome=item.loop_outcome,
            deadlines=[DeadlineView(kind=d.kind, due_at=d.due_at, state=d.state, fired_at=d.fired_at)
                       for d in deadlines if d.state != "cancelled"],
            calls=[call_view(call, item) for call in calls],
            actions=[ActionView(kind=a.kind, at=a.at, level=a.level, unit_code=a.unit_code,
                                details=json.loads(a.details)) for a in actions])


def call_view(call: WhistleCall, item: EscalationItem) -> WhistleCallView:
    return WhistleCallView(
        call_id=call.call_id, item_id=call.item_id, matter_code=item.matter_code, department_code=call.department_code,
        level=call.level, unit_code=call.unit_code, caller_level=call.caller_level,
        caller_unit_code=call.caller_unit_code, called_at=call.called_at, ack_due_at=call.ack_due_at,
        state=call.state, acknowledged_at=call.acknowledged_at, acknowledged_by=call.acknowledged_by,
        escalated_at=call.escalated_at)
