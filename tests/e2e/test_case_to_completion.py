"""End to end: 流动人口一件事 from the kiosk to completion, with one 容缺 material, over HTTP and the bus."""

from __future__ import annotations

import json

import pytest
import requests
from nameko.testing.utils import find_free_port

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from tests.support.cases import XINHE_KIOSK, migrant_bundle
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

STREET_STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}
COMMUNITY_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}




def test_a_bundle_goes_from_the_kiosk_to_completion(container_factory, make_service_config, web_config_port,
                                                    web_session):
    routing_port = find_free_port()
    container_factory(IntakeService, make_service_config("intake", web_port=web_config_port)).start()
    container_factory(RoutingService, make_service_config("routing", web_port=routing_port)).start()
    staff_api = f"http://127.0.0.1:{routing_port}/v1/items"

    body = migrant_bundle(materials={
        "provided": ["id-card", "photo", "rental-contract", "labour-contract", "landlord-property-certificate-copy",
                     "job-or-school-proof", "spouse-id-card", "education-certificate"],
        "deferred": ["landlord-id-copy"]})
    receipt = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                               headers={"Content-Type": "application/json", **XINHE_KIOSK}).json()
    assert [d["material_code"] for d in receipt["deferred_materials"]] == ["landlord-id-copy"]

    def routed_case():
        case = web_session.get(f"/v1/cases/{receipt['case_id']}", headers=XINHE_KIOSK).json()
        return case if all(item["item_id"] for item in case["items"]) else None

    items = {item["matter_code"]: item for item in wait_until(routed_case)["items"]}

    def work(item_id, headers, *, supply=None):
        for action, payload in (("claim", {}), ("accept", {}),
                                *([("record-supplement", {"materials": supply})] if supply else []),
                                ("resolve", {"result": "已办结",
                                             "delivery": {"method": "door", "agent_id": "sw-017"}})):
            response = requests.post(f"{staff_api}/{item_id}/{action}", json=payload, headers=headers, timeout=5)
            assert response.status_code == 200, (action, response.text)

    work(items["residence-permit"]["item_id"], STREET_STAFF, supply=["landlord-id-copy"])
    work(items["vocational-training-signup"]["item_id"], STREET_STAFF)
    work(items["birth-registration-proof"]["item_id"], COMMUNITY_STAFF)
    work(items["employment-registration"]["item_id"], COMMUNITY_STAFF)

    def completed_case():
        case = web_session.get(f"/v1/cases/{receipt['case_id']}", headers=XINHE_KIOSK).json()
        return case if case["completed_at"] else None

    case = wait_until(completed_case)
    assert {item["status"] for item in case["items"]} == {"resolved"}
    assert case["delivery"]["method"] == "door" and case["delivery"]["agent_id"] == "sw-017"
