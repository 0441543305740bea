"""Staff work the items that reach them: every rule driven through the HTTP API and the bus, on a frozen clock."""

from __future__ import annotations

from datetime import date

import eventlet
import pytest
from sqlalchemy import create_engine, text

from shared.clock import FrozenClock
from shared.db import normalise_url
from tests.support.routing_harness import RoutingHarness, at, routing_on

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


@pytest.fixture
def routing(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    container = container_factory(routing_on(clock), make_service_config("routing", web_port=web_config_port))
    container.start()
    return RoutingHarness(container, web_session, rabbit_config["AMQP_URI"], database_url, clock)


# ── Working-day deadlines ───────────────────────────────────────────────────────────────────────────


def test_a_promised_deadline_spans_the_national_day_holiday(routing, clock):
    clock._at = at(2026, 9, 30, 10, 0)  # the last working day before 国庆 (Oct 1-7 off, Sat Oct 10 worked)
    items = routing.items(routing.submit("residence-permit"))

    item = routing.get(items["residence-permit"])

    # 10 working days: Oct 8, 9, 10 (调休 Saturday), 12, 13, 14, 15, 16, 19, 20.
    assert item["promised_deadline"].startswith("2026-10-20T09:30")  # 17:30 Shanghai
    assert item["legal_deadline"].startswith("2026-10-27T09:30")     # 15 working days
    assert item["deadline_provisional"] is False


def test_a_make_up_saturday_counts_as_a_working_day(routing, clock):
    clock._at = at(2026, 10, 9, 10, 0)  # Friday before the 调休 Saturday 2026-10-10
    item = routing.get(routing.items(routing.submit("employment-registration"))["employment-registration"])
    assert item["promised_deadline"].startswith("2026-10-10T09:30")  # one working day: the Saturday


def test_a_deadline_in_a_year_the_calendar_does_not_cover_is_flagged(routing, clock):
    clock._at = at(2026, 12, 28, 10, 0)
    item = routing.get(routing.items(routing.submit("residence-permit"))["residence-permit"])
    assert item["deadline_provisional"] is True
    assert item["promised_deadline"] > "2027-01-01"


def test_a_supplement_due_in_2027_skips_new_years_day_and_is_flagged_provisional(routing, clock):
    """Issue 14: on 2 December a supplement with 22 working days came back due on 1 January 2027, with no
    provisional flag in the API or the event."""
    clock._at = at(2026, 12, 2, 10, 0)
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]
    routing.act(item_id, "claim", "maigaoqiao")
    routing.act(item_id, "accept", "maigaoqiao")

    paused = routing.act(item_id, "request-supplement", "maigaoqiao",
                         {"materials": ["photo"], "due_in_working_days": 22})

    # Dec 3 .. Dec 31 are 21 working days; 1 January is 元旦: the 22nd working day is Monday 4 January.
    assert paused["supplement_due_date"] == "2027-01-04"
    assert paused["supplement_due_date_provisional"] is True
    assert routing.get(item_id)["supplement_due_date_provisional"] is True
    [event] = routing.outbox("item.supplement-requested.v1")
    assert event["data"]["due_date"] == "2027-01-04"
    assert event["data"]["due_date_provisional"] is True


def test_a_supplement_due_inside_2026_is_not_provisional(routing, clock):
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]
    routing.act(item_id, "claim", "maigaoqiao")
    routing.act(item_id, "accept", "maigaoqiao")
    paused = routing.act(item_id, "request-supplement", "maigaoqiao", {"materials": ["photo"]})
    assert (paused["supplement_due_date"], paused["supplement_due_date_provisional"]) == ("2026-12-07", False)
    [event] = routing.outbox("item.supplement-requested.v1")
    assert event["data"]["due_date_provisional"] is False


def test_the_share_of_promised_time_used_grows_with_working_days(routing, clock):
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]
    assert routing.get(item_id)["promised_time_used"] < 0.05
    clock._at = at(2026, 12, 7, 9, 0)  # five working days later, of ten
    used = routing.get(item_id)["promised_time_used"]
    assert 0.4 < used < 0.6


# ── Claiming, the state table, jurisdiction ──────────────────────────────────────────────────────────


