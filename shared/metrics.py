"""Prometheus metrics of one service container, served at ``/metrics`` (``shared.service_base``).

Series (every service):

- ``sanji_http_requests_total{service,route,method,status}`` and the histogram
  ``sanji_http_request_duration_seconds{service,route,method,status}``: requests to the service's ``@http``
  entrypoints (``shared.web``), by route *template* (``/v1/items/<item_id>``, never the path with its ids),
  timed from the request's arrival to its response; a path no route matches is not counted;
- ``sanji_messages_handled_total{handler,queue,event_type}``: events a consumer handled and acked;
- ``sanji_messages_failed_total{handler,queue,event_type,outcome}``: handler runs that failed, ``outcome``
  being ``dead_lettered`` (permanent: rejected at once, or not a valid CloudEvent), ``retried_in_place``
  (the database or broker unreachable: run again in place, the delivery budget untouched) or
  ``requeued`` (anything else: tried again until the queue's delivery limit dead-letters it);
- ``sanji_messages_redelivered_total{handler,queue,event_type}``: deliveries the broker marked as a
  redelivery (the AMQP ``redelivered`` flag, or the quorum queue's ``x-delivery-count``): a requeue, or a
  consumer that died holding the message;
- ``sanji_handler_duration_seconds{handler,queue,event_type}``: a histogram of the time from a message's
  arrival to its handler's result (the requeue back-off is not counted);
- ``sanji_relay_published_total`` / ``sanji_relay_failures_total``: outbox events the relay published
  (broker-confirmed), and relay attempts that failed and will be retried;
- ``sanji_relay_unroutable_total{event_type}``: outbox events the broker confirmed but returned because no
  queue is bound to their routing key (the relay publishes with ``mandatory``): nobody received them, not
  even the subscriptions service's queue, bound to every event, so a queue or binding is missing. They are
  marked published all the same (docs/reliability.md); the series exist at zero for the types the service
  owns;
- ``sanji_outbox_lag_seconds``: a histogram of each published event's time in the outbox (published at
  minus created at), observed by the relay;
- ``sanji_retention_deleted_total{table}``: rows the retention job deleted (``shared.retention``);
- ``sanji_outbox_backlog`` / ``sanji_outbox_oldest_unpublished_age_seconds``: this service's outbox
  rows not yet published, read from the database at scrape time;
- ``sanji_queue_messages{queue}`` / ``sanji_queue_consumers{queue}``: the messages waiting (ready, not
  yet acknowledged ones excluded) in, and the consumers of, each queue the service consumes and the dead-letter
  queue, read from the broker at scrape time with a passive ``queue.declare`` (``collector="broker_queues"``).

``event_type`` is a registered CloudEvents type, ``unknown`` for any other, ``invalid`` for a message that
is not a CloudEvent: labels never take a value from outside a closed set. Each consumer's counters exist at
zero from the start for every type its queue is bound to.

A service adds gauges of its own tables by naming collectors in its class attribute
``storage_collectors`` (routing: ``sanji_routing_items{status}`` and ``sanji_routing_items_overdue``, in
``services/routing/metrics.py``); the kernel knows no service's tables. A gauge read from the database is
the same on every replica (they share it): aggregate those with ``max``, not ``sum``; so are the queue
gauges, read from the one broker.

Each nameko container gets its own registry (``for_container``), never prometheus_client's global
one: the tests run several containers in one process, and each must expose only its own numbers.
Counters are updated where the work happens (``shared.nameko_ext``, ``shared.relay``). A collector that
cannot reach the database reports ``sanji_metrics_collector_up{collector=...} 0`` instead of failing
the whole scrape.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider
from prometheus_client import CollectorRegistry, Counter, Histogram, Metric, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import column, func, select, table
from sqlalchemy.engine import Engine

from shared.db import UTCDateTime
from shared.events import PAYLOAD_TYPES

# Handlers are database transactions: milliseconds normally, seconds when something is wrong.
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# HTTP answers: a few milliseconds for an API read, tens for a console page, seconds when something is wrong.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An event's time in the outbox: the relay is woken at commit (milliseconds); its poll is 0.5 s; minutes mean
# the broker or the relay is down.
OUTBOX_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
FAILURE_OUTCOMES = ("dead_lettered", "retried_in_place", "requeued")
UNKNOWN_EVENT_TYPE, INVALID_EVENT = "unknown", "invalid"


def event_type_label(event_type: str | None) -> str:
    """A label value from a closed set: a registered type, ``unknown`` or (no type at all) ``invalid``."""
    if event_type is None:
        return INVALID_EVENT
    return event_type if event_type in PAYLOAD_TYPES else UNKNOWN_EVENT_TYPE


def _topic_matches(pattern: list[str], words: list[str]) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic_matches(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _topic_matches(rest, words[1:])


def event_types_bound(binding_keys) -> list[str]:
    """The registered event types whose routing keys a queue with these binding keys receives."""
    found = []
    for event_type, payload in PAYLOAD_TYPES.items():
        words = re.sub(r"\{[^}]+\}", "x", payload.routing_key_template).split(".")
        if any(_topic_matches(key.split("."), words) for key in binding_keys):
            found.append(event_type)
    return sorted(found)


def _owned_event_types(service: str) -> list[str]:
    from shared.bus import OWNED_EVENTS

    return sorted({payload.event_type for payload in OWNED_EVENTS.get(service, ())})


class ServiceMetrics:
    """The metrics of one service container, in a registry of its own."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "sanji_http_requests", "HTTP requests answered, by route template and status",
            ["service", "route", "method", "status"], registry=self.registry)
        self.http_duration = Histogram(
            "sanji_http_request_duration_seconds", "Time from an HTTP request's arrival to its response",
            ["service", "route", "method", "status"], buckets=HTTP_BUCKETS, registry=self.registry)
        self.messages_handled = Counter(
            "sanji_messages_handled", "Events a consumer handled successfully (acked)",
            ["handler", "queue", "event_type"], registry=self.registry)
        self.messages_failed = Counter(
            "sanji_messages_failed", "Events a consumer failed on, by what happened to the message",
            ["handler", "queue", "event_type", "outcome"], registry=self.registry)
        self.messages_redelivered = Counter(
            "sanji_messages_redelivered", "Deliveries the broker marked as redelivered (requeued, or unacked "
            "by a consumer that went away)", ["handler", "queue", "event_type"], registry=self.registry)
        self.handler_duration = Histogram(
            "sanji_handler_duration_seconds", "Time from an event's arrival to its handler's result",
            ["handler", "queue", "event_type"], buckets=HANDLER_BUCKETS, registry=self.registry)
        self.outbox_lag = Histogram(
            "sanji_outbox_lag_seconds", "Time an event spent in the outbox: published at minus created at",
            buckets=OUTBOX_LAG_BUCKETS, registry=self.registry)
        self.relay_published = Counter(
            "sanji_relay_published", "Outbox events the relay published with a broker confirm",
            registry=self.registry)
        self.relay_failures = Counter(
            "sanji_relay_failures", "Outbox relay attempts that failed (broker or database) and are retried",
            registry=self.registry)
        self.relay_unroutable = Counter(
            "sanji_relay_unroutable", "Outbox events the broker confirmed but returned: no queue is bound to "
            "their routing key", ["event_type"], registry=self.registry)
        for event_type in _owned_event_types(service):  # at zero from the start, for rates and alerts
            self.relay_unroutable.labels(event_type)
        self.retention_deleted = Counter(
            "sanji_retention_deleted", "Rows the retention job deleted (shared.retention), by table", ["table"],
            registry=self.registry)
        self._collectors: set[str] = set()
        self._scrape_time = ScrapeTimeCollectors()
        self.registry.register(self._scrape_time)
        self._lock = threading.Lock()

    def declare_handler(self, handler: str, queue: str, event_types) -> None:
        """Create a handler's counters at zero for every type its queue receives, so that rates and alerts
        work before its first message (histograms appear with their first observation)."""
        for event_type in event_types:
            self.messages_handled.labels(handler, queue, event_type)
            self.messages_redelivered.labels(handler, queue, event_type)
            for outcome in FAILURE_OUTCOMES:
                self.messages_failed.labels(handler, queue, event_type, outcome)

    def unroutable(self, event_type: str | None) -> None:
        self.relay_unroutable.labels(event_type_label(event_type)).inc()

    def handled(self, handler: str, queue: str, event_type: str) -> None:
        self.messages_handled.labels(handler, queue, event_type_label(event_type)).inc()

    def failed(self, handler: str, queue: str, event_type: str | None, outcome: str) -> None:
        self.messages_failed.labels(handler, queue, event_type_label(event_type), outcome).inc()

    def redelivered(self, handler: str, queue: str, event_type: str | None) -> None:
        self.messages_redelivered.labels(handler, queue, event_type_label(event_type)).inc()

    def observe_handler(self, handler: str, queue: str, event_type: str, seconds: float) -> None:
        self.handler_duration.labels(handler, queue, event_type_label(event_type)).observe(seconds)

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """``route`` is the entrypoint's URL template: a bounded set, whatever paths people request."""
        labels = (self.service, route, method, str(status))
        self.http_requests.labels(*labels).inc()
        self.http_duration.labels(*labels).observe(seconds)

    def register_queues(self, amqp_uri: str, queues, cache_seconds: float = 0.0, ssl=None) -> None:
        """The broker's message and consumer counts of ``queues``, read at most once per ``cache_seconds``."""
        self._register_once("broker_queues", lambda: CachingCollector(
            QueueCollector(amqp_uri, sorted(set(queues)), ssl=ssl), cache_seconds))

    def register_storage(self, engine: Engine, source: str, cache_seconds: float = 0.0,
                         collectors: dict | None = None) -> None:
        """Collectors of what the service's database holds: its outbox, and its own tables (``collectors``:
        name -> a factory taking the engine). Each reads the database at most once per ``cache_seconds``,
        however often /metrics is scraped."""
        self._register_once("outbox", lambda: CachingCollector(OutboxCollector(engine, source), cache_seconds))
        for name, factory in (collectors or {}).items():
            self._register_once(name, lambda factory=factory: CachingCollector(factory(engine), cache_seconds))

    def _register_once(self, name: str, make) -> None:
        with self._lock:
            if name not in self._collectors:
                self._scrape_time.add(make())
                self._collectors.add(name)

    def exposition(self) -> tuple[bytes, str]:
        # The classic text format (0.0.4): every Prometheus-compatible scraper reads it.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


