"""The console's calls to the other services carry the page's W3C trace context when tracing is on, also
from the greenthreads the desk spawns, so that an API's span is a child of the page's; none when it is off."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import eventlet
import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.console.apis import ApiClient
from services.console.settings import ConsoleSettings
from shared import tracing
from shared.config import development_assertion_key


@pytest.fixture
def api():
    seen: list[dict] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append({name.lower(): value for name, value in self.headers.items()})
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = ConsoleSettings.from_config({"SANJI_ASSERTION_KEY": development_assertion_key(),
                                            "SANJI_CONSOLE_ROUTING_URL": f"http://127.0.0.1:{server.server_port}"})
    session = requests.Session()
    session.trust_env = False
    yield ApiClient(session, settings), seen
    server.shutdown()


def test_calls_carry_the_pages_trace_context_even_from_another_greenthread(api):
    client, seen = api
    tracing.enable(InMemorySpanExporter(), simple=True)
    try:
        page = tracing.start_span("console", "GET /supervisor", "server")
        with trace.use_span(page):
            client.items("token")
            client.carry_trace()
            eventlet.spawn(client.items, "token").wait()  # a new greenthread starts with an empty context
        expected = tracing.carrier_of(page)["traceparent"]
        tracing.end_span(page)
    finally:
        tracing.disable()
    assert [headers.get("traceparent") for headers in seen] == [expected, expected]


def test_no_trace_header_while_tracing_is_off(api):
    client, seen = api
    client.carry_trace()
    client.items("token")
    assert "traceparent" not in seen[0] and seen[0]["authorization"] == "Bearer token"
