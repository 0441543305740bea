"""End to end, completion to rates: routing and evaluation on one frozen clock, over the real broker and database.

A case of three items completes (two at 迈皋桥街道, one at 馨合家园社区). The resident rates the residence permit
非常不满意 through the signed link of her completion SMS; a rectification opens at the street, runs past its
deadline (a warning), past its grace (the district takes it up), and the street calls her back and closes it.
The community appeals the kiosk's abusive rating of its item; the street, the level above, upholds it. Then the
three rates of both units come out as counted by hand below.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook
from nameko.testing.utils import find_free_port

from services.evaluation.service import EvaluationService
from services.evaluation.settings import link_key
from shared.clock import FrozenClock
from shared.nameko_ext import ClockProvider
from shared.rating_links import sign_rating_link
from tests.support.escalation_harness import query, wait_until
from tests.support.routing_harness import STAFF, RoutingHarness, at, routing_on

pytestmark = pytest.mark.e2e

STREET, COMMUNITY, DISTRICT = "320113003000", "320113003021", "320113000000"
WANSHOU = "320113003002"  # another community of the street, where a case stays open
COMMENT = "态度恶劣，电话13812345678"
J = {"Content-Type": "application/json"}


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


def evaluation_on(frozen: FrozenClock):
    class EvaluationOnFrozenClock(EvaluationService):
        clock = ClockProvider(frozen)

    return EvaluationOnFrozenClock


class Evaluation:
    def __init__(self, container, port: int, database_url: str):
        self.container, self.base, self.database_url = container, f"http://127.0.0.1:{port}", database_url
        self.http = requests.Session()

    def post(self, path: str, body: dict, headers: dict | None = None, expect: int = 200) -> dict:
        response = self.http.post(self.base + path, data=json.dumps(body, ensure_ascii=False),
                                  headers={**J, **(headers or {})})
        assert response.status_code == expect, response.text
        return response.json()

    def get(self, path: str, headers: dict | None = None, expect: int = 200):
        response = self.http.get(self.base + path, headers=headers or {})
        assert response.status_code == expect, response.text
        return response

    def sweep(self) -> dict:
        with entrypoint_hook(self.container, "sweep_rectifications") as sweep:
            return sweep()

    def count(self, table: str) -> int:
        return query(self.database_url, f"SELECT count(*) FROM {table}")[0][0]

    def outbox(self) -> list[dict]:
        rows = query(self.database_url, "SELECT event_type, body FROM outbox_messages "
                                        "WHERE source = '/sanji/evaluation' ORDER BY seq")
        return [(event_type, json.loads(body)) for event_type, body in rows]


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    routing = container_factory(routing_on(clock), make_service_config("routing", web_port=web_config_port))
    routing.start()
    port = find_free_port()
    evaluation = container_factory(evaluation_on(clock), make_service_config(
        "evaluation", web_port=port, SANJI_EVALUATION_SWEEP_SECONDS=3600))
    evaluation.start()
    return (RoutingHarness(routing, web_session, rabbit_config["AMQP_URI"], database_url, clock),
            Evaluation(evaluation, port, database_url))


def test_rating_to_rectification_appeal_and_rates(stack, clock, database_url):
    routing, evaluation = stack
    case_id = routing.submit("residence-permit", "vocational-training-signup", "birth-registration-proof")
    items = routing.items(case_id)
    permit, training, birth = (items["residence-permit"], items["vocational-training-signup"],
                               items["birth-registration-proof"])

    # Mon 11-30 09:00: the street answers the permit at once, the community its birth proof.
    routing.work_to_resolution(permit, "maigaoqiao")
    routing.work_to_resolution(birth, "xinhe")
    # Wed 12-02 10:00: the street claims the training item only now, past its one working day to respond.
    clock.advance(days=2, hours=1)
    routing.work_to_resolution(training, "maigaoqiao")
    wait_until(lambda: query(database_url, "SELECT 1 FROM evaluation_cases WHERE case_id = :c", c=case_id),
               what="the completion reached the evaluation service")
    wait_until(lambda: query(database_url, "SELECT count(*) FROM evaluation_items WHERE case_id = :c AND "
                                           "closed_at IS NOT NULL", c=case_id)[0][0] == 3,
               what="every item's facts followed")

    # Not completed yet: a second case whose item is still in the queue cannot be rated, and nothing is written.
    open_case = routing.submit("employment-registration", community_code=WANSHOU)
    open_item = routing.items(open_case)["employment-registration"]
    wait_until(lambda: query(database_url, "SELECT 1 FROM evaluation_items WHERE item_id = :i", i=open_item),
               what="the open item's facts followed")
    key = link_key(evaluation.container.config)
    open_link = sign_rating_link(key, case_id=open_case, expires_at=clock.now() + timedelta(days=30))
    refused = evaluation.post(f"/v1/rating-links/{open_link}/ratings", {"item_id": open_item, "level": "满意"},
                              expect=409)
    assert refused["reason"] == "item_not_completed"

    # The completion SMS carries a link signed with the service's key; the resident opens it, no login.
    link = sign_rating_link(key, case_id=case_id, expires_at=clock.now() + timedelta(days=30))
    page = evaluation.get(f"/v1/rating-links/{link}").json()
    assert {i["item_id"] for i in page["items"]} == {permit, training, birth}

    # Bad input, refused with a reason, nothing written.
    assert evaluation.post(f"/v1/rating-links/{link}/ratings", {"item_id": permit, "level": "有点满意"},
                           expect=422)["reason"] == "unknown_level"
    expired = sign_rating_link(key, case_id=case_id, expires_at=clock.now() - timedelta(seconds=1))
    assert evaluation.post(f"/v1/rating-links/{expired}/ratings", {"item_id": permit, "level": "满意"},
                           expect=410)["reason"] == "link_expired"
    forged = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    assert evaluation.post(f"/v1/rating-links/{forged}/ratings", {"item_id": permit, "level": "满意"},
                           expect=403)["reason"] == "invalid_link"
    assert evaluation.count("evaluation_ratings") == 0 and evaluation.outbox() == []

    # 非常不满意 on the permit through the link: a rectification opens at the street, 5 working days.
    bad = evaluation.post(f"/v1/rating-links/{link}/ratings",
                          {"item_id": permit, "level": "非常不满意", "reason_codes": ["slow", "attitude"],
                           "comment": COMMENT}, expect=201)
    rectification_id = bad["rectification_id"]
    assert rectification_id
    # 基本满意 on the training item; the community's birth proof: 满意 by the link, then 非常不满意 at the kiosk.
    evaluation.post(f"/v1/rating-links/{link}/ratings", {"item_id": training, "level": "基本满意"}, expect=201)
    evaluation.post(f"/v1/rating-links/{link}/ratings", {"item_id": birth, "level": "满意"}, expect=201)
    clock.advance(minutes=5)
    abusive = evaluation.post(f"/v1/cases/{case_id}/ratings",
                              {"item_id": birth, "level": "非常不满意", "comment": COMMENT, "channel": "kiosk"},
                              headers=STAFF["kiosk"], expect=201)
    # Another community's kiosk may not rate this case.
    assert evaluation.post(f"/v1/cases/{case_id}/ratings", {"item_id": birth, "level": "满意"},
                           headers={"Authorization": "Bearer dev-kiosk-maigaoqiao-2"},
                           expect=403)["reason"] == "community_forbidden"

    rect = evaluation.get(f"/v1/rectifications/{rectification_id}", STAFF["maigaoqiao"]).json()
    assert rect["unit_code"] == STREET and rect["state"] == "open"
    # Opened Wed 12-02: five working days -> Wed 12-09 at the close of day; the grace, two more -> Fri 12-11.
    assert rect["deadline"].startswith("2026-12-09")
    assert rect["escalate_at"].startswith("2026-12-11")

    # A day and a half later the same channel cannot rate the permit again (the 24-hour change window passed).
    clock.advance(hours=36)
    assert evaluation.post(f"/v1/rating-links/{link}/ratings", {"item_id": permit, "level": "满意"},
                           expect=409)["reason"] == "already_rated"

    # Two rectifications run: the street's (the permit) and the community's (the kiosk's rating of the birth
    # proof). Wed 12-09 evening: past the deadline -> a warning each; Sun 12-13: past the grace -> the level above.
    clock.advance(days=6)   # Wed 12-09 22:05
    assert evaluation.sweep() == {"warning": 2, "escalated": 0}
    assert evaluation.sweep() == {"warning": 0, "escalated": 0}  # once
    clock.advance(days=4)   # Sun 12-13 22:05
    assert evaluation.sweep() == {"warning": 0, "escalated": 2}
    rect = evaluation.get(f"/v1/rectifications/{rectification_id}", STAFF["qixia"]).json()
    assert rect["state"] == "escalated" and rect["supervising_unit_code"] == DISTRICT
    community_rect = evaluation.get(f"/v1/rectifications/{abusive['rectification_id']}", STAFF["maigaoqiao"]).json()
    assert community_rect["unit_code"] == COMMUNITY and community_rect["supervising_unit_code"] == STREET

    # The street may not close before it called back; then it calls back and closes.
    assert evaluation.post(f"/v1/rectifications/{rectification_id}/close", {"result": "rectified"},
                           STAFF["maigaoqiao"], expect=409)["reason"] == "callback_missing"
    assert evaluation.post(f"/v1/rectifications/{rectification_id}/callback", {"outcome": "reached_satisfied"},
                           STAFF["xinhe"], expect=403)["reason"] in ("outside_jurisdiction", "not_owner")
    evaluation.post(f"/v1/rectifications/{rectification_id}/callback",
                    {"outcome": "reached_satisfied", "note": "已电话回访"}, STAFF["maigaoqiao"])
    closed = evaluation.post(f"/v1/rectifications/{rectification_id}/close",
                             {"result": "rectified", "reason": "窗口已整改"}, STAFF["maigaoqiao"])
    assert closed["state"] == "closed" and closed["result"] == "rectified"

    # The community appeals the kiosk's abusive rating; the wrong unit may not; the street decides.
    assert evaluation.post(f"/v1/ratings/{abusive['rating_id']}/appeals", {"grounds": "abusive_text"},
                           STAFF["maigaoqiao"], expect=403)["reason"] == "not_rated_unit"
    appeal = evaluation.post(f"/v1/ratings/{abusive['rating_id']}/appeals",
                             {"grounds": "abusive_text", "statement": "评价内容与服务无关"}, STAFF["xinhe"], expect=201)
    assert appeal["deciding_unit_code"] == STREET
    assert evaluation.post(f"/v1/appeals/{appeal['appeal_id']}/decision", {"upheld": True, "reason": "x"},
                           STAFF["xinhe"], expect=403)["reason"] == "not_deciding_unit"
    decided = evaluation.post(f"/v1/appeals/{appeal['appeal_id']}/decision",
                              {"upheld": True, "reason": "辱骂性内容"}, STAFF["maigaoqiao"])
    assert decided["state"] == "upheld"
    # The upheld appeal ends the rectification that rating opened.
    community_rect = evaluation.get(f"/v1/rectifications/{abusive['rectification_id']}", STAFF["xinhe"]).json()
    assert (community_rect["state"], community_rect["result"]) == ("closed", "appeal_upheld")
    assert query(database_url, "SELECT excluded FROM evaluation_ratings WHERE rating_id = :r",
                 r=abusive["rating_id"])[0][0] in (True, 1)  # kept in the record

    # A supervisor outside its jurisdiction is refused; inside, its order is counted overdue once late.
    assert evaluation.post("/v1/supervision-orders", {
        "subject_type": "item", "subject_id": training, "target_unit_code": STREET, "what": "说明超时原因",
        "due_in_working_days": 1}, STAFF["xiaolingwei"], expect=403)["reason"] == "outside_jurisdiction"
    order = evaluation.post("/v1/supervision-orders", {
        "subject_type": "item", "subject_id": training, "target_unit_code": STREET, "what": "说明超时原因",
        "due_in_working_days": 1}, STAFF["qixia"], expect=201)
    clock.advance(days=2)
    orders = evaluation.get("/v1/supervision-orders", STAFF["qixia"]).json()
    assert orders["overdue"] == 1 and orders["orders"][0]["state"] == "overdue"
    answered = evaluation.post(f"/v1/supervision-orders/{order['order_id']}/answer", {"answer": "已说明"},
                               STAFF["maigaoqiao"])
    assert answered["state"] == "answered_late"

    # The rates, counted by hand (routed 11-30, due in December, rated 12-02), over November and December:
    # street:    routed 2, responded in time 1 (the training item was claimed two days late) -> 0.5;
    #            due 2, concluded in time 2 -> 1.0; rated 2: 非常不满意 0 + 基本满意 0.6 -> 0.3.
    # community: routed 1, responded 1 -> 1.0; due 1, in time 1 -> 1.0; rated 1: the kiosk's 非常不满意 was
    #            excluded by the upheld appeal, so the link's 满意 counts -> 1.0.
    # 万寿社区 (the open case): routed 1, never claimed -> 0.0; nothing rated -> no satisfaction rate.
    view = evaluation.get("/v1/rates?from=2026-11-01&to=2026-12-31&by=unit", STAFF["qixia"]).json()
    rows = {row["key"]: row for row in view["rows"]}
    street, community, wanshou = rows[STREET], rows[COMMUNITY], rows[WANSHOU]
    assert (street["routed"], street["responded_in_time"], street["response_rate"]) == (2, 1, 0.5)
    assert (street["due"], street["concluded_in_time"], street["resolution_rate"]) == (2, 2, 1.0)
    assert (street["rated"], street["satisfaction_rate"]) == (2, 0.3)
    assert (community["routed"], community["responded_in_time"], community["response_rate"]) == (1, 1, 1.0)
    assert (community["due"], community["concluded_in_time"], community["resolution_rate"]) == (1, 1, 1.0)
    assert (community["rated"], community["satisfaction_rate"]) == (1, 1.0)
    assert (wanshou["routed"], wanshou["response_rate"], wanshou["satisfaction_rate"]) == (1, 0.0, None)
    # The street's staff see their own line only.
    street_view = evaluation.get("/v1/rates?period=2026-11", STAFF["maigaoqiao"]).json()
    assert {row["key"] for row in street_view["rows"]} <= {STREET, COMMUNITY, WANSHOU}

    csv_text = evaluation.get("/v1/rates?from=2026-11-01&to=2026-12-31&by=unit&format=csv", STAFF["qixia"]).text
    assert csv_text.splitlines()[0].startswith("unit,routed,responded_in_time,response_rate")
    assert f"{STREET},2,1,0.5000,2,2,1.0000,2,0.6,0.3000," in csv_text

    ranking = evaluation.get("/v1/rankings?from=2026-11-01&to=2026-12-31&level=community", STAFF["qixia"]).json()
    assert ranking["rows"][0]["unit_code"] == COMMUNITY and ranking["rows"][0]["trend"] == "new"

    # The events carry codes and ids only: no comment, no phone.
    events = evaluation.outbox()
    types = [event_type for event_type, _ in events]
    for expected in ("rating.submitted", "rectification.opened", "rectification.overdue", "rectification.closed",
                     "appeal.decided", "supervision-order.issued", "supervision-order.answered"):
        assert f"cn.sanji.{expected}.v1" in types
    # rectification.closed in both versions side by side: the street's closing, and the one the appeal ended.
    assert types.count("cn.sanji.rectification.closed.v1") == types.count("cn.sanji.rectification.closed.v2") == 2
    order_events = {event_type: body["data"] for event_type, body in events if "supervision-order" in event_type}
    issued, answered = (order_events[f"cn.sanji.supervision-order.{verb}.v1"] for verb in ("issued", "answered"))
    assert (issued["unit_code"], issued["issuer_unit_code"], issued["order_id"]) == (STREET, DISTRICT,
                                                                                    order["order_id"])
    assert answered["late"] is True
    for _, body in events:
        text = json.dumps(body, ensure_ascii=False)
        assert "13812345678" not in text and "态度恶劣" not in text and "说明超时原因" not in text
    overdue = [body["data"] for event_type, body in events if event_type == "cn.sanji.rectification.overdue.v1"]
    assert sorted(o["stage"] for o in overdue) == ["escalated", "escalated", "warning", "warning"]

    # A replayed completion or item event changes nothing: the consumer record holds.
    from nameko.testing.services import entrypoint_waiter

    from tests.support.bus import publish_raw

    before = query(database_url, "SELECT item_id, responded_in_time, concluded_in_time, satisfaction, closed_at "
                                 "FROM evaluation_items ORDER BY item_id")
    replays = [(routing.outbox("case.completed.v1")[0], f"case.completed.{COMMUNITY}")] + [
        (body, "item.resolved.replay") for body in routing.outbox("item.resolved.v1")]
    for body, routing_key in replays:
        with entrypoint_waiter(evaluation.container, "on_event",
                               callback=lambda _ctx, result, _exc: result == "duplicate"):
            publish_raw(routing.amqp, json.dumps(body), routing_key)
    assert query(database_url, "SELECT item_id, responded_in_time, concluded_in_time, satisfaction, closed_at "
                               "FROM evaluation_items ORDER BY item_id") == before
