#!/usr/bin/env python3
"""A department's webhook receiver for a Sanji subscription: verify, dedupe, acknowledge.

Create a webhook subscription (README, "How a department follows its items"); keep the ``secret`` the answer
shows once; then run this where the URL points:

    .venv/bin/python examples/subscription_webhook_receiver.py --port 9100 --secret whsec_...

Each request carries one CloudEvent (``Content-Type: application/cloudevents+json``) and the Standard Webhooks
headers ``webhook-id`` (the CloudEvent id: the same on every retry), ``webhook-timestamp`` and
``webhook-signature``. The receiver:

1. verifies the signature over the raw body with the ``standardwebhooks`` library (which also refuses a
   timestamp more than five minutes from its clock): 401 otherwise, and Sanji retries;
2. answers 200 at once to an id it has already handled (delivery is at least once) without handling it again;
3. handles the event, then answers 2xx. Anything else (or no answer within 10 s) is retried with backoff for a
   day; an endpoint that fails every attempt for a day is disabled until its owner re-enables it.

During a secret rotation Sanji signs with both secrets: give both (``--secret NEW --secret OLD``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1024 * 1024


class Receiver:
    """The receiver's logic, apart from HTTP: ``receive(headers, body) -> status``."""

    def __init__(self, secrets: list[str], on_event: Callable[[dict], None]):
        self.webhooks = [Webhook(secret) for secret in secrets]
        self.on_event = on_event
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def verified(self, headers: dict, body: bytes) -> bool:
        for webhook in self.webhooks:
            try:
                webhook.verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def receive(self, headers: dict, body: bytes) -> int:
        headers = {key.lower(): value for key, value in headers.items()}
        if not self.verified(headers, body):
            return 401
        message_id = headers["webhook-id"]
        with self._lock:
            if message_id in self.seen:
                return 200          # a retry of what we already have: acknowledge, do nothing
        self.on_event(json.loads(body))   # raises: 500, and Sanji tries again later
        with self._lock:
            self.seen.add(message_id)
        return 200


def serve(receiver: Receiver, host: str = "127.0.0.1", port: int = 9100) -> ThreadingHTTPServer:
    """An HTTP server handing every POST to the receiver (``serve_forever()`` to run it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            try:
                status = receiver.receive(dict(self.headers.items()), body)
            except Exception:  # noqa: BLE001 - our own failure: Sanji will retry
                status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002 - quiet
            return

    return ThreadingHTTPServer((host, port), Handler)


def print_event(event: dict) -> None:
    data = event.get("data") or {}
    print(json.dumps({"id": event.get("id"), "type": event.get("type"), "case": data.get("case_number"),
                      "matter": data.get("matter_code"), "unit": data.get("unit_code"),
                      "status": data.get("status")}, ensure_ascii=False), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--secret", action="append", required=True, help="whsec_…; repeat during a rotation")
    args = parser.parse_args()
    server = serve(Receiver(args.secret, print_event), args.host, args.port)
    print(f"receiving on http://{args.host}:{args.port}/", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
