"""Provisional due times revised once their year's holiday arrangement is loaded.

A rectification's due time (``deadline_days`` working days after it opened) and escalation time
(``escalate_after_days`` after the due time), and a 督办单's due time (``due_days`` after it was issued), counted
across a year without the State Council's arrangement (调休 unknown), are stored with their provisional flags.
When the arrangement is loaded (``sanji calendar load``, or a chinesecalendar upgrade), every row still flagged is
counted again from its stored start and count under the calendar in force (``domain.revise_rectification``,
shared/workdays.py ``revise_deadline``). A rectification whose times moved or whose flags cleared is updated and
publishes ``rectification.due-date-revised`` (notification tells the owning unit's inbox when the due time moved);
a 督办单 is updated in place (its views show the revised time; it has no event of its own for it). The overdue
sweep then goes by the stored, revised times.

Safe to run any number of times, in any number of replicas at once: rows are taken in batches under
``FOR UPDATE SKIP LOCKED`` (PostgreSQL), and each is written by a conditional update that matches only the row as
it was read (its times and flags), so a second run, or a replica that read the row before the first wrote it,
changes nothing and publishes nothing. A settled time is never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import or_, select, true, update

from services.evaluation import domain
from services.evaluation.adapters.orm import Rectification, SupervisionOrder
from shared.db import locked_batches
from shared.events import RectificationDueDateRevisedV1
from shared.workdays import revise_deadline

log = structlog.get_logger(__name__)

BATCH_SIZE = 100


@dataclass
class RevisionReport:
    examined: int = 0
    revised: int = 0          # rectifications updated with an event (a time moved or a flag cleared)
    dates_changed: int = 0    # of which a time actually moved
    orders_revised: int = 0   # 督办单 updated (a due time moved or its flag cleared)
    conflicts: int = 0        # rows changed by someone else between read and write (left for the next pass)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def revise_provisional_due_dates(unit_of_work_factory, *, rules, batch_size: int = BATCH_SIZE) -> RevisionReport:
    """One pass over every rectification and 督办单 with a provisional time, in batches by id."""
    report = RevisionReport()
    _pass(unit_of_work_factory, Rectification, Rectification.rectification_id,
          or_(Rectification.deadline_provisional == true(), Rectification.escalate_at_provisional == true()),
          lambda uow, row, now: _revise_rectification(uow, row, rules=rules, now=now, report=report),
          batch_size=batch_size, report=report)
    _pass(unit_of_work_factory, SupervisionOrder, SupervisionOrder.order_id,
          SupervisionOrder.due_at_provisional == true(),
          lambda uow, row, now: _revise_order(uow, row, rules=rules, report=report),
          batch_size=batch_size, report=report)
    return report


def _pass(unit_of_work_factory, model, key, flagged, revise, *, batch_size: int, report: RevisionReport) -> None:
    # Rows stored before evaluation_0004 have no counts: they were never flagged, and are left alone.
    counted = model.deadline_days.is_not(None) if model is Rectification else model.due_days.is_not(None)
    for uow, rows in locked_batches(unit_of_work_factory, select(model).where(flagged, counted), (key,),
                                    lambda row: (getattr(row[0], key.key),), batch_size=batch_size):
        now = uow.clock.now()
        for (row,) in rows:
            report.examined += 1
            revise(uow, row, now)


def _revise_rectification(uow, r: Rectification, *, rules, now, report: RevisionReport) -> None:
    revision = domain.revise_rectification(
        rules.calendar, opened_at=r.opened_at, deadline_days=r.deadline_days,
        escalate_after_days=r.escalate_after_days, deadline=r.deadline,
        deadline_provisional=bool(r.deadline_provisional), escalate_at=r.escalate_at,
        escalate_at_provisional=bool(r.escalate_at_provisional))
    if not revision.needed:
        return
    # Only the row as it was read: a second pass or another replica in between leaves it be.
    written = uow.session.execute(
        update(Rectification)
        .where(Rectification.rectification_id == r.rectification_id, Rectification.deadline == r.deadline,
               Rectification.escalate_at == r.escalate_at,
               Rectification.deadline_provisional == bool(r.deadline_provisional),
               Rectification.escalate_at_provisional == bool(r.escalate_at_provisional))
        .values(deadline=revision.deadline.after, deadline_provisional=revision.deadline.provisional,
                escalate_at=revision.escalate_at.after, escalate_at_provisional=revision.escalate_at.provisional)
        .execution_options(synchronize_session=False)).rowcount
    if written != 1:
        report.conflicts += 1
        return
    uow.publish(RectificationDueDateRevisedV1(
        item_id=r.item_id, case_id=r.case_id, matter_code=r.matter_code, department_code=r.department_code,
        level=r.level, unit_code=r.unit_code, district_code=r.district_code, rectification_id=r.rectification_id,
        origin=r.origin, origin_id=r.origin_id, state=r.state, deadline=revision.deadline.after,
        deadline_provisional=revision.deadline.provisional, previous_deadline=r.deadline,
        escalate_at=revision.escalate_at.after, escalate_at_provisional=revision.escalate_at.provisional,
        previous_escalate_at=r.escalate_at, revised_at=now))
    report.revised += 1
    report.dates_changed += int(revision.changed)
    log.info("provisional rectification due time revised", rectification_id=r.rectification_id,
             dates_changed=revision.changed, still_provisional=revision.deadline.provisional)


def _revise_order(uow, o: SupervisionOrder, *, rules, report: RevisionReport) -> None:
    revision = revise_deadline(rules.calendar, start=o.issued_at, days=o.due_days, stored=o.due_at,
                               stored_provisional=True)
    if not revision.needed:
        return
    written = uow.session.execute(
        update(SupervisionOrder)
        .where(SupervisionOrder.order_id == o.order_id, SupervisionOrder.due_at == o.due_at,
               SupervisionOrder.due_at_provisional == true())
        .values(due_at=revision.after, due_at_provisional=revision.provisional)
        .execution_options(synchronize_session=False)).rowcount
    if written != 1:
        report.conflicts += 1
        return
    report.orders_revised += 1
    log.info("provisional 督办单 due time revised", order_id=o.order_id, date_changed=revision.changed,
             still_provisional=revision.provisional)