def test_one_owner_at_a_time_and_disallowed_transitions_get_409_with_the_state(routing):
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]  # at 迈皋桥街道

    refused = routing.act(item_id, "resolve", "maigaoqiao", {"result": "x", "delivery": {
        "method": "pickup", "place": "窗口"}}, expect=409)
    assert (refused["reason"], refused["current_status"]) == ("transition_not_allowed", "queued")
    routing.act(item_id, "claim", "maigaoqiao")
    taken = routing.act(item_id, "claim", "qixia", expect=409)
    assert taken["reason"] == "claimed_by_other"
    assert routing.act(item_id, "accept", "qixia", expect=409)["reason"] == "not_item_owner"
    accepted = routing.act(item_id, "accept", "maigaoqiao")
    assert accepted["status"] == "accepted"
    assert [entry["action"] for entry in accepted["history"]] == ["route", "claim", "accept"]
    assert [event["data"]["status"] for event in routing.outbox("item.claimed.v1")] == ["claimed"]


def test_staff_of_another_street_get_403(routing):
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]
    response = routing.web.get(f"/v1/items/{item_id}", headers={"Authorization": "Bearer dev-staff-xiaolingwei"})
    assert response.status_code == 403
    assert response.json()["reason"] == "item_forbidden"
    assert routing.act(item_id, "claim", "xiaolingwei", expect=403)["reason"] == "item_forbidden"


def test_a_department_system_sees_only_its_department(routing):
    items = routing.items(routing.submit("residence-permit", "social-insurance-stop"))
    assert routing.act(items["residence-permit"], "claim", "qixia-hrss", expect=403)["reason"] == "item_forbidden"
    routing.act(items["social-insurance-stop"], "claim", "qixia-hrss")


def test_the_queue_lists_open_items_in_scope_closest_deadline_first(routing):
    routing.submit("residence-permit")               # street, promised 10 days
    routing.submit("vocational-training-signup")     # street, promised 3 days
    routing.submit("social-insurance-start")         # district: not in the street's queue

    response = routing.web.get("/v1/items", headers={"Authorization": "Bearer dev-staff-maigaoqiao"})

    assert response.status_code == 200
    listed = response.json()
    assert [item["matter_code"] for item in listed["items"]] == ["vocational-training-signup", "residence-permit"]
    assert (listed["count"], listed["count_exact"], listed["next_cursor"]) == (2, True, None)
    district = routing.web.get("/v1/items?matter=social-insurance-start",
                               headers={"Authorization": "Bearer dev-staff-qixia"}).json()
    assert [item["matter_code"] for item in district["items"]] == ["social-insurance-start"]
    kiosk = routing.web.get("/v1/items", headers={"Authorization": "Bearer dev-kiosk-xinhe"})
    assert kiosk.status_code == 403


def test_the_queue_pages_by_cursor_through_every_item_once_in_order(routing, clock):
    """Keyset pages: items with the same promised deadline (one case, one instant) are told apart by id, so a
    page boundary between them neither repeats nor skips one; the count covers every page."""
    for _ in range(3):
        routing.submit("residence-permit", "vocational-training-signup")  # street: two deadlines, three times each
    routing.submit("employment-registration")                              # community: in the street's queue too
    clock._at = at(2026, 11, 30, 11, 0)
    routing.submit("vocational-training-signup")
    headers = {"Authorization": "Bearer dev-staff-maigaoqiao"}

    seen, cursor, pages = [], None, 0
    while True:
        answer = routing.web.get("/v1/items", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                 headers=headers).json()
        assert (answer["count"], answer["count_exact"]) == (8, True)
        seen += answer["items"]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and len({item["item_id"] for item in seen}) == len(seen) == 8
    assert [(item["promised_deadline"], item["item_id"]) for item in seen] == sorted(
        (item["promised_deadline"], item["item_id"]) for item in seen)
    assert [item["unit_code"] for item in seen].count("320113003021") == 1   # the community's item, at its place

    one_page = routing.web.get("/v1/items", params={"limit": 8}, headers=headers).json()
    assert [item["item_id"] for item in one_page["items"]] == [item["item_id"] for item in seen]
    matter = "vocational-training-signup"
    filtered = routing.web.get("/v1/items", params={"limit": 2, "matter": matter}, headers=headers).json()
    rest = routing.web.get("/v1/items", params={"cursor": filtered["next_cursor"], "matter": matter},
                           headers=headers).json()
    assert [i["matter_code"] for i in filtered["items"] + rest["items"]] == [matter] * 4
    assert rest["next_cursor"] is None


