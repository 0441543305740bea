"""End to end over HTTP, the real broker and the database: a case taken in at a service point is routed exactly
like the community kiosk's, and 跨区通办: a window of 玄武区 takes a case in for a resident of 栖霞区, routed to
栖霞区's units, with the accepting window keeping custody of the materials and handing the result back."""

from __future__ import annotations

import json

import pytest
import requests
from nameko.testing.utils import find_free_port

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from shared.clock import FrozenClock
from shared.nameko_ext import ClockProvider
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_KIOSK, XUANWU_KIOSK
from tests.support.db import INTAKE_TABLES, count_rows
from tests.support.escalation_harness import query
from tests.support.routing_harness import at
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

TERMINAL = {"Authorization": "Bearer dev-terminal-xinhe-suguo"}          # 苏果超市（和燕路店）, 馨合家园社区
XIAOLINGWEI_WINDOW = {"Authorization": "Bearer dev-staff-xiaolingwei"}   # 孝陵卫街道, 玄武区
XUANWU_WINDOW = {"Authorization": "Bearer dev-staff-xuanwu"}             # 玄武区政务服务中心
MAIGAOQIAO = {"Authorization": "Bearer dev-staff-maigaoqiao"}            # 迈皋桥街道, 栖霞区
XINHE_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}                # 馨合家园社区, 栖霞区
QIXIA = {"Authorization": "Bearer dev-staff-qixia"}                      # 栖霞区
XINHE, XIAOLINGWEI_COMMUNITY = "320113003021", "320102009001"




class Stack:
    def __init__(self, intake, routing_port):
        self.intake = intake
        self.routing = f"http://127.0.0.1:{routing_port}"

    def submit(self, body, headers, expect=201):
        response = self.intake.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                    headers={"Content-Type": "application/json", **headers})
        assert response.status_code == expect, response.text
        return response.json()

    def routed(self, case_id, headers):
        def all_routed():
            case = self.intake.get(f"/v1/cases/{case_id}", headers=headers).json()
            return case if case["items"] and all(item["item_id"] for item in case["items"]) else None

        return wait_until(all_routed)

    def get(self, path, headers, expect=200):
        response = requests.get(f"{self.routing}{path}", headers=headers, timeout=5)
        assert response.status_code == expect, response.text
        return response.json()

    def post(self, path, headers, body=None, expect=200):
        response = requests.post(f"{self.routing}{path}", json=body or {}, headers=headers, timeout=5)
        assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session):
    frozen = FrozenClock(at(2026, 12, 7, 10, 0))  # a Monday morning: the points are open

    class Intake(IntakeService):
        clock = ClockProvider(frozen)

    class Routing(RoutingService):
        clock = ClockProvider(frozen)

    routing_port = find_free_port()
    container_factory(Intake, make_service_config("intake", web_port=web_config_port)).start()
    container_factory(Routing, make_service_config("routing", web_port=routing_port)).start()
    return Stack(web_session, routing_port)


def case_body(community_code, matters, provided, **changes):
    body = {"community_code": community_code, "matters": matters,
            "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER, "phone": APPLICANT_PHONE},
            "materials": {"provided": provided}, "channel": {"kind": "kiosk"}}
    body.update(changes)
    return body


def placements(case):
    return {item["matter_code"]: (item["level"], item["unit_code"], item["department_code"]) for item in case["items"]}


