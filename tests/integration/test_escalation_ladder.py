"""The internal loop and the ladder: a community problem gets its time box, then goes to the street, then to the
district, each step on time by a frozen clock; one resolved inside the loop counts for the community."""

from __future__ import annotations

import pytest

from shared.clock import FrozenClock
from tests.support.escalation_harness import start_stack
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

COMPLAINT = "property-management-complaint"   # grid; internal loop 3 working days; calls in housing and civil


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    return start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                       database_url, clock)


def acknowledge_open_calls(stack, item_id):
    """Both called departments report in time, so only the ladder's own clock moves the item."""
    for call in stack.view(item_id)["calls"]:
        if call["state"] == "called":
            who = {"housing": "housing-qixia", "civil": "civil-qixia"}[call["department_code"]]
            stack.post(f"/v1/whistle-calls/{call['call_id']}/acknowledge", who)


def test_an_internal_loop_item_goes_community_street_district_on_time(stack, clock):
    item_id = stack.submit(COMPLAINT)[COMPLAINT]
    started = stack.view(item_id)
    assert (started["level"], started["loop_state"]) == ("community", "community")
    assert started["loop_ends_at"].startswith("2026-12-03T09:30")      # 3 working days, 17:30 Shanghai

    clock._at = at(2026, 12, 3, 17, 29)                                # one minute inside the box
    assert stack.sweep()["acted"] == {}
    assert stack.view(item_id)["level"] == "community"

    clock._at = at(2026, 12, 3, 17, 31)                                # the box has run out
    assert stack.sweep()["acted"] == {"loop_community": 1}
    at_street = stack.wait_item(item_id, lambda v: v["level"] == "street" and len(v["calls"]) == 2,
                                "item at the street, departments called")
    assert (at_street["unit_code"], at_street["loop_state"], at_street["loop_outcome"]) == (
        "320113003000", "street", "escalated")
    assert stack.routing.get(item_id)["level"] == "street"             # routing moved it: level, unit, queue
    acknowledge_open_calls(stack, item_id)
    street_box = next(d for d in at_street["deadlines"] if d["kind"] == "loop_street")
    assert street_box["due_at"].startswith("2026-12-08T09:30")         # 3 working days from its arrival

    clock._at = at(2026, 12, 8, 17, 29)
    assert stack.sweep()["acted"] == {}
    clock._at = at(2026, 12, 8, 17, 31)
    assert stack.sweep()["acted"] == {"loop_street": 1}
    at_district = stack.wait_item(item_id, lambda v: v["level"] == "district" and len(v["calls"]) == 4,
                                  "item at the district, departments called")
    assert (at_district["unit_code"], at_district["loop_state"]) == ("320113000000", "done")

    orders = stack.published("escalation.ordered.v1")
    assert [(o["from_level"], o["reason"]) for o in orders] == [("community", "internal_loop_expired"),
                                                               ("street", "internal_loop_expired")]
    moved = stack.published("item.escalated.v1")
    assert [(m["from_level"], m["level"], m["unit_code"]) for m in moved] == [
        ("community", "street", "320113003000"), ("street", "district", "320113000000")]
    routed = [r for r in stack.published("item.routed.v1") if r["route_reason"] == "escalated"]
    assert [r["level"] for r in routed] == ["street", "district"]
    # Each step reached the level's own desks through 吹哨: the street's, then the district's.
    called = [(c["caller_level"], c["department_code"], c["unit_code"]) for c in stack.published("whistle.called.v1")]
    assert sorted(called) == [("district", "civil", "320113000000"), ("district", "housing", "320113000000"),
                              ("street", "civil", "320113003000"), ("street", "housing", "320113003000")]

    clock._at = at(2026, 12, 11, 9, 0)                                 # nothing is left on the ladder
    stack.sweep()
    assert len(stack.published("escalation.ordered.v1")) == 2


def test_an_item_resolved_inside_the_loop_counts_for_the_community_and_goes_nowhere(stack, clock):
    item_id = stack.submit(COMPLAINT)[COMPLAINT]
    clock._at = at(2026, 12, 2, 10, 0)
    stack.routing.work_to_resolution(item_id, "xinhe", delivery={"method": "door", "agent_id": "sw-017"})
    resolved = stack.wait_item(item_id, lambda v: v["status"] == "resolved", "resolution seen")

    assert (resolved["loop_outcome"], resolved["loop_state"]) == ("resolved_in_loop", "done")
    assert [d["kind"] for d in resolved["deadlines"] if d["state"] == "pending"] == []
    ended = [a for a in resolved["actions"] if a["kind"] == "loop_ended"]
    assert [(a["level"], a["unit_code"], a["details"]["outcome"]) for a in ended] == [
        ("community", "320113003021", "resolved_in_loop")]

    clock._at = at(2026, 12, 4, 9, 0)                                  # past the box
    assert stack.sweep()["fired"] == {}
    assert stack.published("escalation.ordered.v1") == []
    assert stack.routing.get(item_id)["level"] == "community"


def test_a_matter_without_an_internal_loop_gets_no_time_box(stack):
    item_id = stack.submit("employment-registration")["employment-registration"]  # community, no loop
    view = stack.view(item_id)
    assert (view["loop_state"], view["loop_ends_at"]) == (None, None)
    assert sorted(d["kind"] for d in view["deadlines"]) == ["deadline_warning", "legal_breach", "promised_breach"]
