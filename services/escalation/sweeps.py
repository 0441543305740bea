"""Deadlines that fall due: found by a periodic sweep in every replica, each fired exactly once.

Deadlines are rows, not timers in memory. Each replica's sweep reads the pending rows that are due, then
handles each in its own short transaction: it locks the deadline's subject (the item, report or 容缺 grant),
skipping it if another replica or a consumer holds it, then the deadline row, which must still be pending. So
three replicas fire each deadline once, and a deadline that passed while every replica was down fires at
the first sweep after a start. The sweep never waits on a lock another sweep holds.

A deadline whose firing raises is not tried first again at the next sweep (issue 15: a batch of rows that
always fail would starve every later one). The failure is recorded on the row in a transaction of its own: one
more attempt, the error, and a next attempt after a backoff (``retry_seconds``, doubled per failure, at most an
hour); the sweep takes rows with fewer failures first and leaves a row alone until its next attempt. After
``failed_attempts`` failures the row is parked (state ``parked``, logged with its id): it stays out of the sweep
until something arms it again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select

from services.escalation import failure_reports
from services.escalation.adapters.orm import Deadline, DeferralGrant, EscalationItem, FailureReport, WhistleCall
from services.escalation.domain import (
    OPEN_STATUSES,
    DeadlineKind,
    ReportStatus,
    supervising_level,
    whistle_escalation_target,
    working_seconds,
)
from services.escalation.records import EscalationRules, item_notice, lock, record_action, report_event, whistle_event
from shared.catalogue import Level
from shared.db import is_postgres
from shared.events import (
    DeferralReminderV1,
    EscalationOrderedV1,
    ItemDeadlineWarningV1,
    ItemSupervisionEscalatedV1,
    ReportOverdueV1,
    WhistleEscalatedV1,
)
from shared.outbox import UnitOfWork

log = structlog.get_logger(__name__)

SUBJECTS = {"item": EscalationItem, "report": FailureReport, "grant": DeferralGrant}


@dataclass
class SweepReport:
    fired: Counter = field(default_factory=Counter)   # kind -> deadlines fired by this sweep
    acted: Counter = field(default_factory=Counter)   # kind -> of those, the ones that still had something to do
    skipped: int = 0                                  # held by another replica or a consumer: next sweep
    failed: int = 0                                   # raised: tried again after a backoff
    parked: int = 0                                   # of those, failed once too often: no longer tried

    def as_dict(self) -> dict:
        return {"fired": dict(self.fired), "acted": dict(self.acted), "skipped": self.skipped, "failed": self.failed,
                "parked": self.parked}


MAX_RETRY_WAIT = timedelta(hours=1)


def retry_wait(rules: EscalationRules, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: ``retry_seconds`` doubled per earlier failure, at most an hour."""
    return min(timedelta(seconds=rules.settings.retry_seconds * 2 ** min(attempts - 1, 20)), MAX_RETRY_WAIT)


def fire_due_deadlines(unit_of_work_factory, *, rules: EscalationRules, now: datetime) -> SweepReport:
    """Fire every deadline due at ``now`` (up to the batch size); ``unit_of_work_factory()`` gives a fresh one."""
    report = SweepReport()
    with unit_of_work_factory() as uow:
        due = uow.session.execute(
            select(Deadline.id, Deadline.kind, Deadline.subject_type, Deadline.subject_id)
            .where(Deadline.state == "pending", Deadline.due_at <= now,
                   or_(Deadline.next_attempt_at.is_(None), Deadline.next_attempt_at <= now))
            .order_by(Deadline.attempts, Deadline.due_at, Deadline.id).limit(rules.settings.batch_size)).all()
    for deadline_id, kind, subject_type, subject_id in due:
        try:
            with unit_of_work_factory() as uow:
                subject = lock(uow, SUBJECTS[subject_type], subject_id, skip_locked=True)
                if subject is None:
                    report.skipped += 1
                    continue
                query = select(Deadline).where(Deadline.id == deadline_id, Deadline.state == "pending")
                if is_postgres(uow.session.get_bind()):
                    query = query.with_for_update()
                deadline = uow.session.scalars(query).one_or_none()
                if deadline is None:  # fired by another replica, or cancelled, since we looked
                    continue
                acted = FIRE[DeadlineKind(kind)](uow, deadline, subject, rules=rules, now=now)
                deadline.state, deadline.fired_at = "fired", now
                uow.commit()
            report.fired[kind] += 1
            if acted:
                report.acted[kind] += 1
        except Exception as exc:  # noqa: BLE001 - one broken deadline must not stop the others
            report.failed += 1
            log.exception("firing a deadline failed", deadline_id=deadline_id, kind=kind)
            if _record_failure(unit_of_work_factory, deadline_id, exc, rules=rules, now=now):
                report.parked += 1
    if report.fired or report.failed:
        log.info("deadlines swept", **report.as_dict())
    return report


