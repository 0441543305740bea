"""nameko's ``@http`` entrypoint, with Nagle's algorithm off on every accepted connection, timed and traced.

eventlet's WSGI server writes a response in several ``send`` calls. With Nagle's algorithm on, the last
partial segment of a body of a few tens of kilobytes waits for the client's delayed ACK (40 ms on Linux):
measured on routing's ``GET /v1/items``, 5 ms for 8 KB and 53 ms for 20 KB, every time. The console calls
these APIs on every page, so the wait landed on people. TCP_NODELAY sends each write at once.

Every request to a route is counted and timed by its route template and status
(``sanji_http_requests_total``, ``sanji_http_request_duration_seconds``: ``shared.metrics``), and, with
tracing on, runs inside a SERVER span (``shared.tracing``).

Every ``@http`` of a container must come from here: nameko shares one web server per container per server
class, and two classes would both try to listen on the port.
"""

from __future__ import annotations

import socket
import time

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer

from shared import tracing
from shared.metrics import for_container

# Where handle_request leaves the SERVER span's context for context_data_from_headers to hand to the worker.
_WORKER_TRACE = "sanji.worker_trace"


class NoDelayWebServer(WebServer):
    def context_data_from_headers(self, request):
        return {**super().context_data_from_headers(request), **request.environ.get(_WORKER_TRACE, {})}

    def process_request(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client has gone already: the request fails as it would anyway
            pass
        return super().process_request(sock, address)


class NoDelayHttpRequestHandler(HttpRequestHandler):
    server = NoDelayWebServer()

    def setup(self):
        super().setup()
        self.metrics = for_container(self.container)

    def handle_request(self, request):
        """nameko's handle_request, timed and run inside a SERVER span (its context reaches the worker through
        NoDelayWebServer.context_data_from_headers)."""
        started = time.perf_counter()
        span = tracing.start_span(
            self.metrics.service, f"{request.method} {self.url}", "server",
            carrier=tracing.trace_context_of(request.headers),
            attributes={"http.request.method": request.method, "http.route": self.url})
        request.environ[_WORKER_TRACE] = tracing.worker_context(span)
        response = super().handle_request(request)
        status = response.status_code
        self.metrics.observe_http(self.url, request.method, status, time.perf_counter() - started)
        tracing.end_span(span, error=f"HTTP {status}" if status >= 500 else None,
                         attributes={"http.response.status_code": status})
        return response


http = NoDelayHttpRequestHandler.decorator
