"""容缺 due dates revised once their year's holiday arrangement is loaded.

A deferred material's due date counted across a year without the State Council's arrangement is stored
provisional. When the arrangement is loaded, every due date still flagged is counted again from the day of
submission and its working days under the calendar in force (shared/workdays.py ``revise_due_date``). A row
whose date moved or whose flag cleared is updated and publishes ``case.deferral-due-date-revised``: routing's
copy (by which it reminds and expires) follows, and notification tells the resident the corrected date, only
when the date moved.

Idempotent and safe in several replicas: rows are taken in batches under ``FOR UPDATE SKIP LOCKED``
(PostgreSQL) and written by a conditional update matching the row as read (date and flag still provisional),
so a second pass or a second replica changes nothing and publishes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select, true, update

from services.intake.adapters.orm import CaseRecord, DeferredMaterialRecord
from services.intake.domain import deferral_working_days_for
from shared.db import locked_batches
from shared.events import DeferralDueDateRevisedV1
from shared.workdays import SHANGHAI, count_for_backfill, revise_due_date

log = structlog.get_logger(__name__)

BATCH_SIZE = 100


@dataclass
class RevisionReport:
    examined: int = 0
    revised: int = 0
    dates_changed: int = 0
    counts_filled: int = 0
    conflicts: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def revise_provisional_due_dates(unit_of_work_factory, *, rules, batch_size: int = BATCH_SIZE) -> RevisionReport:
    report = RevisionReport()
    flagged = (select(DeferredMaterialRecord, CaseRecord)
               .join(CaseRecord, CaseRecord.id == DeferredMaterialRecord.case_id)
               .where(DeferredMaterialRecord.due_date_provisional == true()))
    for uow, rows in locked_batches(unit_of_work_factory, flagged,
                                    (DeferredMaterialRecord.case_id, DeferredMaterialRecord.material_code),
                                    lambda row: (row[0].case_id, row[0].material_code),
                                    batch_size=batch_size, lock_of=DeferredMaterialRecord):
        now = uow.clock.now()
        for deferred, case in rows:
            report.examined += 1
            _revise(uow, deferred, case, rules=rules, now=now, report=report)
    return report


def _revise(uow, deferred: DeferredMaterialRecord, case: CaseRecord, *, rules, now, report: RevisionReport) -> None:
    submitted_on = case.submitted_at.astimezone(SHANGHAI).date()
    days, filled = deferred.due_working_days, False
    if days is None:
        days = count_for_backfill(rules.calendar, start=submitted_on, stored=deferred.due_date,
                                  fallback=deferral_working_days_for(rules.catalogue, deferred.matter_codes.split(),
                                                                     rules.deferral_working_days))
        filled = True
    revision = revise_due_date(rules.calendar, start=submitted_on, days=days, stored=deferred.due_date,
                               stored_provisional=True)
    if not revision.needed and not filled:
        return
    values = {"due_working_days": days}
    if revision.needed:
        values.update(due_date=revision.after, due_date_provisional=revision.provisional)
    written = uow.session.execute(
        update(DeferredMaterialRecord)
        .where(DeferredMaterialRecord.case_id == deferred.case_id,
               DeferredMaterialRecord.material_code == deferred.material_code,
               DeferredMaterialRecord.due_date == deferred.due_date,
               DeferredMaterialRecord.due_date_provisional == true())
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if written != 1:
        report.conflicts += 1
        return
    report.counts_filled += int(filled)
    if not revision.needed:
        return
    uow.publish(DeferralDueDateRevisedV1(
        case_id=case.id, case_number=case.case_number, community_code=case.community_code,
        material_code=deferred.material_code, matter_codes=tuple(deferred.matter_codes.split()),
        due_date=revision.after, due_date_provisional=revision.provisional, previous_due_date=revision.before,
        revised_at=now))
    report.revised += 1
    report.dates_changed += int(revision.changed)
    log.info("provisional 容缺 due date revised", case_id=case.id, material=deferred.material_code,
             date_changed=revision.changed, still_provisional=revision.provisional)
