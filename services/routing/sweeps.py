"""Rules that run on time, not on a message: 容缺 reminders and expiry, and supplement (补正) expiry.

Due dates are rows in the database; a periodic sweep in every replica finds what is due. Each case is
handled in its own short transaction under the case's row lock (skipped if another replica holds it),
so a reminder is sent and an expiry applied exactly once, and nothing due while the service was down
is missed: the first sweep after a start catches up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from services.routing.adapters.orm import DeferredMaterial, RoutedCase, RoutedItem
from services.routing.follow_ups import settle_case, terminate_item
from services.routing.lifecycle import OPEN_STATUSES, deferral_expired, deferral_reminder_due, supplement_expired
from shared.db import is_postgres
from shared.events import DeferralReminderV1
from shared.outbox import UnitOfWork
from shared.workdays import SHANGHAI

log = structlog.get_logger(__name__)

# Reminders go out this many working days before the due date; candidates are read a little wider.
REMIND_WORKING_DAYS_BEFORE = 1
_CANDIDATE_WINDOW = timedelta(days=14)


@dataclass
class SweepReport:
    reminded: int = 0
    expired: int = 0
    supplements_expired: int = 0
    skipped_cases: int = 0
    failed_cases: int = 0


def sweep_deferrals(unit_of_work_factory, *, rules, now: datetime) -> SweepReport:
    """Remind and expire deferred materials; ``unit_of_work_factory()`` gives a fresh unit of work."""
    today = now.astimezone(SHANGHAI).date()
    report = SweepReport()
    with unit_of_work_factory() as uow:
        case_ids = set(uow.session.scalars(
            select(DeferredMaterial.case_id).distinct().where(DeferredMaterial.state == "pending",
                                                             DeferredMaterial.due_date <= today + _CANDIDATE_WINDOW)
        ))
        # Every overdue supplement, not the first N: a case that keeps failing must not hide the others.
        case_ids.update(uow.session.scalars(
            select(RoutedItem.case_id).distinct().where(RoutedItem.status == "supplement_requested",
                                                       RoutedItem.supplement_due_date < today)))
    for case_id in sorted(case_ids):
        try:
            with unit_of_work_factory() as uow:
                case = _lock_case_or_skip(uow, case_id)
                if case is None:
                    report.skipped_cases += 1
                    continue
                _sweep_case(uow, case, rules=rules, today=today, now=now, report=report)
                uow.commit()
        except Exception:  # noqa: BLE001 - one case that cannot be swept must not stop the others
            # Rolled back; the case is a candidate again next sweep. The id names it, nothing personal.
            log.exception("deferral sweep failed for a case; the others go on", case_id=case_id)
            report.failed_cases += 1
    return report


def _lock_case_or_skip(uow: UnitOfWork, case_id: str) -> RoutedCase | None:
    query = select(RoutedCase).where(RoutedCase.case_id == case_id)
    if is_postgres(uow.session.get_bind()):
        query = query.with_for_update(skip_locked=True)
    return uow.session.scalars(query).one_or_none()


def _sweep_case(uow: UnitOfWork, case: RoutedCase, *, rules, today, now: datetime, report: SweepReport) -> None:
    pending = uow.session.scalars(select(DeferredMaterial).where(DeferredMaterial.case_id == case.case_id,
                                                                 DeferredMaterial.state == "pending")).all()
    items = {item.id: item for item in uow.session.scalars(select(RoutedItem)
                                                           .where(RoutedItem.case_id == case.case_id))}
    reminders: dict[tuple, list[str]] = defaultdict(list)
    for deferral in pending:
        item = items[deferral.item_id]
        if item.status not in OPEN_STATUSES:
            continue
        if deferral_expired(due_date=deferral.due_date, today=today):
            deferral.state = "expired"
            report.expired += 1
            terminate_item(uow, item, reason_code="deferral_expired", now=now,
                           note=f"deferred material {deferral.material_code} was due {deferral.due_date}")
        elif deferral.reminded_at is None and deferral_reminder_due(
                rules.calendar, due_date=deferral.due_date, today=today,
                remind_working_days_before=REMIND_WORKING_DAYS_BEFORE):
            deferral.reminded_at = now
            reminders[(deferral.material_code, deferral.due_date)].append(item.matter_code)
    for item in items.values():
        if supplement_expired(status=item.status, due_date=item.supplement_due_date, today=today):
            report.supplements_expired += 1
            provisional = " (counted before the year's holiday arrangement was known)" \
                if item.supplement_due_date_provisional else ""
            terminate_item(uow, item, reason_code="supplement_expired", now=now,
                           note=f"supplementary material was due {item.supplement_due_date}{provisional}")
    for (material_code, due_date), matter_codes in sorted(reminders.items()):
        report.reminded += 1
        uow.publish(DeferralReminderV1(case_id=case.case_id, case_number=case.case_number,
                                       community_code=case.community_code, material_code=material_code,
                                       matter_codes=tuple(sorted(matter_codes)), due_date=due_date))
    settle_case(uow, case, catalogue=rules.catalogue, calendar=rules.calendar, now=now)
