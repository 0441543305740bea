"""Deadlines are rows, not timers in memory: three replicas sweeping every 50 ms fire each deadline exactly
once, and deadlines that passed while the service was down fire at the first sweep after it starts."""

from __future__ import annotations

from collections import Counter

import pytest
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import find_free_port

from shared.clock import FrozenClock
from tests.support.escalation_harness import EscalationHarness, escalation_on, query, start_stack, wait_until
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

FAST = {"SANJI_ESCALATION_SWEEP_SECONDS": 0.05}


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


def pending_due(database_url: str, clock: FrozenClock) -> int:
    return query(database_url, "SELECT count(*) FROM escalation_deadlines WHERE state = 'pending' AND due_at <= :now",
                 now=clock.now())[0][0]


def test_three_replicas_fire_each_deadline_exactly_once(container_factory, make_service_config, web_config_port,
                                                        web_session, rabbit_config, database_url, clock):
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a database only on PostgreSQL; SQLite runs one replica")
    stack = start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                        database_url, clock, **FAST)
    replicas = [stack.container]
    for _ in range(2):
        replica = container_factory(escalation_on(clock), make_service_config("escalation", web_port=find_free_port(),
                                                                              **FAST))
        replica.start()
        replicas.append(replica)
    items = {}
    for matter, copies in (("residence-permit", 4), ("employment-registration", 3),
                           ("property-management-complaint", 3)):
        for _ in range(copies):
            items.update({item_id: matter for item_id in stack.submit(matter).values()})

    clock._at = at(2026, 12, 31, 9, 0)   # past every warning, promised and legal limit, and every loop's box
    wait_until(lambda: pending_due(database_url, clock) == 0, 20, "every due deadline fired")
    for _ in range(2):                   # every replica sweeps twice more over what has fired
        for replica in replicas:
            with entrypoint_waiter(replica, "fire_due_deadlines", timeout=10):
                pass

    def per_item(event_type, **match):
        return Counter(e["item_id"] for e in stack.published(event_type)
                       if all(e[key] == value for key, value in match.items()))

    assert per_item("item.deadline-warning.v1") == Counter(dict.fromkeys(items, 1))
    assert per_item("item.supervision-escalated.v1", stage="promised_breach") == Counter(dict.fromkeys(items, 1))
    assert per_item("item.supervision-escalated.v1", stage="legal_breach") == Counter(dict.fromkeys(items, 1))
    complaints = [item_id for item_id, matter in items.items() if matter == "property-management-complaint"]
    assert per_item("escalation.ordered.v1") == Counter(dict.fromkeys(complaints, 1))
    fired = query(database_url, "SELECT kind, count(*) FROM escalation_deadlines WHERE state = 'fired' GROUP BY kind")
    assert dict(fired) == {"deadline_warning": 10, "promised_breach": 10, "legal_breach": 10, "loop_community": 3}
    for item_id in complaints:           # and routing moved each complaint up exactly one level
        stack.wait_item(item_id, lambda v: v["level"] == "street", "complaint at the street")
    assert len(stack.published("item.escalated.v1")) == 3


def test_deadlines_that_passed_while_the_service_was_down_fire_on_start(container_factory, make_service_config,
                                                                       web_config_port, web_session, rabbit_config,
                                                                       database_url, clock):
    stack = start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                        database_url, clock, SANJI_ESCALATION_SWEEP_SECONDS=0.1)
    permit = stack.submit("residence-permit")["residence-permit"]
    complaint = stack.submit("property-management-complaint")["property-management-complaint"]
    with entrypoint_waiter(stack.container, "fire_due_deadlines", timeout=10):
        pass                             # it sweeps while up; nothing is due
    assert stack.published("item.deadline-warning.v1") == []
    stack.container.stop()

    clock._at = at(2026, 12, 11, 9, 0)   # while it is down: both warnings (12-10 15:48) and the loop's box (12-03)
    port = find_free_port()
    restarted = container_factory(escalation_on(clock), make_service_config(
        "escalation", web_port=port, SANJI_ESCALATION_SWEEP_SECONDS=0.1))
    with entrypoint_waiter(restarted, "fire_due_deadlines", timeout=10,
                           callback=lambda worker_ctx, result, exc_info: bool(result and result["fired"])):
        restarted.start()

    assert sorted(w["item_id"] for w in stack.published("item.deadline-warning.v1")) == sorted([permit, complaint])
    assert [(o["item_id"], o["from_level"]) for o in stack.published("escalation.ordered.v1")] == [
        (complaint, "community")]
    harness = EscalationHarness(stack.routing, restarted, port)
    harness.wait_item(complaint, lambda v: v["level"] == "street", "complaint at the street")
    with entrypoint_waiter(restarted, "fire_due_deadlines", timeout=10):
        pass                             # a later sweep finds nothing more: each fired once
    assert len(stack.published("item.deadline-warning.v1")) == 2
    assert len(stack.published("escalation.ordered.v1")) == 1
