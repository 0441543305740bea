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
from kombu import Connection, Queue
from nameko.testing.utils import find_free_port

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from shared.topology import declare_topology, events_exchange
from tests.support.asyncapi_check import problems
from tests.support.bus import drain_queue
from tests.support.flows import migrant_case_to_completion
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

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

    _, items, _ = migrant_case_to_completion(web_session, staff_api)

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