def _record_failure(unit_of_work_factory, deadline_id: str, exc: Exception, *, rules: EscalationRules,
                    now: datetime) -> bool:
    """One more failed attempt on the row, in a transaction of its own; True if that parked it. A row another
    replica holds (or has fired since) is left to it: its own sweep records what happened."""
    try:
        with unit_of_work_factory() as uow:
            query = select(Deadline).where(Deadline.id == deadline_id, Deadline.state == "pending")
            if is_postgres(uow.session.get_bind()):
                query = query.with_for_update(skip_locked=True)
            deadline = uow.session.scalars(query.execution_options(populate_existing=True)).one_or_none()
            if deadline is None:
                return False
            deadline.attempts = (deadline.attempts or 0) + 1
            deadline.last_error = f"{type(exc).__name__}: {exc}"[:500]
            parked = deadline.attempts >= rules.settings.failed_attempts
            if parked:
                deadline.state, deadline.next_attempt_at = "parked", None
            else:
                deadline.next_attempt_at = now + retry_wait(rules, deadline.attempts)
            attempts, kind, retry_at = deadline.attempts, deadline.kind, deadline.next_attempt_at
            uow.commit()
    except Exception:  # noqa: BLE001 - the row stays as it was; the next sweep tries it again
        log.exception("recording a failed deadline failed", deadline_id=deadline_id)
        return False
    if parked:
        log.error("deadline parked after failing every attempt", deadline_id=deadline_id, kind=kind,
                  attempts=attempts, error=str(exc)[:200])
    else:
        log.warning("deadline will be tried again", deadline_id=deadline_id, kind=kind, attempts=attempts,
                    next_attempt_at=retry_at.isoformat())
    return parked


# ── One function per kind: returns whether there was still something to do ─────────────────────────


def _order_up(uow: UnitOfWork, item: EscalationItem, *, reason: str, rules: EscalationRules, now: datetime) -> bool:
    """Order the item one level up its line, once per level. Routing moves it (or ignores a stale order)."""
    matter = rules.catalogue.matters.get(item.matter_code)
    if (matter is None or item.status not in OPEN_STATUSES or item.ordered_up_from == item.level
            or rules.catalogue.desk_level_above(matter, Level(item.level)) is None):
        return False
    uow.publish(EscalationOrderedV1(item_id=item.item_id, district_code=item.district_code, from_level=item.level,
                                    reason=reason, ordered_at=now))
    item.ordered_up_from = item.level
    record_action(uow, "escalation_ordered", at=now, item=item, reason=reason)
    log.info("escalation ordered", item_id=item.item_id, from_level=item.level, reason=reason)
    return True


def _fire_loop(from_level: Level):
    def fire(uow, deadline: Deadline, item: EscalationItem, *, rules, now) -> bool:
        if item.status not in OPEN_STATUSES or item.level != from_level:
            return False
        record_action(uow, "loop_expired", at=now, item=item)
        return _order_up(uow, item, reason="internal_loop_expired", rules=rules, now=now)

    return fire


def _supervision_applies(item: EscalationItem) -> bool:
    return item.status in OPEN_STATUSES and item.status != "waiting" and item.clock_paused_at is None


def _fire_warning(uow, deadline: Deadline, item: EscalationItem, *, rules, now) -> bool:
    if not _supervision_applies(item) or item.promised_deadline is None:
        return False
    budget = item.promised_budget_seconds or 0.0
    left = working_seconds(rules.calendar, now, item.promised_deadline)
    share_used = round(1 - left / budget, 4) if budget else rules.settings.warning_share
    item.warned_at = now
    uow.publish(item_notice(ItemDeadlineWarningV1, item, share_used=max(share_used, 0.0),
                            promised_deadline=item.promised_deadline, raised_at=now))
    record_action(uow, "deadline_warning", at=now, item=item, share_used=share_used)
    return True


