"""Building blocks every escalation handler uses: deadline rows, row locks, the action log, and events built
from rows (one place, so every event carries the same placement fields)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from services.escalation.adapters.orm import (
    Deadline,
    EscalationAction,
    EscalationItem,
    FailureReport,
    WhistleCall,
)
from services.escalation.domain import DeadlineKind
from services.escalation.settings import Cause, EscalationSettings
from shared.catalogue import Catalogue
from shared.clock import new_id
from shared.db import is_postgres
from shared.events import ItemEvent, ReportEvent, WhistleCalledV1, WhistleEvent
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar


@dataclass(frozen=True)
class EscalationRules:
    catalogue: Catalogue
    calendar: WorkdayCalendar
    settings: EscalationSettings
    causes: dict[str, Cause]


# ── Row locks: always the subject (item, report or grant) first, then its deadlines ─────────────────


def lock(uow: UnitOfWork, model, key, *, skip_locked: bool = False):
    """The row under a write lock on PostgreSQL (SQLite serialises writers anyway); None if it does not exist,
    or with ``skip_locked`` if another transaction holds it.

    The row is read again under the lock (``populate_existing``): an object this session loaded before the
    lock keeps its old attributes otherwise, so a check made on it (a call still "called", say) would pass
    after another transaction had already changed the row, and both would act (a lost update)."""
    primary_key = model.__mapper__.primary_key[0]
    query = select(model).where(primary_key == key).execution_options(populate_existing=True)
    if is_postgres(uow.session.get_bind()):
        query = query.with_for_update(skip_locked=skip_locked)
    return uow.session.scalars(query).one_or_none()


# ── Deadline rows ───────────────────────────────────────────────────────────────────────────────────


def arm(uow: UnitOfWork, *, key: str, kind: DeadlineKind, subject_type: str, subject_id: str, due_at: datetime,
        now: datetime, call_id: str | None = None, known: dict[str, Deadline] | None = None) -> Deadline | None:
    """Make the deadline ``key`` pending at ``due_at``. A deadline that has fired stays fired (each fires once);
    one that was cancelled (a paused clock, say) or parked is armed again. Returns the row, or None if it already
    fired. ``known``: the subject's deadline rows, already read by the caller (``deadlines_of``), by key."""
    if known is not None:
        row = known.get(key)
    else:
        row = uow.session.scalars(select(Deadline).where(Deadline.key == key)).one_or_none()
    if row is None:
        row = Deadline(id=new_id(), key=key, kind=str(kind), subject_type=subject_type, subject_id=subject_id,
                       call_id=call_id, due_at=due_at, state="pending", created_at=now)
        uow.session.add(row)
        return row
    if row.state == "fired":
        return None
    if row.state != "pending":  # cancelled or parked: armed afresh, its failed attempts forgotten
        row.attempts, row.next_attempt_at, row.last_error = 0, None, None
    row.state, row.due_at = "pending", due_at
    return row


def deadlines_of(uow: UnitOfWork, subject_id: str, kinds: tuple[DeadlineKind, ...]) -> dict[str, Deadline]:
    """A subject's deadline rows of these kinds, by key: one query where arming each would take one apiece."""
    return {row.key: row for row in uow.session.scalars(select(Deadline).where(
        Deadline.subject_id == subject_id, Deadline.kind.in_([str(kind) for kind in kinds])))}


def cancel(uow: UnitOfWork, *, key: str, known: dict[str, Deadline] | None = None) -> None:
    """The deadline ``key`` cancelled if it is pending (``known``: as for ``arm``; no statement when the caller
    read that there is no pending row of that key)."""
    if known is not None and (key not in known or known[key].state != "pending"):
        return
    uow.session.execute(update(Deadline).where(Deadline.key == key, Deadline.state == "pending")
                        .values(state="cancelled"))


def cancel_all(uow: UnitOfWork, *, subject_id: str, kinds: tuple[DeadlineKind, ...] | None = None) -> None:
    statement = update(Deadline).where(Deadline.subject_id == subject_id, Deadline.state == "pending")
    if kinds is not None:
        statement = statement.where(Deadline.kind.in_([str(kind) for kind in kinds]))
    uow.session.execute(statement.values(state="cancelled"))


