"""吹哨: when an item reaches the street or the district by escalation, the departments it names are called in;
each must acknowledge within 30 minutes; an unacknowledged call is escalated in turn and takes the item up."""

from __future__ import annotations

import pytest

from shared.clock import FrozenClock
from tests.support.escalation_harness import start_stack
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

COMPLAINT = "property-management-complaint"


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    return start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                       database_url, clock)


def escalated_to_the_street(stack, clock) -> str:
    item_id = stack.submit(COMPLAINT)[COMPLAINT]
    clock._at = at(2026, 12, 3, 17, 31)
    stack.sweep()
    stack.wait_item(item_id, lambda v: v["level"] == "street" and len(v["calls"]) == 2, "calls at the street")
    return item_id


def test_an_unacknowledged_call_is_escalated_and_takes_the_item_up(stack, clock):
    item_id = escalated_to_the_street(stack, clock)
    calls = {c["department_code"]: c for c in stack.view(item_id)["calls"]}
    assert {d: (c["level"], c["unit_code"], c["state"]) for d, c in calls.items()} == {
        "housing": ("street", "320113003000", "called"), "civil": ("street", "320113003000", "called")}
    assert calls["housing"]["ack_due_at"].startswith("2026-12-03T10:01")  # 30 minutes after the call

    clock._at = at(2026, 12, 3, 17, 50)
    acknowledged = stack.post(f"/v1/whistle-calls/{calls['housing']['call_id']}/acknowledge", "housing-maigaoqiao",
                              {"note": "物业办已派员到场"})
    assert (acknowledged["state"], acknowledged["acknowledged_by"]) == ("acknowledged", "dept-maigaoqiao-housing")
    again = stack.post(f"/v1/whistle-calls/{calls['housing']['call_id']}/acknowledge", "housing-maigaoqiao")
    assert again["acknowledged_at"] == acknowledged["acknowledged_at"]   # twice is once

    clock._at = at(2026, 12, 3, 18, 0)                                   # civil's limit not yet passed
    assert stack.sweep()["acted"] == {}
    clock._at = at(2026, 12, 3, 18, 2)
    assert stack.sweep()["acted"] == {"whistle_ack": 1}

    (escalated,) = stack.published("whistle.escalated.v1")
    assert (escalated["department_code"], escalated["escalated_to_level"], escalated["escalated_to_unit_code"],
            escalated["item_ordered_up"]) == ("civil", "district", "320113000000", True)
    orders = stack.published("escalation.ordered.v1")
    assert [(o["from_level"], o["reason"]) for o in orders] == [("community", "internal_loop_expired"),
                                                               ("street", "whistle_unacknowledged")]
    at_district = stack.wait_item(item_id, lambda v: v["level"] == "district" and len(v["calls"]) == 4,
                                  "district calls")
    states = sorted((c["caller_level"], c["department_code"], c["state"]) for c in at_district["calls"])
    assert states == [("district", "civil", "called"), ("district", "housing", "called"),
                      ("street", "civil", "escalated"), ("street", "housing", "acknowledged")]
    late = stack.post(f"/v1/whistle-calls/{calls['civil']['call_id']}/acknowledge", "civil-qixia", expect=409)
    assert late["reason"] == "call_escalated"

    # At the district nothing is above: an unanswered call goes to the district's own supervision.
    clock._at = at(2026, 12, 4, 9, 0)
    assert stack.sweep()["acted"] == {"whistle_ack": 2}
    top = [e for e in stack.published("whistle.escalated.v1") if e["caller_level"] == "district"]
    assert {(e["escalated_to_unit_code"], e["item_ordered_up"]) for e in top} == {("320113000000", False)}
    assert len(stack.published("escalation.ordered.v1")) == 2


