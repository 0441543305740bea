"""Prometheus metrics of one service container, served at ``/metrics`` (``shared.service_base``).

Series (every service):

- ``sanji_messages_handled_total{handler,queue}``: events a consumer handled and acked;
- ``sanji_messages_failed_total{handler,queue,outcome}``: handler runs that failed, ``outcome`` being
  ``dead_lettered`` (permanent: rejected at once, or not a valid CloudEvent), ``retried_in_place``
  (the database or broker unreachable: run again in place, the delivery budget untouched) or
  ``requeued`` (anything else: tried again until the queue's delivery limit dead-letters it);
- ``sanji_handler_duration_seconds{handler,queue}``: a histogram of the time from a message's arrival
  to its handler's result (the requeue back-off is not counted);
- ``sanji_relay_published_total`` / ``sanji_relay_failures_total``: outbox events the relay published
  (broker-confirmed), and relay attempts that failed and will be retried;
- ``sanji_outbox_backlog`` / ``sanji_outbox_oldest_unpublished_age_seconds``: this service's outbox
  rows not yet published, read from the database at scrape time.

A service adds gauges of its own tables by naming collectors in its class attribute
``storage_collectors`` (routing: ``sanji_routing_items{status}`` and ``sanji_routing_items_overdue``, in
``services/routing/metrics.py``); the kernel knows no service's tables. A gauge read from the database is
the same on every replica (they share it): aggregate those with ``max``, not ``sum``.

Each nameko container gets its own registry (``for_container``), never prometheus_client's global
one: the tests run several containers in one process, and each must expose only its own numbers.
Counters are updated where the work happens (``shared.nameko_ext``, ``shared.relay``). A collector that
cannot reach the database reports ``sanji_metrics_collector_up{collector=...} 0`` instead of failing
the whole scrape.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import column, func, select, table
from sqlalchemy.engine import Engine

from shared.db import UTCDateTime

# Handlers are database transactions: milliseconds normally, seconds when something is wrong.
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FAILURE_OUTCOMES = ("dead_lettered", "retried_in_place", "requeued")


class ServiceMetrics:
    """The metrics of one service container, in a registry of its own."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages_handled = Counter(
            "sanji_messages_handled", "Events a consumer handled successfully (acked)",
            ["handler", "queue"], registry=self.registry)
        self.messages_failed = Counter(
            "sanji_messages_failed", "Events a consumer failed on, by what happened to the message",
            ["handler", "queue", "outcome"], registry=self.registry)
        self.handler_duration = Histogram(
            "sanji_handler_duration_seconds", "Time from an event's arrival to its handler's result",
            ["handler", "queue"], buckets=HANDLER_BUCKETS, registry=self.registry)
        self.relay_published = Counter(
            "sanji_relay_published", "Outbox events the relay published with a broker confirm",
            registry=self.registry)
        self.relay_failures = Counter(
            "sanji_relay_failures", "Outbox relay attempts that failed (broker or database) and are retried",
            registry=self.registry)
        self._collectors: set[str] = set()
        self._lock = threading.Lock()

    def declare_handler(self, handler: str, queue: str) -> None:
        """Create a handler's series at zero, so rates and alerts work before its first message."""
        self.messages_handled.labels(handler, queue)
        self.handler_duration.labels(handler, queue)
        for outcome in FAILURE_OUTCOMES:
            self.messages_failed.labels(handler, queue, outcome)

    def handled(self, handler: str, queue: str) -> None:
        self.messages_handled.labels(handler, queue).inc()

    def failed(self, handler: str, queue: str, outcome: str) -> None:
        self.messages_failed.labels(handler, queue, outcome).inc()

    def observe_handler(self, handler: str, queue: str, seconds: float) -> None:
        self.handler_duration.labels(handler, queue).observe(seconds)

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
                self.registry.register(make())
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
                               "1 when a scrape-time collector could read the database", labels=["collector"])
    family.add_metric([name], 1.0 if up else 0.0)
    return family


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