def supervision_key(kind: DeadlineKind, item: EscalationItem) -> str:
    return f"{kind}:{item.item_id}:{item.clock_cycle}"


# ── The action log ──────────────────────────────────────────────────────────────────────────────────


def record_action(uow: UnitOfWork, kind: str, *, at: datetime, item: EscalationItem | None = None,
                  report: FailureReport | None = None, **details) -> None:
    source = item if item is not None else report
    uow.session.add(EscalationAction(
        kind=kind, at=at, item_id=item.item_id if item is not None else getattr(report, "item_id", None),
        report_id=report.report_id if report is not None else None,
        matter_code=getattr(source, "matter_code", None), department_code=getattr(source, "department_code", None),
        level=details.pop("level", getattr(source, "level", None)),
        unit_code=details.pop("unit_code", getattr(source, "unit_code", None)),
        community_code=getattr(source, "community_code", None), district_code=getattr(source, "district_code", None),
        details=json.dumps(details, ensure_ascii=False, default=str)))


# ── Events from rows ────────────────────────────────────────────────────────────────────────────────


def item_notice(event_class: type[ItemEvent], item: EscalationItem, **fields) -> ItemEvent:
    """An escalation notice about an item, describing it as of the last routing change the service saw
    (``occurred_at``), so a read model never lets it overwrite a newer state."""
    return event_class(
        item_id=item.item_id, case_id=item.case_id, case_number=item.case_number, matter_code=item.matter_code,
        department_code=item.department_code, level=item.level, unit_code=item.unit_code,
        district_code=item.district_code, community_code=item.community_code, status=item.status,
        occurred_at=item.as_of, **fields)


def whistle_event(event_class: type[WhistleEvent], call: WhistleCall, item: EscalationItem, *, at: datetime,
                  **fields) -> WhistleEvent:
    return event_class(
        call_id=call.call_id, item_id=call.item_id, case_id=item.case_id, matter_code=item.matter_code,
        department_code=call.department_code, level=call.level, unit_code=call.unit_code,
        district_code=call.district_code, caller_level=call.caller_level, caller_unit_code=call.caller_unit_code,
        occurred_at=at, **fields)


def open_whistle_call(uow: UnitOfWork, item: EscalationItem, desk, *, caller_level: str, caller_unit_code: str,
                      rules: EscalationRules, now: datetime) -> WhistleCall | None:
    """吹哨 to one desk: the call, its acknowledgement deadline and ``whistle.called``; None if this level has
    already called that department in on the item (a timer and a street's manual call both come here)."""
    exists = uow.session.scalars(select(WhistleCall.call_id).where(
        WhistleCall.item_id == item.item_id, WhistleCall.caller_level == caller_level,
        WhistleCall.department_code == desk.department_code)).first()
    if exists is not None:
        return None
    call = WhistleCall(call_id=new_id(), item_id=item.item_id, department_code=desk.department_code,
                       level=str(desk.level), unit_code=desk.unit_code, caller_level=caller_level,
                       caller_unit_code=caller_unit_code, district_code=item.district_code, called_at=now,
                       ack_due_at=now + rules.settings.whistle_ack_limit, state="called")
    uow.session.add(call)
    arm(uow, key=f"{DeadlineKind.WHISTLE_ACK}:{call.call_id}", kind=DeadlineKind.WHISTLE_ACK,
        subject_type="item", subject_id=item.item_id, call_id=call.call_id, due_at=call.ack_due_at, now=now)
    uow.publish(whistle_event(WhistleCalledV1, call, item, at=now, ack_due_at=call.ack_due_at))
    return call


def report_event(event_class: type[ReportEvent], report: FailureReport, *, at: datetime, **fields) -> ReportEvent:
    return event_class(report_id=report.report_id, report_number=report.report_number,
                       district_code=report.district_code, unit_code=report.unit_code, occurred_at=at, **fields)