def test_only_the_called_department_within_its_jurisdiction_may_acknowledge(stack, clock):
    item_id = escalated_to_the_street(stack, clock)
    housing = next(c for c in stack.view(item_id)["calls"] if c["department_code"] == "housing")
    path = f"/v1/whistle-calls/{housing['call_id']}/acknowledge"

    assert stack.post(path, "housing-xuanwu", expect=403)["reason"] == "call_forbidden"   # another district
    assert stack.post(path, "police-qixia", expect=403)["reason"] == "call_forbidden"     # another department
    assert stack.post(path, "maigaoqiao", expect=403)["reason"] == "call_forbidden"       # staff, not a department
    assert stack.post("/v1/whistle-calls/no-such-call/acknowledge", "housing-qixia", expect=404)["reason"] == (
        "call_not_found")
    listed = stack.get("/v1/whistle-calls", "housing-qixia")
    assert [c["call_id"] for c in listed["calls"]] == [housing["call_id"]]
    assert stack.get("/v1/whistle-calls", "housing-xuanwu")["calls"] == []
    stack.post(path, "housing-qixia")                                    # the district system acts for its street desk

    clock._at = at(2026, 12, 3, 18, 10)
    refused = stack.post(f"/v1/whistle-calls/{housing['call_id']}/acknowledge", "housing-qixia")
    assert refused["state"] == "acknowledged"
    civil = next(c for c in stack.view(item_id)["calls"] if c["department_code"] == "civil")
    too_late = stack.post(f"/v1/whistle-calls/{civil['call_id']}/acknowledge", "civil-qixia", expect=409)
    assert too_late["reason"] == "ack_limit_passed"                      # the sweep escalates it next


def test_a_call_made_for_an_item_that_is_then_resolved_is_cancelled(stack, clock):
    item_id = escalated_to_the_street(stack, clock)
    clock._at = at(2026, 12, 3, 17, 40)
    stack.routing.work_to_resolution(item_id, "maigaoqiao")
    resolved = stack.wait_item(item_id, lambda v: v["status"] == "resolved", "resolution seen")
    assert {c["state"] for c in resolved["calls"]} == {"cancelled"}
    clock._at = at(2026, 12, 4, 9, 0)
    assert stack.sweep()["fired"] == {}
    assert stack.published("whistle.escalated.v1") == []


def test_an_item_escalated_by_a_supervisor_calls_the_departments_in_too(stack, clock):
    from nameko.testing.services import entrypoint_waiter

    from shared.events import CloudEvent, EscalationOrderedV1
    from tests.support.bus import publish_raw

    item_id = stack.submit(COMPLAINT)[COMPLAINT]
    clock._at = at(2026, 12, 1, 9, 0)
    order = EscalationOrderedV1(item_id=item_id, district_code="320113000000", from_level="community",
                                reason="supervisor_decision", ordered_at=clock.now())
    with entrypoint_waiter(stack.routing.container, "on_escalation_ordered"):
        publish_raw(stack.amqp, CloudEvent.wrap(order, source="/sanji/escalation", time=clock.now())
                    .model_dump_json(), order.routing_key())
    view = stack.wait_item(item_id, lambda v: v["level"] == "street" and len(v["calls"]) == 2, "calls at the street")
    assert view["loop_outcome"] == "escalated"
    assert {c["department_code"] for c in view["calls"]} == {"housing", "civil"}


def test_a_street_blows_the_whistle_by_hand_at_any_time(stack, clock):
    # Still in the community's own loop: no timer has escalated it, the street calls the departments in itself.
    item_id = stack.submit(COMPLAINT)[COMPLAINT]
    path = f"/v1/items/{item_id}/whistle"
    assert stack.post(path, "xinhe", {"reason": "多次投诉"}, expect=403)["reason"] == "whistle_forbidden"  # community
    assert stack.post(path, "xiaolingwei", {"reason": "多次投诉"}, expect=403)["reason"] == "whistle_forbidden"
    assert stack.post(path, "maigaoqiao", {"reason": "13812345678"}, expect=422)["reason"] == "personal_data_in_text"
    assert stack.view(item_id)["calls"] == []

    made = stack.post(path, "maigaoqiao", {"reason": "居民多次反映，街道吹哨"}, expect=201)

    assert sorted(c["department_code"] for c in made["calls"]) == ["civil", "housing"]
    assert {(c["caller_level"], c["caller_unit_code"], c["state"]) for c in made["calls"]} == {
        ("street", "320113003000", "called")}
    assert len(stack.view(item_id)["calls"]) == 2
    assert stack.post(path, "maigaoqiao", {"reason": "再次吹哨"}, expect=409)["reason"] == "already_called"
    # The called department acknowledges as for a timed call.
    housing = next(c for c in made["calls"] if c["department_code"] == "housing")
    stack.post(f"/v1/whistle-calls/{housing['call_id']}/acknowledge", "housing-qixia")
