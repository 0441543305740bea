"""OpenTelemetry tracing: off unless configured, one trace per case across the services.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or
``SANJI_TRACING=otlp``; ``SANJI_TRACING=off`` (or ``OTEL_SDK_DISABLED=true``) keeps it off whatever else is
set. Off, nothing is created: no provider, no exporter, no span, no header, no CloudEvents attribute, so the
cost is one ``if``. On, spans go to the OTLP/HTTP exporter in batches (the exporter reads the standard
``OTEL_EXPORTER_OTLP_*`` variables, the provider ``OTEL_TRACES_SAMPLER``/``_ARG``).

Spans:

- ``SERVER`` per HTTP request (``shared.web``): ``{method} {route template}``, its status; a W3C
  ``traceparent`` request header (the console's calls to the APIs carry one) makes it a child;
- ``CONSUMER`` per handled event (``shared.nameko_ext.EventConsumer``), a child of the ``PRODUCER`` span
  that published it (the relay's AMQP ``traceparent`` header), else of the event's own ``traceparent``;
- ``PRODUCER`` per relay publish (``shared.relay``), a child of the span the event was created in.

An event created inside a span (``UnitOfWork.publish`` in a traced handler) carries that span's context in
its CloudEvents ``traceparent``/``tracestate`` attributes, stored with it in the outbox: the publish and the
consumers, in other services, join the request's trace.

The span is started by the entrypoint (in its own greenthread) and made current in the worker's greenthread
by the ``Tracing`` dependency: the context travels in the worker's context data as a W3C string, never as an
object, so nameko's RPC headers can carry it too. Span attributes name routes, event types, queues and ids,
never a person: no URL path or query, no header, no payload.

Each service has a tracer provider of its own (its ``service.name``), so ``sanji run-all`` reports each
service as itself. Tests call ``enable`` with the SDK's in-memory exporter.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from nameko.extensions import DependencyProvider

CONTEXT_KEY = "sanji.traceparent"  # in a worker's context data: the entrypoint span's W3C traceparent
STATE_KEY = "sanji.tracestate"
ON, OFF = ("otlp", "on", "true", "1"), ("off", "false", "0", "none")

_lock = threading.Lock()
_exporter = None            # a SpanExporter while tracing is on
_simple = False             # export each span at its end (tests) rather than in batches
_providers: dict = {}       # service -> TracerProvider


def wanted(setting: str | None, environ: Mapping[str, str]) -> bool:
    """Whether tracing is on, from ``SANJI_TRACING`` and the standard OpenTelemetry variables."""
    value = (setting or "").strip().lower()
    if value in OFF or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if value in ON:
        return True
    if value:
        raise ValueError(f"SANJI_TRACING={setting!r}: say otlp (on) or off")
    return any(environ.get(name, "").strip()
               for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(setting: str | None, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on (OTLP over HTTP) when the settings say so; never turns it off. Returns whether on."""
    if _exporter is None and wanted(setting, os.environ if environ is None else environ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        enable(OTLPSpanExporter())
    return enabled()


def enable(exporter, *, simple: bool = False) -> None:
    """Export every service's spans to ``exporter`` (``simple``: each at its end, for tests)."""
    global _exporter, _simple
    disable()
    with _lock:
        _exporter, _simple = exporter, simple


def disable() -> None:
    global _exporter
    with _lock:
        providers = list(_providers.values())
        _providers.clear()
        _exporter = None
    for provider in providers:
        provider.shutdown()


def enabled() -> bool:
    return _exporter is not None


def tracer(service: str):
    """The service's tracer, or None while tracing is off."""
    if _exporter is None:
        return None
    with _lock:
        if _exporter is None:
            return None
        provider = _providers.get(service)
        if provider is None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

            provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                                "service.namespace": "sanji"}),
                                      shutdown_on_exit=not _simple)
            provider.add_span_processor(SimpleSpanProcessor(_exporter) if _simple
                                        else BatchSpanProcessor(_exporter))
            _providers[service] = provider
        return provider.get_tracer("sanji")


def _propagator():
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def start_span(service: str, name: str, kind: str, carrier: Mapping[str, str] | None = None,
               attributes: Mapping | None = None):
    """A started span (not made current), a child of the W3C context in ``carrier`` when it has one;
    None while tracing is off. ``kind``: server, consumer or producer."""
    tracer_ = tracer(service)
    if tracer_ is None:
        return None
    from opentelemetry.trace import SpanKind

    parent = _propagator().extract(dict(carrier)) if carrier else None
    return tracer_.start_span(name, context=parent, kind=SpanKind[kind.upper()], attributes=dict(attributes or {}))


def end_span(span, *, error: str | None = None, attributes: Mapping | None = None) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if attributes:
        span.set_attributes(dict(attributes))
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


def carrier_of(span) -> dict[str, str]:
    """The W3C headers (``traceparent``, and ``tracestate`` when there is one) naming ``span`` as parent."""
    if span is None:
        return {}
    from opentelemetry import trace

    carrier: dict[str, str] = {}
    _propagator().inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def worker_context(span) -> dict[str, str]:
    """What an entrypoint adds to its worker's context data so that the worker runs inside ``span``."""
    carrier = carrier_of(span)
    data = {CONTEXT_KEY: carrier["traceparent"]} if "traceparent" in carrier else {}
    if "tracestate" in carrier:
        data[STATE_KEY] = carrier["tracestate"]
    return data


def current_trace_context() -> dict[str, str]:
    """The current span's W3C context as CloudEvents attributes (``traceparent``, ``tracestate``): what an
    event created now carries. Empty while tracing is off, or outside any span."""
    if _exporter is None:
        return {}
    from opentelemetry import trace

    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator().inject(carrier)
    return {name: carrier[name] for name in ("traceparent", "tracestate") if carrier.get(name)}


def trace_context_of(carrier: Mapping | None) -> dict[str, str]:
    """The W3C fields of a carrier (AMQP headers, a CloudEvent's attributes), as strings."""
    if not carrier:
        return {}
    return {name: str(carrier[name]) for name in ("traceparent", "tracestate") if carrier.get(name)}


class Tracing(DependencyProvider):
    """Turns tracing on at start when configured (``SANJI_TRACING``, ``OTEL_EXPORTER_OTLP_ENDPOINT``), and
    runs each worker inside its entrypoint's span: the span is made current in the worker's greenthread, so
    the events it creates carry the trace."""

    def setup(self):
        configure(self.container.config.get("SANJI_TRACING"))
        self._tokens: dict = {}

    def worker_setup(self, worker_ctx):
        traceparent = worker_ctx.data.get(CONTEXT_KEY) if _exporter is not None else None
        if not traceparent:
            return
        from opentelemetry import context

        carrier = {"traceparent": traceparent}
        if worker_ctx.data.get(STATE_KEY):
            carrier["tracestate"] = worker_ctx.data[STATE_KEY]
        self._tokens[worker_ctx] = context.attach(_propagator().extract(carrier))

    def worker_teardown(self, worker_ctx):
        token = self._tokens.pop(worker_ctx, None)
        if token is not None:
            from opentelemetry import context

            context.detach(token)