def _fire_breach(stage: DeadlineKind):
    def fire(uow, deadline: Deadline, item: EscalationItem, *, rules, now) -> bool:
        if not _supervision_applies(item):
            return False
        supervising = supervising_level(Level(item.level), stage)
        unit = rules.catalogue.unit_at(item.community_code, supervising)
        broken = item.promised_deadline if stage is DeadlineKind.PROMISED_BREACH else item.legal_deadline
        if stage is DeadlineKind.PROMISED_BREACH:
            item.promised_breached_at = now
        else:
            item.legal_breached_at = now
        uow.publish(item_notice(ItemSupervisionEscalatedV1, item, stage=str(stage), deadline=broken,
                                supervising_level=str(supervising), supervising_unit_code=unit.code, raised_at=now))
        record_action(uow, f"supervision_{stage}", at=now, item=item, supervising_level=str(supervising),
                      supervising_unit_code=unit.code)
        log.info("督办 escalation", item_id=item.item_id, stage=str(stage), supervising_unit=unit.code)
        return True

    return fire


def _fire_whistle_ack(uow, deadline: Deadline, item: EscalationItem, *, rules, now) -> bool:
    call = lock(uow, WhistleCall, deadline.call_id)
    if call is None or call.state != "called":
        return False
    call.state, call.escalated_at = "escalated", now
    to_level, to_unit = whistle_escalation_target(rules.catalogue, item.community_code, Level(call.caller_level))
    at_caller = item.status in OPEN_STATUSES and item.level == call.caller_level
    ordered = at_caller and (_order_up(uow, item, reason="whistle_unacknowledged", rules=rules, now=now)
                             or item.ordered_up_from == call.caller_level)
    uow.publish(whistle_event(WhistleEscalatedV1, call, item, at=now, ack_due_at=call.ack_due_at,
                              escalated_to_level=str(to_level), escalated_to_unit_code=to_unit,
                              item_ordered_up=ordered))
    record_action(uow, "whistle_escalated", at=now, item=item, level=call.level, unit_code=call.unit_code,
                  called_department=call.department_code, escalated_to=to_unit, item_ordered_up=ordered)
    return True


def _report_supervisor(rules: EscalationRules, report: FailureReport) -> str:
    unit = rules.catalogue.units.get(report.unit_code)
    return unit.parent_code if unit is not None and unit.parent_code else report.district_code


def _fire_report_limit(limit: str):
    def fire(uow, deadline: Deadline, report: FailureReport, *, rules, now) -> bool:
        if report.status not in (ReportStatus.OPEN, ReportStatus.ASSIGNED):
            return False
        if limit == "opinion" and report.opinion_received_at is not None:
            return False
        report.overdue_at = report.overdue_at or now
        uow.publish(report_event(ReportOverdueV1, report, at=now, limit=limit, due_at=deadline.due_at,
                                 supervising_unit_code=_report_supervisor(rules, report)))
        record_action(uow, "report_overdue", at=now, report=report, limit=limit)
        return True

    return fire


def _fire_deferral_reminder(uow, deadline: Deadline, grant: DeferralGrant, *, rules, now) -> bool:
    if grant.state != "pending":
        return False
    for material_code in grant.material_codes.split():
        uow.publish(DeferralReminderV1(case_id=grant.case_id, case_number=grant.case_number,
                                       community_code=grant.community_code, material_code=material_code,
                                       matter_codes=(grant.matter_code,), due_date=grant.due_date))
    return True


def _fire_deferral_due(uow, deadline: Deadline, grant: DeferralGrant, *, rules, now) -> bool:
    """The material granted 容缺 did not come: the report goes back to its specialist to follow it up."""
    if grant.state != "pending":
        return False
    grant.state, grant.settled_at = "overdue", now
    report = lock(uow, FailureReport, grant.report_id)
    record_action(uow, "deferral_overdue", at=now, report=report, grant_id=grant.id)
    failure_reports.reopen(uow, report, reason="deferral_material_overdue", actor="system", rules=rules, now=now)
    return True


FIRE = {
    DeadlineKind.LOOP_COMMUNITY: _fire_loop(Level.COMMUNITY),
    DeadlineKind.LOOP_STREET: _fire_loop(Level.STREET),
    DeadlineKind.DEADLINE_WARNING: _fire_warning,
    DeadlineKind.PROMISED_BREACH: _fire_breach(DeadlineKind.PROMISED_BREACH),
    DeadlineKind.LEGAL_BREACH: _fire_breach(DeadlineKind.LEGAL_BREACH),
    DeadlineKind.WHISTLE_ACK: _fire_whistle_ack,
    DeadlineKind.REPORT_OPINION: _fire_report_limit("opinion"),
    DeadlineKind.REPORT_TIME_LIMIT: _fire_report_limit("time_limit"),
    DeadlineKind.DEFERRAL_REMINDER: _fire_deferral_reminder,
    DeadlineKind.DEFERRAL_DUE: _fire_deferral_due,
}
