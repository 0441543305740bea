"""/metrics on the real broker and database: a routing container routes cases, and a scrape shows it.

The series are parsed with prometheus_client's own parser, so the test also proves the exposition is
valid Prometheus text format.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import find_free_port
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from shared.clock import new_id
from shared.db import normalise_url
from shared.events import CaseSubmittedV1, CloudEvent
from tests.support.bus import publish_raw
from tests.support.cases import XINHE_COMMUNITY

pytestmark = pytest.mark.integration

CASE_QUEUE = "routing.case-submitted"
CASE_SUBMITTED = "cn.sanji.case.submitted.v1"
ESCALATION_ORDERED = "cn.sanji.escalation.ordered.v1"
DEAD_LETTERS = "sanji.dead-letters"
NAMED_SERIES = {
    "sanji_messages_handled_total", "sanji_messages_failed_total", "sanji_messages_redelivered_total",
    "sanji_relay_published_total", "sanji_relay_failures_total", "sanji_outbox_backlog",
    "sanji_outbox_oldest_unpublished_age_seconds", "sanji_outbox_lag_seconds_bucket", "sanji_outbox_lag_seconds_count",
    "sanji_queue_messages", "sanji_queue_consumers",
}
# After the first handled event and the first HTTP request (a scrape's own request counts from the next one).
ACTIVITY_SERIES = {
    "sanji_handler_duration_seconds_bucket", "sanji_handler_duration_seconds_count",
    "sanji_handler_duration_seconds_sum", "sanji_http_requests_total", "sanji_http_request_duration_seconds_bucket",
    "sanji_http_request_duration_seconds_count",
}
ROUTING_SERIES = {"sanji_routing_items", "sanji_routing_items_overdue"}


def case_event(*matter_codes: str):
    now = datetime.now(UTC)
    case_id = new_id()
    payload = CaseSubmittedV1(case_id=case_id, case_number=f"SJTEST-{case_id[:8]}", community_code=XINHE_COMMUNITY,
                              catalogue_version="test", bundle_code=None, matter_codes=matter_codes,
                              channel="kiosk", applicant_masked_name="刘**", submitted_at=now)
    return CloudEvent.wrap(payload, source="/sanji/intake", time=now), payload.routing_key()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from a service's /metrics."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def names(samples) -> set[str]:
    return {name for name, _ in samples}


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture
def routing_port(container_factory, make_service_config):
    port = find_free_port()
    # The per-status counts are folded from their change rows on a timer: often, so the test need not wait long.
    container = container_factory(RoutingService, make_service_config("routing", web_port=port,
                                                                      SANJI_STATUS_FOLD_SECONDS=0.2))
    container.start()
    return port, container


def test_routing_metrics_expose_the_named_series_and_count_what_happened(routing_port, rabbit_config, database_url):
    port, container = routing_port
    before = scrape(port)
    assert NAMED_SERIES | ROUTING_SERIES <= names(before), sorted(names(before))
    # Every handler's counters exist at zero before its first message, for each type its queue receives.
    for handler, queue, event_type in (("on_case_submitted", CASE_QUEUE, CASE_SUBMITTED),
                                       ("on_escalation_ordered", "routing.escalation-orders", ESCALATION_ORDERED)):
        labels = {"handler": handler, "queue": queue, "event_type": event_type}
        assert value(before, "sanji_messages_handled_total", **labels) == 0
        assert value(before, "sanji_messages_redelivered_total", **labels) == 0
        for outcome in ("dead_lettered", "retried_in_place", "requeued"):
            assert value(before, "sanji_messages_failed_total", outcome=outcome, **labels) == 0
    # Only the types a queue is bound to: routing's case queue hears of nothing else.
    assert {dict(labels)["event_type"] for name, labels in before if name == "sanji_messages_handled_total"
            and dict(labels)["queue"] == CASE_QUEUE} == {CASE_SUBMITTED}

    event, routing_key = case_event("residence-permit", "employment-registration")
    with entrypoint_waiter(container, "on_case_submitted"):
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)
    # Not a CloudEvent at all: dead-lettered before any handler runs, and counted as such.
    publish_raw(rabbit_config["AMQP_URI"], {"not": "a cloudevent"}, "case.submitted.320113003021")

    # The database gauges are read at most once per SANJI_DB_PROBE_SECONDS, so wait for them as well.
    def relayed():
        samples = scrape(port)
        return samples if (value(samples, "sanji_relay_published_total") >= 2
                           and value(samples, "sanji_outbox_backlog") == 0
                           and value(samples, "sanji_routing_items", status="queued") == 2
                           and value(samples, "sanji_messages_failed_total", handler="on_case_submitted",
                                     queue=CASE_QUEUE, event_type="invalid", outcome="dead_lettered") == 1
                           and samples.get(("sanji_queue_messages", (("queue", DEAD_LETTERS),))) == 1) else None

    after = wait_for(relayed)
    assert after, scrape(port)
    assert ACTIVITY_SERIES <= names(after), sorted(ACTIVITY_SERIES - names(after))
    case = {"handler": "on_case_submitted", "queue": CASE_QUEUE, "event_type": CASE_SUBMITTED}
    assert value(after, "sanji_messages_handled_total", **case) == 1
    assert value(after, "sanji_messages_redelivered_total", **case) == 0
    assert value(after, "sanji_handler_duration_seconds_count", **case) == 1
    assert 0 < value(after, "sanji_handler_duration_seconds_sum", **case) < 10
    assert value(after, "sanji_relay_published_total") == 2      # two item.routed events
    assert value(after, "sanji_relay_failures_total") == 0
    # Each published event's time in the outbox: committed, then relayed within the test's patience.
    assert value(after, "sanji_outbox_lag_seconds_count") == 2
    assert 0 <= value(after, "sanji_outbox_lag_seconds_sum") < 20
    assert value(after, "sanji_outbox_oldest_unpublished_age_seconds") == 0
    # The broker's view: routing's queues have this container as their consumer; the invalid message waits
    # in the dead letters.
    assert value(after, "sanji_queue_consumers", queue=CASE_QUEUE) == 1
    assert value(after, "sanji_queue_messages", queue=CASE_QUEUE) == 0
    assert value(after, "sanji_queue_messages", queue=DEAD_LETTERS) == 1
    assert value(after, "sanji_metrics_collector_up", collector="broker_queues") == 1
    assert {dict(labels)["queue"] for name, labels in after if name == "sanji_queue_messages"} == {
        CASE_QUEUE, "routing.escalation-orders", "routing.deferral-revisions", DEAD_LETTERS}
    assert value(after, "sanji_routing_items", status="queued") == 2
    assert value(after, "sanji_routing_items", status="resolved") == 0
    assert value(after, "sanji_routing_items_overdue") == 0
    assert value(after, "sanji_metrics_collector_up", collector="routing_items") == 1

    # An item whose promised deadline has passed counts as overdue; a paused clock does not.
    engine = create_engine(normalise_url(database_url))
    past = datetime.now(UTC) - timedelta(days=1)
    with engine.begin() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM routing_items ORDER BY id"))]
        connection.execute(text("UPDATE routing_items SET promised_deadline = :past"),
                           {"past": past if engine.dialect.name == "postgresql"
                            else past.replace(tzinfo=None).isoformat(sep=" ")})
        connection.execute(text("UPDATE routing_items SET clock_paused_at = promised_deadline WHERE id = :id"),
                           {"id": ids[0]})
    engine.dispose()
    # Scrape-time gauges read the database at most once per SANJI_DB_PROBE_SECONDS (5 s): the change shows
    # on a later scrape, not necessarily the next one.
    assert wait_for(lambda: value(scrape(port), "sanji_routing_items_overdue") == 1, timeout=15)


def test_each_container_has_its_own_registry(container_factory, make_service_config, rabbit_config):
    """Two routing replicas and an intake in one process: each scrape shows only that container's work."""
    ports = {}
    containers = {}
    for name, service_class in (("routing-a", RoutingService), ("routing-b", RoutingService),
                                ("intake", IntakeService)):
        ports[name] = find_free_port()
        containers[name] = container_factory(service_class, make_service_config(
            "intake" if name == "intake" else "routing", web_port=ports[name]))
        containers[name].start()

    for _ in range(6):
        event, routing_key = case_event("residence-permit")
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)

    def handled(name):
        return value(scrape(ports[name]), "sanji_messages_handled_total", handler="on_case_submitted",
                     queue=CASE_QUEUE, event_type=CASE_SUBMITTED)

    assert wait_for(lambda: handled("routing-a") + handled("routing-b") == 6), (handled("routing-a"),
                                                                               handled("routing-b"))
    intake = scrape(ports["intake"])
    assert not any(name.startswith("sanji_routing_") for name in names(intake))
    assert not any(dict(labels).get("handler") == "on_case_submitted" for _, labels in intake)
    assert ("sanji_messages_handled_total", (("event_type", "cn.sanji.item.routed.v1"), ("handler", "on_item_event"),
                                             ("queue", "intake.item-updates"))) in intake