def test_a_closed_status_is_listed_and_a_bad_cursor_or_an_offset_is_refused(routing):
    items = routing.items(routing.submit("residence-permit", "vocational-training-signup"))
    routing.work_to_resolution(items["residence-permit"], "maigaoqiao")
    headers = {"Authorization": "Bearer dev-staff-maigaoqiao"}
    resolved = routing.web.get("/v1/items?status=resolved", headers=headers).json()
    assert [item["item_id"] for item in resolved["items"]] == [items["residence-permit"]]
    open_items = routing.web.get("/v1/items", headers=headers).json()
    assert [item["item_id"] for item in open_items["items"]] == [items["vocational-training-signup"]]
    elsewhere = routing.web.get("/v1/items?status=resolved", headers={"Authorization": "Bearer dev-staff-xiaolingwei"})
    assert elsewhere.json()["items"] == []
    for query in ("cursor=not-a-cursor", "cursor=" + "A" * 500, "cursor=MjAyNnwx", "offset=50"):
        refused = routing.web.get(f"/v1/items?{query}", headers=headers)
        assert (refused.status_code, refused.json()["reason"]) == (400, "invalid_query"), query


def test_the_overdue_filter(routing, clock):
    routing.submit("vocational-training-signup")  # promised 3 working days: Thursday 12-03 17:30
    clock._at = at(2026, 12, 4, 9, 0)
    overdue = routing.web.get("/v1/items?overdue=true", headers={"Authorization": "Bearer dev-staff-qixia"}).json()
    assert [item["matter_code"] for item in overdue["items"]] == ["vocational-training-signup"]
    assert overdue["items"][0]["overdue"] is True


# ── Supplements and 容缺 ───────────────────────────────────────────────────────────────────────────


def test_a_supplement_request_pauses_the_clock_and_the_supplement_resumes_it(routing, clock):
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]
    routing.act(item_id, "claim", "maigaoqiao")
    routing.act(item_id, "accept", "maigaoqiao")
    before = routing.get(item_id)["promised_deadline"]

    paused = routing.act(item_id, "request-supplement", "maigaoqiao", {"materials": ["photo"]})
    assert (paused["status"], paused["clock_paused"]) == ("supplement_requested", True)
    clock._at = at(2026, 12, 3, 10, 0)  # three working days later
    resumed = routing.act(item_id, "record-supplement", "maigaoqiao", {"materials": ["photo"]})

    assert (resumed["status"], resumed["clock_paused"]) == ("accepted", False)
    assert before.startswith("2026-12-14") and resumed["promised_deadline"].startswith("2026-12-17")


def test_deferred_material_supplied_in_time_lets_the_item_continue(routing, clock):
    case_id = routing.submit("residence-permit",
                             deferred=(("residence-permit", "landlord-id-copy", date(2026, 12, 4)),))
    item_id = routing.items(case_id)["residence-permit"]

    supplied = routing.act(item_id, "record-supplement", "maigaoqiao", {"materials": ["landlord-id-copy"]})
    clock._at = at(2026, 12, 8, 9, 0)
    routing.sweep()

    assert supplied["deferred_materials"] == [{"material_code": "landlord-id-copy", "due_date": "2026-12-04",
                                               "state": "supplied"}]
    assert routing.get(item_id)["status"] == "queued"
    assert routing.outbox("item.terminated.v1") == []
    assert routing.outbox("case.deferral-reminder.v1") == []


def test_deferred_material_expired_terminates_the_item_after_one_reminder(routing, clock):
    case_id = routing.submit("residence-permit", "vocational-training-signup", deferred=(
        ("residence-permit", "landlord-id-copy", date(2026, 12, 4)),))
    items = routing.items(case_id)

    clock._at = at(2026, 12, 3, 9, 0)   # one working day before the due date
    routing.sweep()
    routing.sweep()                      # a second sweep (another replica, say) reminds nobody again
    clock._at = at(2026, 12, 7, 9, 0)   # past the due date (Friday 12-04)
    routing.sweep()

    reminders = routing.outbox("case.deferral-reminder.v1")
    assert [(r["data"]["material_code"], r["data"]["due_date"]) for r in reminders] == [
        ("landlord-id-copy", "2026-12-04")]
    terminated = routing.outbox("item.terminated.v1")
    assert [(t["data"]["item_id"], t["data"]["reason_code"]) for t in terminated] == [
        (items["residence-permit"], "deferral_expired")]
    assert routing.get(items["vocational-training-signup"])["status"] == "queued"  # the other item goes on