def test_a_case_taken_in_at_a_point_is_routed_like_the_community_kiosk_case(stack, database_url):
    matters, provided = ["employment-registration", "vocational-training-signup"], ["id-card", "labour-contract",
                                                                                   "photo", "education-certificate"]
    at_point = stack.submit(case_body(XINHE, matters, provided, service_point_id="sp-qx-xinhe-suguo"), TERMINAL)
    at_kiosk = stack.submit(case_body(XINHE, matters, provided), XINHE_KIOSK)

    point_case = stack.routed(at_point["case_id"], TERMINAL)
    kiosk_case = stack.routed(at_kiosk["case_id"], XINHE_KIOSK)
    assert placements(point_case) == placements(kiosk_case) == {
        "employment-registration": ("community", XINHE, "hrss"),
        "vocational-training-signup": ("street", "320113003000", "hrss")}
    assert (point_case["service_point_id"], kiosk_case["service_point_id"]) == ("sp-qx-xinhe-suguo", None)
    # The point is in the event as a code; the routed items are the community's own.
    events = [json.loads(body)["data"] for (body,) in query(
        database_url, "SELECT body FROM outbox_messages WHERE event_type = 'cn.sanji.case.submitted.v1' ORDER BY seq")]
    assert [event["service_point_id"] for event in events] == ["sp-qx-xinhe-suguo", None]
    queue = stack.get("/v1/items", XINHE_STAFF)
    assert {item["case_id"] for item in queue["items"]} == {at_point["case_id"], at_kiosk["case_id"]}


def test_a_window_of_xuanwu_takes_a_case_in_for_a_resident_of_qixia(stack, database_url):
    body = case_body(XIAOLINGWEI_COMMUNITY, ["residence-permit", "employment-registration"],
                     ["id-card", "photo", "rental-contract", "labour-contract", "landlord-property-certificate-copy",
                      "landlord-id-copy", "job-or-school-proof"],
                     residence_division_code=XINHE, channel={"kind": "window"})
    receipt = stack.submit(body, XIAOLINGWEI_WINDOW)
    assert (receipt["community_code"], receipt["accepting_unit_code"]) == (XINHE, "320102009000")

    # Routed in the line of the residence (栖霞区), not the window's (玄武区).
    case = stack.routed(receipt["case_id"], XIAOLINGWEI_WINDOW)
    assert placements(case) == {"residence-permit": ("street", "320113003000", "police"),
                                "employment-registration": ("community", XINHE, "hrss")}
    items = {item["matter_code"]: item["item_id"] for item in case["items"]}
    permit = items["residence-permit"]

    # Both sides see the case in intake; the resident's own community kiosk too; another district's kiosk not.
    for headers in (XIAOLINGWEI_WINDOW, XUANWU_WINDOW, QIXIA, XINHE_KIOSK):
        assert stack.intake.get(f"/v1/cases/{receipt['case_id']}", headers=headers).status_code == 200
    assert stack.intake.get(f"/v1/cases/{receipt['case_id']}", headers=XUANWU_KIOSK).status_code == 403

    # The accepting window keeps a custody record of what it received, and sees its items in its own view.
    accepted_here = stack.get("/v1/accepted-items", XIAOLINGWEI_WINDOW)
    assert accepted_here["total"] == 2 and {item["item_id"] for item in accepted_here["items"]} == set(items.values())
    assert stack.get("/v1/accepted-items", XUANWU_WINDOW)["total"] == 2   # the district above the street too
    assert stack.get("/v1/accepted-items", MAIGAOQIAO)["total"] == 0
    seen_here = stack.get(f"/v1/items/{permit}", XIAOLINGWEI_WINDOW)
    assert (seen_here["accepting_unit_code"], seen_here["accepting_unit_name"]) == ("320102009000", "孝陵卫街道")
    [received] = [entry for entry in seen_here["history"] if entry["action"] == "custody"]
    assert received["details"]["step"] == "received_at_accepting_window"
    assert received["actor"] == "staff-xiaolingwei-street"
    assert "房屋租赁合同" in received["note"] and "劳动合同" not in received["note"]
    # The entitled unit works the item; the accepting window may not.
    # (迈皋桥街道's queue holds its own desk's item and 馨合家园's below it)
    assert {item["item_id"] for item in stack.get("/v1/items", MAIGAOQIAO)["items"]} == set(items.values())
    assert stack.post(f"/v1/items/{permit}/claim", XIAOLINGWEI_WINDOW, expect=403)["reason"] == "item_forbidden"
    assert stack.get("/v1/items", XIAOLINGWEI_WINDOW)["count"] == 0

    stack.post(f"/v1/items/{permit}/custody", XIAOLINGWEI_WINDOW,
               {"step": "forwarded_to_entitled_unit", "what": "居住证申请材料原件（机要寄送）"})
    for action, payload in (("claim", {}), ("accept", {}),
                            ("resolve", {"result": "居住证 NJ2026-0001", "delivery": {
                                "method": "pickup", "place": "孝陵卫街道为民服务中心（跨区通办窗口）"}})):
        stack.post(f"/v1/items/{permit}/{action}", MAIGAOQIAO, payload)
    stack.post(f"/v1/items/{permit}/custody", XIAOLINGWEI_WINDOW,
               {"step": "result_received_at_accepting_window", "what": "居住证"})
    handed = stack.post(f"/v1/items/{permit}/custody", XIAOLINGWEI_WINDOW,
                        {"step": "result_handed_back", "what": "居住证"})
    steps = [entry["details"]["step"] for entry in handed["history"] if entry["action"] == "custody"]
    assert steps == ["received_at_accepting_window", "forwarded_to_entitled_unit",
                     "result_received_at_accepting_window", "result_handed_back"]
    assert stack.get(f"/v1/items/{permit}", MAIGAOQIAO)["status"] == "resolved"

    # The custody steps are events of the item, with codes and account names only.
    custody = [json.loads(body)["data"] for (body,) in query(
        database_url, "SELECT body FROM outbox_messages WHERE event_type = 'cn.sanji.item.custody-recorded.v1' "
                      "ORDER BY seq")]
    assert [event["step"] for event in custody if event["item_id"] == permit] == steps
    routed = [json.loads(body)["data"] for (body,) in query(
        database_url, "SELECT body FROM outbox_messages WHERE event_type = 'cn.sanji.item.routed.v1'")]
    assert {event["accepting_unit_code"] for event in routed} == {"320102009000"}
    submitted = [json.loads(body)["data"] for (body,) in query(
        database_url, "SELECT body FROM outbox_messages WHERE event_type = 'cn.sanji.case.submitted.v1'")]
    assert [(event["community_code"], event["accepting_unit_code"]) for event in submitted] == [(XINHE,
                                                                                                 "320102009000")]
    for event in submitted + custody + routed:
        assert APPLICANT_ID_NUMBER not in json.dumps(event) and APPLICANT_PHONE not in json.dumps(event)