_lock = threading.Lock()


def for_container(container) -> ServiceMetrics:
    """The metrics of one nameko container, created on first use and kept on the container itself
    (extensions hold the container through a weak proxy, so it lives and dies with the container)."""
    with _lock:
        metrics = getattr(container, "_sanji_metrics", None)
        if metrics is None:
            metrics = ServiceMetrics(container.config.get("SANJI_SERVICE", container.service_name))
            container._sanji_metrics = metrics
        return metrics


class Metrics(DependencyProvider):
    """``self.<name>.exposition()`` in a worker: the container's metrics in Prometheus text format."""

    def get_dependency(self, worker_ctx):
        return for_container(self.container)


def collector_up(name: str, up: bool) -> GaugeMetricFamily:
    family = GaugeMetricFamily("sanji_metrics_collector_up",
                               "1 when a scrape-time collector could read the database (or the broker)",
                               labels=["collector"])
    family.add_metric([name], 1.0 if up else 0.0)
    return family


class ScrapeTimeCollectors:
    """The scrape-time collectors of a container as one: a family that several of them report (every one
    reports ``sanji_metrics_collector_up``) is exposed once, with all their samples, as the text format
    requires (one ``# TYPE`` line per name)."""

    def __init__(self):
        self._collectors: list = []

    def add(self, collector) -> None:
        self._collectors.append(collector)

    def describe(self):
        return []

    def collect(self):
        merged: dict[str, Metric] = {}
        for collector in list(self._collectors):
            for family in collector.collect():
                if family.name not in merged:
                    merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                merged[family.name].samples.extend(family.samples)  # a new family: cached ones stay as they are
        return list(merged.values())