def test_a_supplement_not_supplied_by_its_due_date_closes_the_item_once(routing, clock):
    """Issue 15: an item paused for supplementary material waited forever; its due date was never enforced."""
    waiting = routing.items(routing.submit("residence-permit"))["residence-permit"]
    supplied = routing.items(routing.submit("residence-permit"))["residence-permit"]
    for item_id in (waiting, supplied):
        routing.act(item_id, "claim", "maigaoqiao")
        routing.act(item_id, "accept", "maigaoqiao")
        requested = routing.act(item_id, "request-supplement", "maigaoqiao",
                                {"materials": ["photo"], "due_in_working_days": 3})
        assert requested["supplement_due_date"] == "2026-12-03"
    routing.act(supplied, "record-supplement", "maigaoqiao", {"materials": ["photo"]})

    clock._at = at(2026, 12, 3, 18, 0)   # the due date itself: still in time
    assert routing.sweep().supplements_expired == 0
    assert routing.get(waiting)["status"] == "supplement_requested"
    clock._at = at(2026, 12, 4, 9, 0)    # the day after
    first = routing.sweep()
    second = routing.sweep()             # another replica, or the next tick: nothing more happens

    assert (first.supplements_expired, second.supplements_expired) == (1, 0)
    assert routing.get(waiting)["status"] == "terminated"
    assert routing.get(supplied)["status"] == "accepted"
    terminated = routing.outbox("item.terminated.v1")
    assert [(t["data"]["item_id"], t["data"]["reason_code"]) for t in terminated] == [(waiting, "supplement_expired")]
    assert "2026-12-03" in terminated[0]["data"]["note"]
    completed = routing.outbox("case.completed.v1")
    assert [c["data"]["outcomes"][0]["status"] for c in completed] == ["terminated"]


