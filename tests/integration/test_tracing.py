"""Tracing on the real broker and database: a case submitted over HTTP at intake and routed by routing is one
trace, from intake's SERVER span through the relay's PRODUCER span to routing's CONSUMER span, and on to the
events routing publishes. The spans go to the SDK's in-memory exporter; nothing personal is in them.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import find_free_port
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import create_engine, text

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from shared import tracing
from shared.db import normalise_url
from tests.support.cases import MIGRANT_BUNDLE, XINHE_KIOSK, migrant_bundle

pytestmark = pytest.mark.integration

CASE_SUBMITTED = "cn.sanji.case.submitted.v1"
# Everything a span may say: routes, methods, statuses, queues, event types and ids. A new attribute must be
# added here on purpose, after checking it can never carry personal data.
ALLOWED_ATTRIBUTES = {
    "http.request.method", "http.route", "http.response.status_code",
    "messaging.system", "messaging.operation.type", "messaging.destination.name", "messaging.message.id",
    "cloudevents.event_id", "cloudevents.event_type", "cloudevents.event_source", "sanji.handler",
}


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.enable(exporter, simple=True)
    yield exporter
    tracing.disable()


def _wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def _outbox_trace_contexts(database_url: str, source: str) -> dict[str, str | None]:
    """{event type: the traceparent of its envelope} for the outbox rows of one service."""
    engine = create_engine(normalise_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT event_type, body FROM outbox_messages WHERE source = :source"),
                                  {"source": source}).all()
    engine.dispose()
    return {event_type: json.loads(body).get("traceparent") for event_type, body in rows}


def _traceparent(span) -> str:
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-{int(span.context.trace_flags):02x}"


def _start(container_factory, make_service_config, service_class, name):
    port = find_free_port()
    container = container_factory(service_class, make_service_config(name, web_port=port))
    container.start()
    return container, port


def test_a_submitted_case_and_its_routing_are_one_trace(spans, container_factory, make_service_config,
                                                        database_url):
    _, intake_port = _start(container_factory, make_service_config, IntakeService, "intake")
    routing, _ = _start(container_factory, make_service_config, RoutingService, "routing")

    with entrypoint_waiter(routing, "on_case_submitted", timeout=20):
        response = requests.post(f"http://127.0.0.1:{intake_port}/v1/cases",
                                 data=json.dumps(migrant_bundle(), ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json", **XINHE_KIOSK}, timeout=10)
        assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]

    def by_kind():
        finished = spans.get_finished_spans()
        found = {
            "server": [s for s in finished if s.kind == SpanKind.SERVER and s.name == "POST /v1/cases"],
            "producer": [s for s in finished if s.kind == SpanKind.PRODUCER
                         and s.attributes["cloudevents.event_type"] == CASE_SUBMITTED],
            "consumer": [s for s in finished if s.kind == SpanKind.CONSUMER
                         and s.attributes["cloudevents.event_type"] == CASE_SUBMITTED],
            "routed": [s for s in finished if s.kind == SpanKind.PRODUCER
                       and s.resource.attributes["service.name"] == "routing"],
        }
        return found if all(found.values()) else None

    found = _wait_for(by_kind)
    assert found, [(s.name, s.kind) for s in spans.get_finished_spans()]
    (server,), (producer,), (consumer,) = found["server"], found["producer"], found["consumer"]

    # intake's SERVER span: the route template and the status.
    assert server.resource.attributes["service.name"] == "intake"
    assert server.attributes["http.route"] == "/v1/cases" and server.attributes["http.response.status_code"] == 201
    assert server.parent is None
    # The event created in the request carries the request's span: its CloudEvents traceparent.
    assert _outbox_trace_contexts(database_url, "/sanji/intake")[CASE_SUBMITTED] == _traceparent(server)
    # intake's relay published it as a child of that span, and routing consumed it as a child of the publish.
    assert producer.resource.attributes["service.name"] == "intake"
    assert producer.parent.span_id == server.context.span_id
    assert consumer.resource.attributes["service.name"] == "routing"
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.attributes["messaging.destination.name"] == "routing.case-submitted"
    # And on: the item.routed events routing created while handling it belong to the same trace.
    routed = _outbox_trace_contexts(database_url, "/sanji/routing")
    assert routed and all(context == _traceparent(consumer) for context in routed.values()), routed
    assert {span.context.trace_id for span in [server, producer, consumer, *found["routed"]]} == {
        server.context.trace_id}

    # Nothing personal: only the attributes allowed above, and no value from the submission.
    applicant = MIGRANT_BUNDLE["applicant"]
    personal = [applicant["name"], applicant["id_number"], applicant["phone"], case_id]
    for span in spans.get_finished_spans():
        assert set(span.attributes) <= ALLOWED_ATTRIBUTES, (span.name, sorted(span.attributes))
        said = " ".join([span.name, *map(str, span.attributes.values())])
        assert not [value for value in personal if value in said], (span.name, said)


def test_a_traceparent_header_makes_the_request_a_child(spans, container_factory, make_service_config):
    """The console (or a gateway) that sends a W3C traceparent gets the service's span in its trace."""
    _, port = _start(container_factory, make_service_config, RoutingService, "routing")
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = requests.get(f"http://127.0.0.1:{port}/v1/items/no-such-item",
                            headers={"traceparent": parent, **XINHE_KIOSK}, timeout=5)
    assert response.status_code in (403, 404), response.text
    (span,) = _wait_for(lambda: [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER])
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.name == "GET /v1/items/<string:item_id>"
    assert span.attributes["http.route"] == "/v1/items/<string:item_id>"
    assert span.attributes["http.response.status_code"] == response.status_code


def test_tracing_is_off_by_default(container_factory, make_service_config, database_url):
    """No exporter configured: no provider, and events carry no trace context."""
    assert not tracing.enabled()
    routing, _ = _start(container_factory, make_service_config, RoutingService, "routing")
    _, intake_port = _start(container_factory, make_service_config, IntakeService, "intake")
    assert not tracing.enabled()
    with entrypoint_waiter(routing, "on_case_submitted", timeout=20):
        response = requests.post(f"http://127.0.0.1:{intake_port}/v1/cases",
                                 data=json.dumps(migrant_bundle(), ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json", **XINHE_KIOSK,
                                          "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                                 timeout=10)
        assert response.status_code == 201, response.text
    assert _outbox_trace_contexts(database_url, "/sanji/intake") == {CASE_SUBMITTED: None}
    assert _wait_for(lambda: _outbox_trace_contexts(database_url, "/sanji/routing"))
    assert set(_outbox_trace_contexts(database_url, "/sanji/routing").values()) == {None}