class CachingCollector:
    """A scrape-time collector whose answer is kept ``ttl`` seconds: scrapes inside the window reuse it."""

    def __init__(self, collector, ttl: float, clock=time.monotonic):
        self._collector, self._ttl, self._clock = collector, ttl, clock
        self._families: list | None = None
        self._collected_at = float("-inf")
        self._lock = threading.Lock()

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            if self._families is None or self._clock() - self._collected_at >= self._ttl:
                self._families = list(self._collector.collect())
                self._collected_at = self._clock()
            return list(self._families)


class MetricsServer(DependencyProvider):
    """/metrics on a port of its own (``SANJI_METRICS_PORT``), so the public API port need not expose it.

    Without the setting it does nothing and /metrics stays on the service's HTTP port. With it, the
    HTTP port's /metrics answers 404 and this listener serves the same registry.
    """

    def setup(self):
        self.address = self.container.config.get("SANJI_METRICS_ADDRESS")
        self._socket = None
        self._thread = None

    def start(self):
        if not self.address:
            return
        import eventlet
        import eventlet.wsgi

        host, _, port = self.address.rpartition(":")
        self._socket = eventlet.listen((host or "127.0.0.1", int(port)))
        self.port = self._socket.getsockname()[1]
        metrics = for_container(self.container)

        def app(environ, start_response):
            if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: this port serves GET /metrics only\n"]
            body, content_type = metrics.exposition()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]

        self._thread = self.container.spawn_managed_thread(
            lambda: eventlet.wsgi.server(self._socket, app, log_output=False), identifier="metrics-server")

    def stop(self):
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return bool(self.address)  # whether /metrics lives on its own port


