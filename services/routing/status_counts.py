"""Routing's items per status, kept instead of counted: ``/metrics`` must not scan a table of years of items.

Every transaction that creates an item or changes its status inserts a +1 / -1 row per status into
``routing_item_status_changes`` (services/routing/adapters/orm.py, a ``before_flush`` hook, so no code path can
forget it); inserts only, so concurrent item actions never wait for each other on a counter row. A timer folds
those rows into ``routing_item_status_counts`` (one row per status). The gauge is the counts plus the rows not
folded yet, read in one statement: exact, and a handful of rows whatever the size of the table.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, literal_column, select, union_all, update
from sqlalchemy.orm import Session

from services.routing.adapters.orm import ItemStatusChange, ItemStatusCount
from shared.outbox import UnitOfWork, insert_ignoring_duplicates


def fold_status_changes(unit_of_work: UnitOfWork) -> int:
    """Move the recorded changes into the counts, in one transaction; returns how many rows it folded.

    ``DELETE … RETURNING`` takes exactly the rows committed when it runs (a replica folding at the same time
    waits for those rows and then finds them gone), so no change is counted twice or lost. The counts are
    updated in the order of their status, so two folds never deadlock."""
    with unit_of_work as uow:
        session = uow.session
        folded = session.execute(delete(ItemStatusChange).returning(ItemStatusChange.status,
                                                                    ItemStatusChange.change)).all()
        totals: dict[str, int] = defaultdict(int)
        for status, change in folded:
            totals[status] += change
        for status in sorted(totals):
            session.execute(insert_ignoring_duplicates(session, ItemStatusCount).values(status=status, items=0))
            session.execute(update(ItemStatusCount).where(ItemStatusCount.status == status)
                            .values(items=ItemStatusCount.items + totals[status]))
        uow.commit()
    return len(folded)


def items_per_status(session: Session) -> dict[str, int]:
    """Items per status now: the folded counts plus the changes not folded yet."""
    rows = union_all(select(ItemStatusCount.status, ItemStatusCount.items.label("n")),
                     select(ItemStatusChange.status, ItemStatusChange.change.label("n"))).subquery()
    query = select(rows.c.status, literal_column("sum(n)")).group_by(rows.c.status)
    return {status: int(total) for status, total in session.execute(query).all()}
