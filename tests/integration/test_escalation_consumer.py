"""The escalation consumer on the real database and broker: a redelivered event changes nothing, events out of
order leave the newest state, and poison goes to the dead letters while the queue keeps flowing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nameko.testing.services import entrypoint_waiter

from services.escalation.handlers import handle_event
from services.escalation.records import EscalationRules
from services.escalation.service import EscalationService
from services.escalation.settings import DEFAULT_CAUSES_FILE, EscalationSettings, load_causes
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.db import session_factory, shared_engine
from shared.events import CloudEvent, ItemResolvedV1, ItemRoutedV1
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar
from tests.support.bus import dead_letters, publish_raw
from tests.support.db import count_rows
from tests.support.escalation_harness import HOOKED

pytestmark = pytest.mark.integration

ROUTED_AT = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)   # Monday 09:00 Shanghai
PLACEMENT = dict(item_id="item-0001", case_id="case-0001", case_number="SJ20261130-0001",
                 matter_code="property-management-complaint", department_code="grid", level="community",
                 unit_code="320113003021", district_code="320113000000", community_code="320113003021")


def routed(**changes) -> CloudEvent:
    payload = ItemRoutedV1(**{**PLACEMENT, "status": "queued", "occurred_at": ROUTED_AT,
                              "legal_deadline": datetime(2026, 12, 21, 9, 30, tzinfo=UTC),
                              "promised_deadline": datetime(2026, 12, 14, 9, 30, tzinfo=UTC),
                              "deadline_provisional": False, "catalogue_version": "test", **changes})
    return CloudEvent.wrap(payload, source="/sanji/routing", time=ROUTED_AT)


def resolved() -> CloudEvent:
    payload = ItemResolvedV1(**{**PLACEMENT, "status": "resolved", "occurred_at": datetime(2026, 12, 1, 2, 0,
                                                                                            tzinfo=UTC),
                                "actor": "staff-xinhe-community", "result": "已解决",
                                "delivery": {"method": "door", "agent_id": "sw-017"}})
    return CloudEvent.wrap(payload, source="/sanji/routing", time=payload.occurred_at)


@pytest.fixture
def handle(database_url):
    rules = EscalationRules(catalogue=load_catalogue(REPO_ROOT / "catalogue" / "nanjing"),
                            calendar=WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml"),
                            settings=EscalationSettings(), causes=load_causes(DEFAULT_CAUSES_FILE))
    factory = session_factory(shared_engine(database_url))

    def run(event: CloudEvent) -> str:
        unit_of_work = UnitOfWork(factory, source="/sanji/escalation", clock=FrozenClock(ROUTED_AT))
        return handle_event(event, unit_of_work=unit_of_work, rules=rules)

    return run


def deadline_states(database_url):
    from tests.support.escalation_harness import query

    return dict(query(database_url, "SELECT kind, state FROM escalation_deadlines"))


def test_the_handler_given_one_event_twice_changes_state_once(handle, database_url):
    event = routed()
    assert handle(event) == "cn.sanji.item.routed.v1"
    assert handle(event) == "duplicate"
    assert count_rows(database_url, "escalation_items", "escalation_deadlines", "processed_messages") == {
        "escalation_items": 1, "escalation_deadlines": 4, "processed_messages": 1}
    assert deadline_states(database_url) == {"loop_community": "pending", "deadline_warning": "pending",
                                             "promised_breach": "pending", "legal_breach": "pending"}


def test_a_resolution_arriving_before_the_routing_leaves_the_item_closed_and_owing_nothing(handle, database_url):
    handle(resolved())
    handle(routed())
    from tests.support.escalation_harness import query

    assert query(database_url, "SELECT status, loop_state FROM escalation_items") == [("resolved", None)]
    assert set(deadline_states(database_url).values()) <= {"cancelled"}


def test_poison_is_dead_lettered_and_the_queue_keeps_flowing(container_factory, make_service_config, rabbit_config,
                                                            database_url):
    container = container_factory(EscalationService, make_service_config("escalation", **HOOKED))
    container.start()
    amqp = rabbit_config["AMQP_URI"]
    key = "item.routed.320113000000.community.320113003021.grid"
    # From the owner of the type it claims (or the sender check would refuse it before any handler runs).
    wrong_type = routed().model_copy(update={"type": "cn.sanji.case.submitted.v1", "source": "/sanji/intake"})

    publish_raw(amqp, '{"hello": "world"}', key)
    with entrypoint_waiter(container, "on_event"):
        publish_raw(amqp, wrong_type.model_dump_json(), key)
    assert len(dead_letters(amqp, expect=2)) == 2

    with entrypoint_waiter(container, "on_event"):
        publish_raw(amqp, routed().model_dump_json(), key)
    assert count_rows(database_url, "escalation_items")["escalation_items"] == 1