_outbox = table("outbox_messages", column("source"), column("published_at"), column("created_at", UTCDateTime()))


class OutboxCollector:
    """This service's unpublished outbox rows: the relay's backlog, and how old its oldest row is."""

    def __init__(self, engine: Engine, source: str):
        self._engine, self._source = engine, source

    def describe(self):
        return []  # no database query at registration time

    def collect(self):
        query = (select(func.count(), func.min(_outbox.c.created_at))
                 .where(_outbox.c.source == self._source, _outbox.c.published_at.is_(None)))
        try:
            with self._engine.connect() as connection:
                count, oldest = connection.execute(query).one()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            yield collector_up("outbox", False)
            return
        if isinstance(oldest, str):  # SQLite returns the aggregate of a datetime column as text
            oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
        backlog = GaugeMetricFamily("sanji_outbox_backlog", "Outbox events committed and not yet published")
        backlog.add_metric([], count)
        age = GaugeMetricFamily("sanji_outbox_oldest_unpublished_age_seconds",
                                "Age of the oldest unpublished outbox event (0 when there is none)")
        age.add_metric([], max((datetime.now(UTC) - oldest).total_seconds(), 0.0) if oldest else 0.0)
        yield backlog
        yield age
        yield collector_up("outbox", True)


class QueueCollector:
    """Messages ready in, and consumers of, some queues, from a passive ``queue.declare`` each (which needs
    no permission and costs the broker nothing): one short connection per collection."""

    def __init__(self, amqp_uri: str, queues: list[str], ssl=None, timeout: float = 3.0):
        self._amqp_uri, self._queues, self._ssl, self._timeout = amqp_uri, queues, ssl, timeout

    def describe(self):
        return []  # no broker connection at registration time

    def collect(self):
        from amqp.exceptions import NotFound
        from kombu import Connection

        counts: dict[str, tuple[int, int]] = {}
        try:
            with Connection(self._amqp_uri, ssl=self._ssl, connect_timeout=self._timeout, heartbeat=0) as connection:
                connection.ensure_connection(max_retries=1)
                channel = connection.channel()
                for queue in self._queues:
                    try:
                        _, messages, consumers = channel.queue_declare(queue, passive=True)
                    except NotFound:  # the broker closed the channel: go on with a new one
                        channel = connection.channel()
                        continue
                    counts[queue] = (messages, consumers)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the broker is down
            yield collector_up("broker_queues", False)
            return
        messages = GaugeMetricFamily("sanji_queue_messages", "Messages ready in a queue (not counting those "
                                     "delivered and not yet acknowledged)", labels=["queue"])
        consumers = GaugeMetricFamily("sanji_queue_consumers", "Consumers attached to a queue", labels=["queue"])
        for queue, (ready, attached) in sorted(counts.items()):
            messages.add_metric([queue], ready)
            consumers.add_metric([queue], attached)
        yield messages
        yield consumers
        yield collector_up("broker_queues", True)