def test_a_case_that_cannot_be_swept_does_not_stop_the_others(routing, clock, database_url):
    broken = routing.submit("residence-permit", deferred=(("residence-permit", "landlord-id-copy", date(2026, 12, 4)),))
    good = routing.submit("residence-permit", deferred=(("residence-permit", "landlord-id-copy", date(2026, 12, 4)),))
    # A 容缺 row whose item is gone: sweeping that case raises, every time.
    engine = create_engine(normalise_url(database_url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE routing_deferred_materials SET item_id = 'no-such-item' WHERE case_id = :c"),
                           {"c": broken})
    engine.dispose()

    clock._at = at(2026, 12, 3, 9, 0)   # one working day before the due date
    report = routing.sweep()
    report = routing.sweep()             # and again: the broken case fails again, the good one is not held up

    reminders = routing.outbox("case.deferral-reminder.v1")
    assert [r["data"]["case_id"] for r in reminders] == [good]
    assert report.failed_cases == 1


# ── Returns ─────────────────────────────────────────────────────────────────────────────────────────


def test_a_return_inside_its_limit_reroutes_up_the_line(routing, clock):
    item_id = routing.items(routing.submit("employment-registration"))["employment-registration"]  # community

    clock._at = at(2026, 12, 1, 15, 0)
    returned = routing.act(item_id, "return", "xinhe", {"reason_code": "not-our-matter", "note": "应由街道办理"})

    assert (returned["level"], returned["unit_code"], returned["status"]) == ("street", "320113003000", "queued")
    rerouted = [e["data"] for e in routing.outbox("item.routed.v1") if e["data"]["route_reason"] == "returned"]
    assert [(r["level"], r["unit_code"]) for r in rerouted] == [("street", "320113003000")]
    assert [e["data"]["unit_code"] for e in routing.outbox("item.returned.v1")] == ["320113003021"]


def test_a_return_past_its_limit_is_refused(routing, clock):
    item_id = routing.items(routing.submit("employment-registration"))["employment-registration"]
    clock._at = at(2026, 12, 3, 9, 0)  # three working days after it arrived; the limit is two
    refused = routing.act(item_id, "return", "xinhe", {"reason_code": "not-our-matter"}, expect=409)
    assert refused["reason"] == "return_limit_passed"


def test_ping_pong_goes_up_a_level_and_then_stops(routing):
    item_id = routing.items(routing.submit("employment-registration"))["employment-registration"]

    routing.act(item_id, "return", "xinhe", {"reason_code": "wrong-level"})            # community -> street
    at_district = routing.act(item_id, "return", "maigaoqiao", {"reason_code": "wrong-level"})  # -> district
    refused = routing.act(item_id, "return", "qixia", {"reason_code": "wrong-level"}, expect=409)

    assert (at_district["level"], at_district["return_count"]) == ("district", 2)
    assert refused["reason"] == "returns_exhausted"
    assert routing.act(item_id, "return", "qixia", {"reason_code": "no-such-reason"}, expect=422)["reason"] in (
        "unknown_reason", "validation_failed")


def test_after_ping_pong_the_level_above_assigns_and_the_item_cannot_be_returned_again(routing):
    item_id = routing.items(routing.submit("employment-registration"))["employment-registration"]
    assignment = {"unit_code": "320113003021", "department_code": "hrss", "reason": "属社区就业服务职责"}
    # Before the returns reached the limit, nobody decides: the item goes back and forth by the rules.
    assert routing.act(item_id, "assign", "xinhe", assignment, expect=409)["reason"] == "not_returned_to_limit"

    routing.act(item_id, "return", "xinhe", {"reason_code": "wrong-level"})                # community -> street
    routing.act(item_id, "return", "maigaoqiao", {"reason_code": "wrong-level"})           # street -> district
    # Only within the district's own jurisdiction, to a department with a desk there.
    assert routing.act(item_id, "assign", "qixia", {**assignment, "unit_code": "320102002001"},
                       expect=422)["reason"] == "unknown_unit"
    assert routing.act(item_id, "assign", "qixia", {**assignment, "department_code": "no-such"},
                       expect=422)["reason"] == "unknown_department"

    assigned = routing.act(item_id, "assign", "qixia", assignment)

    assert (assigned["level"], assigned["unit_code"], assigned["status"]) == ("community", "320113003021", "queued")
    assert assigned["history"][-1]["action"] == "assign" and assigned["history"][-1]["note"] == assignment["reason"]
    routed = [e["data"] for e in routing.outbox("item.routed.v1") if e["data"]["route_reason"] == "assigned"]
    assert [(r["unit_code"], r["department_code"]) for r in routed] == [("320113003021", "hrss")]
    refused = routing.act(item_id, "return", "xinhe", {"reason_code": "not-our-matter"}, expect=409)
    assert refused["reason"] == "returns_exhausted"
    routing.work_to_resolution(item_id, "xinhe")


# ── Bundles ─────────────────────────────────────────────────────────────────────────────────────────


def test_a_resolved_prerequisite_releases_its_dependent_with_a_fresh_clock(routing, clock):
    items = routing.items(routing.submit("residence-permit", "flexible-employment-insurance"))
    waiting = routing.get(items["flexible-employment-insurance"])
    assert (waiting["status"], waiting["waiting_for"]) == ("waiting", ["residence-permit"])
    assert routing.act(items["flexible-employment-insurance"], "claim", "qixia", expect=409)["current_status"] == (
        "waiting")

    clock._at = at(2026, 12, 8, 10, 0)
    routing.work_to_resolution(items["residence-permit"], "maigaoqiao")

    released = routing.get(items["flexible-employment-insurance"])
    assert released["status"] == "queued"
    assert released["promised_deadline"].startswith("2026-12-15")  # 5 working days from the release
    released_ids = [e["data"]["item_id"] for e in routing.outbox("item.released.v1")]
    assert released_ids == [items["flexible-employment-insurance"]]
    assert routing.outbox("case.completed.v1") == []


def test_a_rejected_prerequisite_closes_its_dependent_and_completes_the_case(routing):
    items = routing.items(routing.submit("residence-permit", "flexible-employment-insurance"))

    routing.act(items["residence-permit"], "claim", "maigaoqiao")
    routing.act(items["residence-permit"], "reject", "maigaoqiao", {"reason_code": "not-eligible"})

    closed = routing.get(items["flexible-employment-insurance"])
    assert closed["status"] == "terminated"
    assert [e["data"]["reason_code"] for e in routing.outbox("item.terminated.v1")] == ["prerequisite_rejected"]
    (completed,) = routing.outbox("case.completed.v1")
    assert {o["status"] for o in completed["data"]["outcomes"]} == {"rejected", "terminated"}
    assert completed["data"]["delivery"] is None


def test_a_bundle_completes_once_with_one_trip_for_the_resident(routing):
    items = routing.items(routing.submit("residence-permit", "vocational-training-signup", "employment-registration"))

    routing.work_to_resolution(items["residence-permit"], "maigaoqiao")
    routing.work_to_resolution(items["vocational-training-signup"], "maigaoqiao")
    assert routing.outbox("case.completed.v1") == []
    routing.work_to_resolution(items["employment-registration"], "xinhe",
                               delivery={"method": "door", "agent_id": "sw-017"})

    (completed,) = routing.outbox("case.completed.v1")
    assert completed["data"]["delivery"] == {"method": "door", "place": None, "agent_id": "sw-017",
                                             "scheduled_for": None}
    assert len(completed["data"]["outcomes"]) == 3


def test_proxy_hand_overs_are_recorded_in_the_item_history(routing):
    item_id = routing.items(routing.submit("residence-permit"))["residence-permit"]
    for step, what in (("collected_at_home", "租赁合同原件"), ("handed_to_window", "租赁合同原件")):
        response = routing.web.post(f"/v1/items/{item_id}/custody", json={"step": step, "what": what,
                                                                          "agent_id": "sw-017"},
                                    headers={"Authorization": "Bearer dev-staff-xinhe"})
        assert response.status_code == 200, response.text
    history = routing.get(item_id)["history"]
    custody = [(e["actor"], e["details"]["step"], e["note"]) for e in history if e["action"] == "custody"]
    assert custody == [("sw-017", "collected_at_home", "租赁合同原件"), ("sw-017", "handed_to_window", "租赁合同原件")]
    assert len(routing.outbox("item.custody-recorded.v1")) == 2


# ── Two replicas ───────────────────────────────────────────────────────────────────────────────────


def test_a_bundle_completes_exactly_once_when_its_last_items_resolve_together_in_two_replicas(
        container_factory, make_service_config, rabbit_config, database_url, clock, web_session, web_config_port):
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a database only on PostgreSQL; SQLite runs one replica")
    import requests
    from nameko.testing.utils import find_free_port

    first = container_factory(routing_on(clock), make_service_config("routing", web_port=web_config_port))
    second_port = find_free_port()
    second = container_factory(routing_on(clock), make_service_config("routing", web_port=second_port))
    first.start()
    second.start()
    harness = RoutingHarness(first, web_session, rabbit_config["AMQP_URI"], database_url, clock)
    items = harness.items(harness.submit("residence-permit", "vocational-training-signup"))
    for item_id in items.values():
        harness.act(item_id, "claim", "maigaoqiao")
        harness.act(item_id, "accept", "maigaoqiao")

    def resolve(port, item_id):
        return requests.post(f"http://127.0.0.1:{port}/v1/items/{item_id}/resolve",
                             json={"result": "已办结", "delivery": {"method": "pickup", "place": "7号窗口"}},
                             headers={"Authorization": "Bearer dev-staff-maigaoqiao"}, timeout=10)

    pool = eventlet.GreenPool()
    responses = list(pool.starmap(resolve, [(web_config_port, items["residence-permit"]),
                                            (second_port, items["vocational-training-signup"])]))

    assert [response.status_code for response in responses] == [200, 200]
    assert len(harness.outbox("case.completed.v1")) == 1


# ── Escalation orders (from the escalation service) ────────────────────────────────────────────────


def order_escalation(routing, item_id, from_level, reason="internal_loop_expired"):
    from nameko.testing.services import entrypoint_waiter

    from shared.events import CloudEvent, EscalationOrderedV1
    from tests.support.bus import publish_raw

    order = EscalationOrderedV1(item_id=item_id, district_code="320113000000", from_level=from_level, reason=reason,
                                ordered_at=routing.clock.now())
    with entrypoint_waiter(routing.container, "on_escalation_ordered"):
        publish_raw(routing.amqp, CloudEvent.wrap(order, source="/sanji/escalation", time=routing.clock.now())
                    .model_dump_json(), order.routing_key())


def test_an_escalation_order_moves_the_item_up_its_line_once(routing):
    item_id = routing.items(routing.submit("property-management-complaint"))["property-management-complaint"]
    routing.act(item_id, "claim", "xinhe")

    order_escalation(routing, item_id, "community")
    order_escalation(routing, item_id, "community")  # a stale second order: the item has left the community

    item = routing.get(item_id)
    assert (item["level"], item["unit_code"], item["status"], item["claimed_by"]) == (
        "street", "320113003000", "queued", None)
    escalated = routing.outbox("item.escalated.v1")
    assert [(e["data"]["from_level"], e["data"]["level"], e["data"]["reason"]) for e in escalated] == [
        ("community", "street", "internal_loop_expired")]
    assert [e["data"]["route_reason"] for e in routing.outbox("item.routed.v1")] == ["submitted", "escalated"]
    assert [entry["action"] for entry in item["history"]] == ["route", "claim", "escalate"]
