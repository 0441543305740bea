"""End to end, kiosk to specialist: intake, routing and escalation together on one frozen clock, over HTTP and
the bus. A resident's problem climbs community -> street -> district and her case shows where it is; a resident
reports what could not get done at the kiosk, and her name, phone and words never leave intake."""

from __future__ import annotations

import json

import pytest
import requests
from nameko.testing.utils import find_free_port

from services.intake.service import IntakeService
from shared.clock import FrozenClock
from shared.nameko_ext import ClockProvider
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_COMMUNITY, XINHE_KIOSK, XUANWU_KIOSK
from tests.support.escalation_harness import TOKENS, escalation_on, query, wait_until
from tests.support.personal_data import stored_failure_reports
from tests.support.routing_harness import at, routing_on

pytestmark = pytest.mark.e2e

REPORTER = {"name": "刘金花", "phone": APPLICANT_PHONE}
WORDS = "居住证跑了三次还没办成"


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))


@pytest.fixture
def services(container_factory, make_service_config, web_config_port, clock):
    from nameko.testing.services import entrypoint_hook

    frozen = clock

    class IntakeOnFrozenClock(IntakeService):
        clock = ClockProvider(frozen)

    intake = container_factory(IntakeOnFrozenClock, make_service_config("intake", web_port=web_config_port))
    routing_port, escalation_port = find_free_port(), find_free_port()
    routing = container_factory(routing_on(clock), make_service_config("routing", web_port=routing_port))
    escalation = container_factory(escalation_on(clock), make_service_config(
        "escalation", web_port=escalation_port, SANJI_ESCALATION_SWEEP_SECONDS=3600))
    for container in (intake, routing, escalation):
        container.start()

    class Services:
        staff = f"http://127.0.0.1:{routing_port}"
        window = f"http://127.0.0.1:{escalation_port}"

        @staticmethod
        def sweep():
            with entrypoint_hook(escalation, "fire_due_deadlines") as sweep:
                return sweep()

    return Services


def submit(web_session, body: dict, headers=XINHE_KIOSK) -> dict:
    response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 201, response.text
    return response.json()


def case_items(web_session, case_id: str) -> list[dict]:
    return web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()["items"]


def test_a_community_problem_climbs_to_the_district_and_the_residents_case_follows(services, web_session, clock):
    receipt = submit(web_session, {"community_code": XINHE_COMMUNITY, "matters": ["property-management-complaint"],
                                   "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER,
                                                 "phone": APPLICANT_PHONE},
                                   "materials": {"provided": ["complaint-description", "on-site-photos"]},
                                   "description": "小区电梯长期故障，物业不修"})
    (item,) = wait_until(lambda: [i for i in case_items(web_session, receipt["case_id"]) if i["item_id"]],
                         what="item routed")
    assert (item["level"], item["unit_code"]) == ("community", XINHE_COMMUNITY)
    item_id = item["item_id"]

    def escalation_view():
        return requests.get(f"{services.window}/v1/items/{item_id}/escalation", headers=TOKENS["qixia"], timeout=5)

    wait_until(lambda: escalation_view().status_code == 200, what="escalation follows the item")
    for stop, level, unit, calls in ((at(2026, 12, 3, 17, 31), "street", "320113003000", 2),
                                     (at(2026, 12, 8, 17, 31), "district", "320113000000", 4)):
        clock._at = stop
        services.sweep()
        wait_until(lambda level=level, calls=calls: (escalation_view().json()["level"], len(
            escalation_view().json()["calls"])) == (level, calls), what=f"escalated to {level}, departments called")
        for call in escalation_view().json()["calls"]:
            if call["state"] == "called":
                who = {"housing": "housing-qixia", "civil": "civil-qixia"}[call["department_code"]]
                acknowledged = requests.post(f"{services.window}/v1/whistle-calls/{call['call_id']}/acknowledge",
                                             json={}, headers=TOKENS[who], timeout=5)
                assert acknowledged.status_code == 200, acknowledged.text
        seen = wait_until(lambda level=level: [i for i in case_items(web_session, receipt["case_id"])
                                               if i["level"] == level], what=f"the case shows the {level}")
        assert seen[0]["unit_code"] == unit

    clock._at = at(2026, 12, 11, 9, 0)     # the warning: a notice, which must not roll the case view back
    assert services.sweep()["acted"] == {"deadline_warning": 1}
    district_staff = requests.get(f"{services.staff}/v1/items/{item_id}", headers=TOKENS["qixia"], timeout=5).json()
    assert (district_staff["level"], district_staff["status"]) == ("district", "queued")
    assert case_items(web_session, receipt["case_id"])[0]["level"] == "district"


def test_a_kiosk_report_reaches_a_specialist_and_personal_data_stays_in_intake(services, web_session, database_url):
    receipt = submit(web_session, {"community_code": XINHE_COMMUNITY, "matters": ["residence-permit"],
                                   "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER,
                                                 "phone": APPLICANT_PHONE},
                                   "materials": {"provided": ["id-card", "photo", "rental-contract",
                                                              "landlord-property-certificate-copy",
                                                              "landlord-id-copy", "job-or-school-proof"]}})
    wait_until(lambda: case_items(web_session, receipt["case_id"])[0]["item_id"], what="item routed")

    def report(body, headers=XINHE_KIOSK):
        return web_session.post("/v1/failure-reports", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **headers})

    assert report({"community_code": XINHE_COMMUNITY, "reporter": REPORTER, "description": WORDS},
                  headers=XUANWU_KIOSK).status_code == 403
    filed = report({"community_code": XINHE_COMMUNITY, "case_id": receipt["case_number"], "reporter": REPORTER,
                    "description": WORDS})
    assert filed.status_code == 201, filed.text
    taken = filed.json()
    assert (taken["reporter_name"], taken["matter_code"]) == ("刘**", "residence-permit")

    window = services.window
    path = f"{window}/v1/failure-reports/{taken['report_id']}"
    seen = wait_until(lambda: requests.get(path, headers=TOKENS["xinhe"], timeout=5).json()
                      if requests.get(path, headers=TOKENS["xinhe"], timeout=5).status_code == 200 else None,
                      what="escalation took the report in")
    assert (seen["channel"], seen["status"], seen["department_code"], seen["level"]) == (
        "kiosk", "open", "police", "street")

    def act(action, who, body):
        response = requests.post(f"{path}/{action}", json=body, headers=TOKENS[who], timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    assert act("classify", "xinhe", {"report_class": "complex", "cause_code": "repeated-visits"})["owner"] == (
        "staff-xinhe-community")                                        # the first member of staff to take it up
    act("assign", "specialist-maigaoqiao", {})
    act("contacts", "specialist-maigaoqiao", {"department_code": "police", "channel": "phone", "kind": "opinion",
                                              "note": "派出所：补齐房东材料后当日可办"})
    act("close", "specialist-maigaoqiao", {"outcome": "solved"})
    assert act("return-visit", "xinhe", {"agrees_solved": True})["status"] == "confirmed"

    bodies = [body for (body,) in query(database_url, "SELECT body FROM outbox_messages")]
    assert any("cn.sanji.report.filed.v1" in body for body in bodies)
    for body in bodies:
        for secret in ("刘金花", APPLICANT_PHONE, APPLICANT_ID_NUMBER, WORDS):
            assert secret not in body
    assert [report["reporter_phone"] for report in stored_failure_reports(database_url)] == [APPLICANT_PHONE]
