"""The webhook caller (services/subscriptions/adapters/webhooks.py, urllib3) against a local fake receiver: what it
reports for a 2xx, an error status, a redirect (not followed), no answer in time and no listener; the request it
sends is a signed structured CloudEvent; connections are kept alive."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from services.subscriptions.adapters.webhooks import WebhookCaller
from shared.webhooks import new_webhook_secret

SECRET = new_webhook_secret()


@pytest.fixture
def receiver():
    seen = []
    connections = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, dict(self.headers.items()), body))
            connections.add(self.client_address)
            if self.path == "/slow":
                time.sleep(1.5)
            status = {"/ok": 200, "/fail": 500, "/moved": 302, "/slow": 200}[self.path]
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/ok")
            answer = b"the receiver's own words, never stored"
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, connections
    server.shutdown()


def test_outcomes_of_a_call(receiver):
    base, seen, connections = receiver
    caller = WebhookCaller(timeout=1.0)
    body = '{"id": "e1", "type": "cn.sanji.item.routed.v1"}'
    first = caller.call(f"{base}/ok", "e1", body, (SECRET,))
    second = caller.call(f"{base}/ok", "e1", body, (SECRET,))
    assert (first.delivered, first.status_code, first.error) == (True, 200, None)
    assert second.delivered and len(connections) == 1   # the same keep-alive connection
    path, headers, sent = seen[0]
    assert sent == body.encode() and headers["Content-Type"].startswith("application/cloudevents+json")
    assert headers["webhook-id"] == "e1"
    Webhook(SECRET).verify(sent, {k.lower(): v for k, v in headers.items()})   # raises if the signature is wrong

    failed = caller.call(f"{base}/fail", "e2", body, (SECRET,))
    assert (failed.delivered, failed.status_code, failed.error) == (False, 500, "HTTP 500")
    moved = caller.call(f"{base}/moved", "e3", body, (SECRET,))
    assert (moved.delivered, moved.status_code, moved.error) == (False, 302, "HTTP 302")
    assert [p for p, _, _ in seen].count("/ok") == 2        # the redirect was not followed
    slow = caller.call(f"{base}/slow", "e4", body, (SECRET,))
    assert (slow.delivered, slow.status_code, slow.error) == (False, None, "no answer within 1s")
    assert 900 <= slow.duration_ms < 1500


def test_no_listener_is_a_connection_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]   # closed when the block ends: nothing listens there
    result = WebhookCaller(timeout=1.0).call(f"http://127.0.0.1:{port}/hook", "e5", "{}", (SECRET,))
    assert not result.delivered and result.status_code is None
    assert result.error.startswith("connection failed (")
