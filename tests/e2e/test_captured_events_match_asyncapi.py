"""Every event the services really publish matches docs/asyncapi.json.

A case goes from the kiosk to completion over the real broker (intake and routing, as in
test_case_to_completion.py) while a test queue bound to `#` on the events exchange captures every message.
Each captured message is then validated, envelope and `data`, against the payload schema of its channel in
the committed AsyncAPI document, with jsonschema; the routing key must match the channel's address, and the
capture must hold at least the types this flow has to produce.
"""

from __future__ import annotations

import json

import pytest
import requests
from kombu import Connection, Queue
from nameko.testing.utils import find_free_port

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from shared.topology import declare_topology, events_exchange
from tests.support.asyncapi_check import problems
from tests.support.bus import drain_queue
from tests.support.cases import XINHE_KIOSK, migrant_bundle
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

STREET_STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}
COMMUNITY_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}
CAPTURE_QUEUE = "test.capture-every-event"
# What a case worked to completion must publish (with a 容缺 material supplied on the way).
EXPECTED = {f"cn.sanji.{name}.v1" for name in (
    "case.submitted", "item.routed", "item.claimed", "item.accepted", "item.supplement-supplied", "item.resolved",
    "case.completed")}


def test_the_validation_rejects_a_wrong_message():
    """A control: the schemas are really applied, to the envelope and to `data`."""
    assert problems("case.submitted.320113003021", {"type": "cn.sanji.case.submitted.v1"})
    assert problems("x", {"type": "cn.sanji.nothing.v1"})


def test_every_captured_event_matches_its_asyncapi_schema(container_factory, make_service_config, rabbit_config,
                                                           web_config_port, web_session):
    amqp_uri = rabbit_config["AMQP_URI"]
    with Connection(amqp_uri) as connection:
        declare_topology(connection)
        Queue(CAPTURE_QUEUE, exchange=events_exchange, routing_key="#", durable=False,
              auto_delete=False)(connection.default_channel).declare()

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

    wait_until(completed_case)

    captured = []

    def everything_captured():
        captured.extend(drain_queue(amqp_uri, CAPTURE_QUEUE, expect=1000, timeout=0.5))
        types = {json.loads(message.body)["type"] for message in captured}
        return types if EXPECTED <= types else None

    wait_until(everything_captured)
    errors = [problem for message in captured
              for problem in problems(message.delivery_info["routing_key"], json.loads(message.body))]
    assert errors == [], "\n".join(errors)
    # Every item's route and resolution, not just one of each.
    types = [json.loads(message.body)["type"] for message in captured]
    assert types.count("cn.sanji.item.routed.v1") >= len(items)
    assert types.count("cn.sanji.item.resolved.v1") >= len(items)
