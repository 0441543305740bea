"""Provisional deadlines revised once their year's holiday arrangement is loaded.

A deadline counted across a year without the State Council's arrangement (调休 unknown) is stored with its
provisional flag. When the arrangement is loaded (``sanji calendar load``, or a chinesecalendar upgrade),
every item still flagged is counted again from its stored start (``deadlines_counted_from``) and
working-day count under the calendar in force (shared/workdays.py ``revise_deadline``): the legal and
promised deadlines, and the due date of the supplement request an item waits on. A row whose dates moved or
whose flag cleared is updated, gets a history line and publishes ``item.deadline-revised`` (escalation
re-arms its 督办 timers, intake's read model drops the flag, notification corrects a supplement due date
the resident was told).

Safe to run any number of times, in any number of replicas at once: rows are taken in batches under
``FOR UPDATE SKIP LOCKED`` (PostgreSQL), and each is written by a conditional update that matches only the
row as it was read (``updated_at`` and the flags), so a second run, or a replica that read the row before the
first wrote it, changes nothing and publishes nothing. A settled deadline is never recomputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import and_, or_, select, true, update

from services.routing.adapters.orm import DeferredMaterial, ItemHistoryEntry, RoutedItem
from services.routing.item_events import item_event
from shared.db import locked_batches
from shared.events import CloudEvent, DeferralDueDateRevisedV1, ItemDeadlineRevisedV1
from shared.nameko_ext import PermanentError
from shared.outbox import UnitOfWork
from shared.workdays import SHANGHAI, Revision, count_for_backfill, revise_deadline, revise_due_date

log = structlog.get_logger(__name__)

SYSTEM_ACTOR = "system"
BATCH_SIZE = 100


@dataclass
class RevisionReport:
    examined: int = 0
    revised: int = 0          # rows updated with an event (a date moved or a flag cleared)
    dates_changed: int = 0    # of which a date actually moved
    counts_filled: int = 0    # rows stored before routing_0004 that got their working-day counts
    conflicts: int = 0        # rows changed by someone else between read and write (left for the next pass)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def revise_provisional_deadlines(unit_of_work_factory, *, rules, batch_size: int = BATCH_SIZE) -> RevisionReport:
    """One pass over every item with a provisional deadline or supplement due date, in batches by item id."""
    report = RevisionReport()
    flagged = select(RoutedItem).where(or_(RoutedItem.deadline_provisional == true(),
                                           and_(RoutedItem.supplement_due_date_provisional == true(),
                                                RoutedItem.status == "supplement_requested")))
    for uow, rows in locked_batches(unit_of_work_factory, flagged, (RoutedItem.id,), lambda row: (row[0].id,),
                                    batch_size=batch_size):
        now = uow.clock.now()
        for (item,) in rows:
            report.examined += 1
            _revise_item(uow, item, rules=rules, now=now, report=report)
    return report


def _matter_days(rules, matter_code: str) -> tuple[int | None, int | None]:
    matter = rules.catalogue.matters.get(matter_code)
    return (matter.legal_days, matter.promised_days) if matter else (None, None)


def _revise_item(uow, item: RoutedItem, *, rules, now: datetime, report: RevisionReport) -> None:
    calendar = rules.calendar
    start = item.deadlines_counted_from or item.clock_started_at
    start_day = start.astimezone(SHANGHAI).date()
    legal_fallback, promised_fallback = _matter_days(rules, item.matter_code)
    legal_days, promised_days = item.legal_days, item.promised_days
    supplement_days = item.supplement_due_days
    filled = False
    if item.deadline_provisional and legal_days is None:
        legal_days = count_for_backfill(calendar, start=start_day, fallback=legal_fallback,
                                        stored=item.legal_deadline.astimezone(SHANGHAI).date())
        filled = True
    if item.deadline_provisional and promised_days is None:
        promised_days = count_for_backfill(calendar, start=start_day, fallback=promised_fallback,
                                           stored=item.promised_deadline.astimezone(SHANGHAI).date())
        filled = True
    supplement_open = (item.status == "supplement_requested" and bool(item.supplement_due_date_provisional)
                       and item.supplement_due_date is not None and item.supplement_requested_on is not None)
    if supplement_open and supplement_days is None:
        supplement_days = count_for_backfill(calendar, start=item.supplement_requested_on,
                                             stored=item.supplement_due_date)
        filled = True

    legal = promised = None
    if item.deadline_provisional:
        legal = revise_deadline(calendar, start=start, days=legal_days,
                                stored=item.legal_deadline, stored_provisional=True)
        promised = revise_deadline(calendar, start=start, days=promised_days,
                                   stored=item.promised_deadline, stored_provisional=True)
    supplement: Revision | None = None
    if supplement_open:
        supplement = revise_due_date(calendar, start=item.supplement_requested_on, days=supplement_days,
                                     stored=item.supplement_due_date, stored_provisional=True)
    needed = any(r is not None and r.needed for r in (legal, promised, supplement))
    if not needed and not filled:
        return

    values = {"legal_days": legal_days, "promised_days": promised_days, "supplement_due_days": supplement_days}
    if needed:
        values["updated_at"] = now
        if legal is not None:
            values.update(legal_deadline=legal.after, promised_deadline=promised.after,
                          deadline_provisional=legal.provisional or promised.provisional)
        if supplement is not None:
            values.update(supplement_due_date=supplement.after, supplement_due_date_provisional=supplement.provisional)
    # Only the row as it was read: a second pass, another replica or a staff action in between leaves it be.
    written = uow.session.execute(
        update(RoutedItem)
        .where(RoutedItem.id == item.id, RoutedItem.updated_at == item.updated_at,
               RoutedItem.deadline_provisional == item.deadline_provisional,
               RoutedItem.supplement_due_date_provisional.is_(None) if item.supplement_due_date_provisional is None
               else RoutedItem.supplement_due_date_provisional == item.supplement_due_date_provisional)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if written != 1:
        report.conflicts += 1
        return
    report.counts_filled += int(filled)
    if not needed:
        return

    new_legal = legal.after if legal else item.legal_deadline
    new_promised = promised.after if promised else item.promised_deadline
    new_provisional = (legal.provisional or promised.provisional) if legal else item.deadline_provisional
    details = {"legal_deadline": [item.legal_deadline.isoformat(), new_legal.isoformat()],
               "promised_deadline": [item.promised_deadline.isoformat(), new_promised.isoformat()],
               "deadline_provisional": [item.deadline_provisional, new_provisional]}
    if supplement is not None:
        details["supplement_due_date"] = [supplement.before.isoformat(), supplement.after.isoformat()]
        details["supplement_due_date_provisional"] = [True, supplement.provisional]
    changed = any(r is not None and r.changed for r in (legal, promised, supplement))
    uow.session.add(ItemHistoryEntry(
        item_id=item.id, at=now, actor=SYSTEM_ACTOR, action="revise-deadlines", from_status=item.status,
        to_status=item.status, reason_code="calendar_arrangement_loaded",
        note=("法定节假日安排已发布，期限按正式安排重新计算" if changed
              else "法定节假日安排已发布，期限不变，取消“暂定”标记"),
        details=json.dumps(details, ensure_ascii=False)))
    uow.publish(item_event(
        ItemDeadlineRevisedV1, item, at=now, legal_deadline=new_legal, promised_deadline=new_promised,
        deadline_provisional=new_provisional, previous_legal_deadline=item.legal_deadline,
        previous_promised_deadline=item.promised_deadline,
        supplement_due_date=supplement.after if supplement else None,
        supplement_due_date_provisional=supplement.provisional if supplement else None,
        previous_supplement_due_date=supplement.before if supplement else None, revised_at=now))
    report.revised += 1
    report.dates_changed += int(changed)
    log.info("provisional deadlines revised", item_id=item.id, dates_changed=changed,
             still_provisional=new_provisional)


DEFERRAL_REVISIONS_CONSUMER = "routing.deferral-revisions"


def apply_deferral_revision(event: CloudEvent, *, unit_of_work: UnitOfWork) -> int:
    """Intake counted a 容缺 due date again: routing's copy (which reminds and expires by it) follows.
    Returns how many pending materials moved (0 for a redelivery, or when the date did not move)."""
    revised = event.payload()
    if not isinstance(revised, DeferralDueDateRevisedV1):
        raise PermanentError(f"{DEFERRAL_REVISIONS_CONSUMER} cannot handle {event.type}")
    with unit_of_work as uow:
        if not uow.claim_message(DEFERRAL_REVISIONS_CONSUMER, event):
            return 0
        moved = uow.session.execute(
            update(DeferredMaterial)
            .where(DeferredMaterial.case_id == revised.case_id,
                   DeferredMaterial.material_code == revised.material_code,
                   DeferredMaterial.state == "pending", DeferredMaterial.due_date != revised.due_date)
            .values(due_date=revised.due_date, reminded_at=None)
            .execution_options(synchronize_session=False)).rowcount
        uow.commit()
    if moved:
        log.info("deferred material due date follows intake's revision", case_id=revised.case_id,
                 material=revised.material_code, due_date=revised.due_date.isoformat())
    return moved
