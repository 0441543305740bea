"""End to end: 流动人口一件事 from the kiosk to completion, with one 容缺 material, over HTTP and the bus."""

from __future__ import annotations

import pytest
from nameko.testing.utils import find_free_port

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from tests.support.flows import migrant_case_to_completion

pytestmark = pytest.mark.e2e





def test_a_bundle_goes_from_the_kiosk_to_completion(container_factory, make_service_config, web_config_port,
                                                    web_session):
    routing_port = find_free_port()
    container_factory(IntakeService, make_service_config("intake", web_port=web_config_port)).start()
    container_factory(RoutingService, make_service_config("routing", web_port=routing_port)).start()
    staff_api = f"http://127.0.0.1:{routing_port}/v1/items"

    receipt, items, case = migrant_case_to_completion(web_session, staff_api)
    assert [d["material_code"] for d in receipt["deferred_materials"]] == ["landlord-id-copy"]
    assert {item["status"] for item in case["items"]} == {"resolved"}
    assert case["delivery"]["method"] == "door" and case["delivery"]["agent_id"] == "sw-017"
