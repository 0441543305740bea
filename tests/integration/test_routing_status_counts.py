"""Routing's items per status are kept, not counted (services/routing/status_counts.py): whatever path changes a
status records it, the fold keeps the figure, and the figure always equals a full count of the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.routing import handlers
from services.routing.adapters.orm import ItemStatusChange, RoutedItem
from services.routing.item_actions import WorkRules
from services.routing.metrics import RoutingItemsCollector
from services.routing.status_counts import fold_status_changes, items_per_status
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.db import session_factory, shared_engine
from shared.events import CaseSubmittedV1, CloudEvent
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar
from tests.support.cases import XINHE_COMMUNITY

pytestmark = pytest.mark.integration

SUBMITTED_AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def submitted(case_id: str, matter_codes: tuple[str, ...]) -> CloudEvent:
    payload = CaseSubmittedV1(case_id=case_id, case_number=f"SJ20261130-{case_id[-6:].upper()}",
                              community_code=XINHE_COMMUNITY, catalogue_version="test", bundle_code=None,
                              matter_codes=matter_codes, channel="kiosk", applicant_masked_name="刘**",
                              submitted_at=SUBMITTED_AT)
    return CloudEvent.wrap(payload, source="/sanji/intake", time=SUBMITTED_AT)


def counted(factory) -> dict[str, int]:
    with factory() as session:
        return dict(session.execute(select(RoutedItem.status, func.count()).group_by(RoutedItem.status)).all())


def kept(factory) -> dict[str, int]:
    with factory() as session:
        return {status: items for status, items in items_per_status(session).items() if items}


def unfolded(factory) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(ItemStatusChange))


def test_the_kept_counts_equal_a_full_count_through_routing_moves_and_folds(database_url, shipped_catalogue_dir):
    rules = WorkRules(load_catalogue(shipped_catalogue_dir),
                      WorkdayCalendar.from_file(shipped_catalogue_dir.parent.parent / "config" /
                                                "calendar-overrides.yaml"))
    factory = session_factory(shared_engine(database_url))

    def unit_of_work():
        return UnitOfWork(factory, source="/sanji/routing", clock=FrozenClock(SUBMITTED_AT))

    for number in range(3):
        handlers.route_submitted_case(submitted(f"case-{number:06d}", ("residence-permit", "employment-registration",
                                                                       "social-insurance-start")),
                                      unit_of_work=unit_of_work(), rules=rules)
    assert kept(factory) == counted(factory) == {"queued": 9}

    with factory() as session:   # statuses changed by any code path of the ORM: set, set back, set twice
        items = session.scalars(select(RoutedItem).order_by(RoutedItem.id)).all()
        items[0].status = "claimed"
        items[1].status = "claimed"
        items[1].status = "queued"               # no change in the end: nothing recorded
        items[2].status = "accepted"
        items[3].status = "resolved"
        items[4].unit_code = "320113000000"      # a move (its jurisdiction columns follow the unit)
        session.commit()
        assert (items[4].district_prefix, items[4].street_prefix) == ("320113", "320113000")
    assert kept(factory) == counted(factory) == {"queued": 6, "claimed": 1, "accepted": 1, "resolved": 1}
    changes = unfolded(factory)
    assert fold_status_changes(unit_of_work()) == changes > 0
    assert fold_status_changes(unit_of_work()) == 0                       # folding again changes nothing
    assert unfolded(factory) == 0 and kept(factory) == counted(factory)

    with factory() as session:                                            # after a fold, changes add up again
        item = session.scalars(select(RoutedItem).where(RoutedItem.status == "claimed")).one()
        item.status = "rejected"
        session.commit()
    assert kept(factory) == counted(factory) and "claimed" not in kept(factory)

    families = {family.name: family for family in RoutingItemsCollector(shared_engine(database_url)).collect()}
    gauge = {sample.labels["status"]: sample.value for sample in families["sanji_routing_items"].samples}
    assert gauge == {**dict.fromkeys(gauge, 0), **counted(factory)} and gauge["terminated"] == 0


def test_the_overdue_gauge_counts_open_items_whose_clock_runs(database_url, shipped_catalogue_dir):
    rules = WorkRules(load_catalogue(shipped_catalogue_dir),
                      WorkdayCalendar.from_file(shipped_catalogue_dir.parent.parent / "config" /
                                                "calendar-overrides.yaml"))
    factory = session_factory(shared_engine(database_url))
    handlers.route_submitted_case(submitted("case-overdue", ("residence-permit", "employment-registration",
                                                             "vocational-training-signup")),
                                  unit_of_work=UnitOfWork(factory, source="/sanji/routing",
                                                          clock=FrozenClock(SUBMITTED_AT)), rules=rules)
    past = datetime.now(UTC) - timedelta(days=1)
    with factory() as session:
        late, paused, closed = session.scalars(select(RoutedItem).order_by(RoutedItem.matter_code)).all()
        for item in (late, paused, closed):
            item.promised_deadline = past
        paused.clock_paused_at = past
        closed.status = "resolved"
        session.commit()
    families = {family.name: family for family in RoutingItemsCollector(shared_engine(database_url)).collect()}
    assert families["sanji_routing_items_overdue"].samples[0].value == 1