def test_a_kiosk_cannot_take_a_case_in_for_another_district(stack, database_url):
    body = case_body("320102002001", ["employment-registration"], ["id-card", "labour-contract"],
                     residence_division_code=XINHE)
    refused = stack.submit(body, XUANWU_KIOSK, expect=403)
    assert refused["reason"] == "cross_district_forbidden"
    # Nor by naming the other community directly; nor a proxy agent at a window's desk.
    assert stack.submit({**body, "community_code": XINHE, "residence_division_code": None}, XUANWU_KIOSK,
                        expect=403)["reason"] == "community_forbidden"
    proxy = {**body, "community_code": XIAOLINGWEI_COMMUNITY, "channel": {"kind": "proxy", "agent_id": "sw-1"}}
    assert stack.submit(proxy, XIAOLINGWEI_WINDOW, expect=403)["reason"] == "cross_district_forbidden"
    unknown = {**body, "community_code": XIAOLINGWEI_COMMUNITY, "residence_division_code": "320113003999",
               "channel": {"kind": "window"}}
    assert stack.submit(unknown, XIAOLINGWEI_WINDOW, expect=422)["reason"] == "unknown_residence"
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_cross_line_custody_steps_are_only_for_items_taken_in_by_another_line(stack):
    receipt = stack.submit(case_body(XINHE, ["employment-registration"], ["id-card", "labour-contract"]),
                           XINHE_KIOSK)
    [item] = stack.routed(receipt["case_id"], XINHE_KIOSK)["items"]
    refused = stack.post(f"/v1/items/{item['item_id']}/custody", XINHE_STAFF,
                         {"step": "result_handed_back", "what": "就业登记"}, expect=422)
    assert refused["reason"] == "not_taken_in_for_another_line"
