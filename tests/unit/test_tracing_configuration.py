"""shared.tracing: when it is on, and that off costs nothing (no provider, no span, no event attribute)."""

from __future__ import annotations

import pytest

from shared import tracing

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.monitoring:4318"}


@pytest.mark.parametrize(("setting", "environ", "on"), [
    (None, {}, False),                                                     # the default: off
    (None, ENDPOINT, True),                                                # the standard variable turns it on
    (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
    ("otlp", {}, True),                                                    # on, to the default localhost:4318
    ("off", ENDPOINT, False),                                              # SANJI_TRACING=off wins
    (None, {**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),              # so does the standard kill switch
    ("", {"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
])
def test_when_tracing_is_on(setting, environ, on):
    assert tracing.wanted(setting, environ) is on


def test_a_mistyped_setting_is_refused():
    with pytest.raises(ValueError, match="SANJI_TRACING"):
        tracing.wanted("yes please", {})


def test_off_creates_nothing():
    assert not tracing.enabled()
    assert not tracing.configure(None, {})
    assert tracing.tracer("routing") is None
    assert tracing.start_span("routing", "GET /v1/items", "server") is None
    assert tracing.carrier_of(None) == {} and tracing.worker_context(None) == {}
    assert tracing.current_trace_context() == {}


def test_on_spans_nest_and_events_carry_the_current_span():
    from opentelemetry import context, trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.enable(exporter, simple=True)
    try:
        parent = tracing.start_span("intake", "POST /v1/cases", "server")
        assert tracing.current_trace_context() == {}  # started, not current: nothing outside it carries it
        token = context.attach(trace.set_span_in_context(parent))
        try:
            carried = tracing.current_trace_context()
        finally:
            context.detach(token)
        assert carried == {"traceparent": tracing.carrier_of(parent)["traceparent"]}
        child = tracing.start_span("routing", "process routing.case-submitted", "consumer", carrier=carried)
        tracing.end_span(child, error="PermanentError")
        tracing.end_span(parent, attributes={"http.response.status_code": 201})
        spans = {span.name: span for span in exporter.get_finished_spans()}
        consumer, server = spans["process routing.case-submitted"], spans["POST /v1/cases"]
        assert consumer.parent.span_id == server.context.span_id
        assert consumer.context.trace_id == server.context.trace_id
        assert consumer.resource.attributes["service.name"] == "routing"
        assert not consumer.status.is_ok and server.attributes["http.response.status_code"] == 201
    finally:
        tracing.disable()
    assert tracing.tracer("routing") is None