def test_scrapes_and_health_probes_inside_the_probe_window_do_not_query_the_database(
        container_factory, make_service_config, database_url):
    """Kubernetes probes every pod every few seconds and Prometheus scrapes as often: the database is
    read at most once per SANJI_DB_PROBE_SECONDS, whatever the rate."""
    from sqlalchemy import event

    from shared.db import shared_engine

    port = find_free_port()
    container = container_factory(RoutingService, make_service_config("routing", web_port=port,
                                                                      SANJI_DB_PROBE_SECONDS=30))
    container.start()
    statements = []

    def record(connection, cursor, statement, *args):
        # The probe's SELECT 1 and the gauges' counts; the outbox relay's own polling is not a probe.
        if statement.strip() == "SELECT 1" or "count(" in statement:
            statements.append(statement)

    engine = shared_engine(database_url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        scrape(port)
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        first = len(statements)
        assert first > 0  # the first scrape and probe did read the database
        for _ in range(10):
            scrape(port)
            assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        assert len(statements) == first, statements[first:]
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_metrics_can_be_served_on_a_port_of_their_own(container_factory, make_service_config):
    port, metrics_port = find_free_port(), find_free_port()
    container = container_factory(RoutingService, make_service_config(
        "routing", web_port=port, SANJI_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}"))
    container.start()
    samples = scrape(metrics_port)
    assert NAMED_SERIES | ROUTING_SERIES <= names(samples)
    assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
    assert requests.get(f"http://127.0.0.1:{metrics_port}/v1/items", timeout=5).status_code == 404
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


def test_http_requests_are_counted_and_timed_by_route_template(routing_port):
    """Labels name the route template, never the requested path: no item id becomes a series."""
    port, _ = routing_port
    for item_id in ("item-a", "item-b", "item-c"):
        response = requests.get(f"http://127.0.0.1:{port}/v1/items/{item_id}",
                                headers={"Authorization": "Bearer dev-staff-maigaoqiao"}, timeout=5)
        assert response.status_code == 404, response.text
    assert requests.get(f"http://127.0.0.1:{port}/v1/items/item-d", timeout=5).status_code == 401
    samples = scrape(port)
    route = "/v1/items/<string:item_id>"
    item = {"service": "routing", "route": route, "method": "GET"}
    assert value(samples, "sanji_http_requests_total", status="404", **item) == 3
    assert value(samples, "sanji_http_requests_total", status="401", **item) == 1
    assert value(samples, "sanji_http_request_duration_seconds_count", status="404", **item) == 3
    assert 0 < value(samples, "sanji_http_request_duration_seconds_sum", status="404", **item) < 10
    assert not [labels for _, labels in samples if any("item-" in str(v) for _, v in labels)]
    # The scrape before this one counts too; a path that no route matches does not.
    assert requests.get(f"http://127.0.0.1:{port}/no/such/path", timeout=5).status_code == 404
    routes = {dict(labels)["route"] for name, labels in scrape(port) if name == "sanji_http_requests_total"}
    assert routes == {route, "/metrics"}


def test_a_redelivered_event_is_counted_as_such(container_factory, make_service_config, rabbit_config):
    """The broker's own redelivery marks: a message put back once arrives with redelivered set (and the quorum
    queue's x-delivery-count at 1), and the consumer counts it under its event type."""
    from kombu import Connection

    event, routing_key = case_event("residence-permit")
    publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        channel = connection.channel()
        message = wait_for(lambda: channel.basic_get(CASE_QUEUE, no_ack=False))
        assert message is not None
        channel.basic_reject(message.delivery_tag, requeue=True)

    port = find_free_port()
    # The per-status counts are folded from their change rows on a timer: often, so the test need not wait long.
    container = container_factory(RoutingService, make_service_config("routing", web_port=port,
                                                                      SANJI_STATUS_FOLD_SECONDS=0.2))
    with entrypoint_waiter(container, "on_case_submitted"):
        container.start()
    case = {"handler": "on_case_submitted", "queue": CASE_QUEUE, "event_type": CASE_SUBMITTED}
    samples = scrape(port)
    assert value(samples, "sanji_messages_redelivered_total", **case) == 1
    assert value(samples, "sanji_messages_handled_total", **case) == 1


def test_queue_gauges_report_the_broker_down_without_failing_the_scrape():
    from shared.metrics import QueueCollector

    families = list(QueueCollector("amqp://guest:guest@127.0.0.1:1//", [CASE_QUEUE], timeout=1).collect())
    assert [(f.name, [(s.labels, s.value) for s in f.samples]) for f in families] == [
        ("sanji_metrics_collector_up", [({"collector": "broker_queues"}, 0.0)])]


def test_each_family_is_exposed_once(routing_port):
    """Several scrape-time collectors report sanji_metrics_collector_up: one family, one TYPE line, as the text
    format requires (a scraper may refuse a second)."""
    port, _ = routing_port
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), sorted(name for name in set(types) if types.count(name) > 1)
    up = {dict(labels)["collector"] for name, labels in scrape(port) if name == "sanji_metrics_collector_up"}
    assert up == {"outbox", "routing_items", "broker_queues"}
