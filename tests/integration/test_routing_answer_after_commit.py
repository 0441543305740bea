"""A staff action that took effect is answered as such, even if the database is lost the moment after its commit
(services/routing/item_actions.py). The answer used to be read after the commit: the fault suite's staff got a
500 for a return that had happened, returned the item again, and the resident was told of two routings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.routing import handlers, item_actions
from services.routing.adapters.orm import RoutedItem
from services.routing.item_actions import WorkRules
from services.routing.lifecycle import Action
from services.routing.schemas import NoBody
from shared.auth import Principal
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.events import CaseSubmittedV1, CloudEvent
from shared.workdays import WorkdayCalendar
from tests.support.cases import XINHE_COMMUNITY
from tests.support.db import DatabaseLostAfterCommit

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
CLERK = Principal(name="staff-xinhe-community", kind="staff", unit_code=XINHE_COMMUNITY)


def test_an_action_committed_just_before_the_database_is_lost_is_answered_with_its_effect(
        database_url, shipped_catalogue_dir):
    rules = WorkRules(load_catalogue(shipped_catalogue_dir),
                      WorkdayCalendar.from_file(shipped_catalogue_dir.parent.parent / "config" /
                                                "calendar-overrides.yaml"))
    database = DatabaseLostAfterCommit(database_url, source="/sanji/routing", clock=FrozenClock(AT))
    factory = database.factory
    submitted = CaseSubmittedV1(case_id="case-000001", case_number="SJ20261130-000001",
                                community_code=XINHE_COMMUNITY, catalogue_version="test", bundle_code=None,
                                matter_codes=("employment-registration",), channel="kiosk",
                                applicant_masked_name="刘**", submitted_at=AT)
    handlers.route_submitted_case(CloudEvent.wrap(submitted, source="/sanji/intake", time=AT),
                                  unit_of_work=database.plain_unit_of_work(),
                                  rules=rules)
    with factory() as session:
        item_id = session.scalar(select(RoutedItem.id))

    view = item_actions.act(item_id, Action.CLAIM, CLERK, NoBody(), rules=rules, now=AT,
                            unit_of_work=database.unit_of_work())

    assert (view.item_id, view.status) == (item_id, "claimed")
    database.restore()
    with factory() as session:
        assert session.scalar(select(RoutedItem.status).where(RoutedItem.id == item_id)) == "claimed"
    database.close()
