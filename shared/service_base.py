"""What every Sanji service has: storage with its outbox relay, a clock, authentication, /health, /metrics,
tracing (off unless configured: ``shared.tracing``) and the retention job (``shared.retention``).

Services subclass ``SanjiService``; nameko finds entrypoints on base classes too, so operational
endpoints live here once.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from shared.http import json_response
from shared.metrics import Metrics, MetricsServer
from shared.nameko_ext import Authenticator, ClockProvider, Storage
from shared.retention import Retention, retention_timer
from shared.tracing import Tracing
from shared.web import http


class SanjiService:
    name = "sanji"  # each service sets its own

    storage = Storage()
    clock = ClockProvider()
    authenticate = Authenticator()
    telemetry = Metrics()
    metrics_on_own_port = MetricsServer()
    tracing = Tracing()
    retention = Retention()

    @retention_timer
    def prune_retained(self):
        """Delete published outbox rows, processed-message records and the service's own expired rows
        (``shared.retention``; ``SANJI_RETENTION_*``), in short batches."""
        return self.retention.run(self.clock)

    @http("GET", "/health")
    def health(self, request):
        """Readiness, under its historical name (Docker HEALTHCHECK, compose): as /health/ready."""
        return json_response(*self.storage.health())

    @http("GET", "/health/ready")
    def ready(self, request):
        """200 when the broker and the database answer and the migrations are applied, 503 otherwise:
        the readiness probe (a pod not ready gets no traffic, and is not restarted)."""
        return json_response(*self.storage.health())

    @http("GET", "/health/live")
    def live(self, request):
        """200 while the process serves: the liveness probe. Dependencies are not checked, so a broker or
        database outage does not restart every pod; a container that dies makes the process exit
        (``shared.broker_faults``), and the web entrypoint is the first thing it stops."""
        return json_response(200, {"status": "alive", "service": self.name})

    @http("GET", "/metrics")
    def metrics(self, request):
        """Prometheus text format: this container's handlers, relay, outbox and (routing) items.

        With ``SANJI_METRICS_PORT`` set, /metrics is served on that port only, and this one answers 404."""
        if self.metrics_on_own_port:
            return Response("not found: /metrics is served on the metrics port\n", status=404,
                            content_type="text/plain")
        body, content_type = self.telemetry.exposition()
        return Response(body, content_type=content_type)
