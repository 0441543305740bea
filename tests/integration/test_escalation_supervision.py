"""督办 for every item: a warning at 80 % of the promised time, then the promised-limit breach (first escalation,
to the supervising level), then the legal-limit breach (second escalation); a paused clock holds them back."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.clock import FrozenClock
from tests.support.escalation_harness import start_stack
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    return start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                       database_url, clock)


def test_a_warning_then_the_promised_breach_then_the_legal_breach(stack, clock):
    # Residence permit at 迈皋桥街道: promised 10 working days (Mon 12-14 17:30), legal 15 (Mon 12-21 17:30).
    item_id = stack.submit("residence-permit")["residence-permit"]
    due = {d["kind"]: d["due_at"] for d in stack.view(item_id)["deadlines"]}
    # 80 % of the working time from Mon 11-30 09:00 to Mon 12-14 17:30 is used on Thu 12-10 at 15:48 Shanghai.
    assert due["deadline_warning"].startswith("2026-12-10T07:48")
    assert due["promised_breach"].startswith("2026-12-14T09:30")
    assert due["legal_breach"].startswith("2026-12-21T09:30")

    clock._at = at(2026, 12, 10, 15, 47)
    assert stack.sweep()["acted"] == {}
    clock._at = at(2026, 12, 10, 15, 49)
    assert stack.sweep()["acted"] == {"deadline_warning": 1}
    (warning,) = stack.published("item.deadline-warning.v1")
    assert (warning["item_id"], warning["level"], warning["unit_code"]) == (item_id, "street", "320113003000")
    assert 0.8 <= warning["share_used"] < 0.81
    assert datetime.fromisoformat(warning["raised_at"]) == at(2026, 12, 10, 15, 49)

    clock._at = at(2026, 12, 14, 17, 31)
    assert stack.sweep()["acted"] == {"promised_breach": 1}
    clock._at = at(2026, 12, 21, 17, 31)
    assert stack.sweep()["acted"] == {"legal_breach": 1}
    assert stack.sweep()["fired"] == {}                                  # each stage once

    breaches = stack.published("item.supervision-escalated.v1")
    assert [(b["stage"], b["supervising_level"], b["supervising_unit_code"]) for b in breaches] == [
        ("promised_breach", "district", "320113000000"), ("legal_breach", "district", "320113000000")]
    assert [b["deadline"][:16] for b in breaches] == ["2026-12-14T09:30", "2026-12-21T09:30"]
    assert stack.routing.get(item_id)["level"] == "street"              # 督办 escalates attention, not the item
    kinds = [a["kind"] for a in stack.view(item_id)["actions"]]
    assert kinds == ["deadline_warning", "supervision_promised_breach", "supervision_legal_breach"]


def test_a_community_item_is_supervised_by_its_street_then_its_district(stack, clock):
    item_id = stack.submit("employment-registration")["employment-registration"]  # community, promised 1, legal 5
    clock._at = at(2026, 12, 8, 9, 0)
    assert stack.sweep()["acted"] == {"deadline_warning": 1, "promised_breach": 1, "legal_breach": 1}
    breaches = stack.published("item.supervision-escalated.v1")
    assert [(b["stage"], b["supervising_unit_code"]) for b in breaches] == [
        ("promised_breach", "320113003000"), ("legal_breach", "320113000000")]
    assert {b["item_id"] for b in breaches} == {item_id}


def test_a_paused_clock_holds_the_stages_back_and_the_new_deadlines_are_kept(stack, clock):
    item_id = stack.submit("residence-permit")["residence-permit"]   # promised Mon 12-14, legal Mon 12-21
    stack.act(item_id, "claim", "maigaoqiao")
    stack.act(item_id, "accept", "maigaoqiao")
    clock._at = at(2026, 12, 9, 10, 0)
    paused = stack.act(item_id, "request-supplement", "maigaoqiao", {"materials": ["photo"]})
    assert paused["clock_paused"] is True
    held = stack.wait_item(item_id, lambda v: v["clock_paused"], "pause seen")
    assert [d["kind"] for d in held["deadlines"] if d["state"] == "pending"] == []

    clock._at = at(2026, 12, 15, 9, 0)                                   # past the original promised deadline
    assert stack.sweep()["fired"] == {}

    resumed = stack.act(item_id, "record-supplement", "maigaoqiao", {"materials": ["photo"]})
    assert resumed["promised_deadline"].startswith("2026-12-18")        # moved on by the 4 paused working days
    view = stack.wait_item(item_id, lambda v: not v["clock_paused"], "resumption seen")
    due = {d["kind"]: d["due_at"] for d in view["deadlines"] if d["state"] == "pending"}
    assert due["promised_breach"].startswith("2026-12-18T09:30")
    assert due["legal_breach"].startswith("2026-12-25T09:30")           # the legal limit moves as far
    # The warning keeps its 20 % of the original working time before the new deadline (paused days not used):
    assert due["deadline_warning"].startswith("2026-12-16T07:48")

    assert stack.sweep()["fired"] == {}                                 # 12-15: nothing due yet
    clock._at = at(2026, 12, 18, 17, 31)
    assert stack.sweep()["acted"] == {"deadline_warning": 1, "promised_breach": 1}
    assert [b["stage"] for b in stack.published("item.supervision-escalated.v1")] == ["promised_breach"]


def test_a_released_item_gets_a_fresh_clock_and_a_closed_item_owes_nothing(stack, clock):
    items = stack.submit("residence-permit", "flexible-employment-insurance")
    waiting = stack.view(items["flexible-employment-insurance"])
    assert (waiting["status"], [d for d in waiting["deadlines"] if d["state"] == "pending"]) == ("waiting", [])

    clock._at = at(2026, 12, 8, 10, 0)
    stack.routing.work_to_resolution(items["residence-permit"], "maigaoqiao")
    closed = stack.wait_item(items["residence-permit"], lambda v: v["status"] == "resolved", "resolution seen")
    assert [d for d in closed["deadlines"] if d["state"] == "pending"] == []
    released = stack.wait_item(items["flexible-employment-insurance"], lambda v: v["status"] == "queued",
                               "release seen")
    due = {d["kind"]: d["due_at"] for d in released["deadlines"] if d["state"] == "pending"}
    assert due["promised_breach"].startswith("2026-12-15T09:30")        # 5 working days from the release

    clock._at = at(2026, 12, 31, 9, 0)
    assert stack.sweep()["acted"] == {"deadline_warning": 1, "promised_breach": 1, "legal_breach": 1}
    assert {b["item_id"] for b in stack.published("item.supervision-escalated.v1")} == {
        items["flexible-employment-insurance"]}
