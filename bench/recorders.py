"""What reached the outside world during a chaos run, recorded by the outside world.

The chaos checker does not read the services' own tables to decide what was delivered: it reads what
these recorders received.

- ``HttpRecorder``: a real HTTP server on 127.0.0.1 that is the SMS gateway (``POST /sms``, the generic
  gateway's ``{"to", "text", "client_ref", "template_code"}``) and a department's webhook endpoint
  (``POST /webhook``, verified with the ``standardwebhooks`` package as docs/notifications.md tells a
  department to; a request that fails verification is refused with 401 and counted).
- ``SmtpRecorder``: a real SMTP server (aiosmtpd) that keeps each message's recipient, subject and
  ``X-Sanji-Delivery-Id``.
- ``DepartmentSubscriber``: a department system on the bus, with a durable queue of its own bound to every
  event (``#``), declared before any service starts, so nothing published is missed; it records every
  delivery (a redelivery too, by event id) and acknowledges after recording.

Every recording is in memory, behind a lock, with the wall-clock time it arrived (for the recovery times).
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Arrival:
    at: float
    channel: str          # sms, email, webhook
    to: str               # phone, address, or the webhook-id's receiver
    delivery_id: str      # client_ref / X-Sanji-Delivery-Id / webhook-id
    kind: str | None      # the SMS template code, the webhook's kind; e-mail: None
    subject: str = ""
    document: dict | None = None
    attempt: int | None = None  # which attempt: X-Sanji-Attempt, the SMS document's "attempt", a webhook's timestamp


def _attempt(value) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


class HttpRecorder:
    def __init__(self, webhook_secret: str):
        self.arrivals: list[Arrival] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._webhook = Webhook(webhook_secret)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = recorder._receive(self.path, dict(self.headers.items()), body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="http-recorder").start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _receive(self, path: str, headers: dict, body: bytes) -> tuple[int, dict]:
        now = time.time()
        if path == "/sms":
            document = json.loads(body)
            arrival = Arrival(now, "sms", document["to"], document["client_ref"], document.get("template_code"),
                              attempt=document.get("attempt"))
        elif path == "/webhook":
            try:
                self._webhook.verify(body, headers)
            except WebhookVerificationError as exc:
                with self._lock:
                    self.refused.append(str(exc))
                return 401, {"error": "bad_signature"}
            lowered = {key.lower(): value for key, value in headers.items()}
            document = json.loads(body)
            arrival = Arrival(now, "webhook", "department", lowered["webhook-id"], document.get("kind"),
                              document.get("subject", ""), document,
                              # a retry is the same webhook-id with a new webhook-timestamp (Standard Webhooks);
                              # a claim lapses after a minute at least, so a real retry never shares the second
                              _attempt(lowered.get("webhook-timestamp")))
        else:
            return 404, {"error": "not_found"}
        with self._lock:
            self.arrivals.append(arrival)
        return 200, {"message_id": f"recorded-{len(self.arrivals)}"}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SmtpRecorder:
    """aiosmtpd's Controller runs its asyncio loop in a thread of its own."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                message = email.message_from_bytes(envelope.original_content or envelope.content,
                                                   policy=email.policy.default)
                arrival = Arrival(time.time(), "email", ",".join(envelope.rcpt_tos),
                                  str(message.get("X-Sanji-Delivery-Id", "")), None, str(message.get("Subject", "")),
                                  attempt=_attempt(message.get("X-Sanji-Attempt")))
                with recorder._lock:
                    recorder.arrivals.append(arrival)
                return "250 Message accepted for delivery"

        from bench.private_infra import free_port

        self.host, self.port = "127.0.0.1", free_port()
        self._controller = Controller(Handler(), hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class EventRecord:
    at: float
    event_id: str
    type: str
    data: dict = field(repr=False)
    redelivered: bool = False
    event_time: str = ""    # the CloudEvent's own time: the services' clock, which the suite may have moved on


class DepartmentSubscriber:
    """Every event on the bus, as a department system sees it (its own durable queue, bound to ``#``)."""

    QUEUE = "chaos.department-subscriber"

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.records: list[EventRecord] = []
        self.reconnects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="department-subscriber")

    def declare(self) -> None:
        from kombu import Connection

        with Connection(self.amqp_uri) as connection:
            self._queue()(connection.channel()).declare()

    def _queue(self):
        from kombu import Queue

        from shared.topology import events_exchange

        return Queue(self.QUEUE, exchange=events_exchange, routing_key="#", durable=True,
                     queue_arguments={"x-queue-type": "quorum"})

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from kombu import Connection, Consumer

        while not self._stop.is_set():
            try:
                with Connection(self.amqp_uri, heartbeat=10, connect_timeout=5) as connection:
                    with Consumer(connection.channel(), queues=[self._queue()], callbacks=[self._on_message],
                                  accept=None, prefetch_count=200):
                        while not self._stop.is_set():
                            try:
                                connection.drain_events(timeout=1)
                            except TimeoutError:
                                connection.heartbeat_check()
            except Exception:  # noqa: BLE001 - the broker restarts during the run: connect again
                self.reconnects += 1
                time.sleep(1)

    def _on_message(self, body, message) -> None:
        raw = message.body
        try:
            document = json.loads(raw if isinstance(raw, str | bytes) else json.dumps(raw))
            record = EventRecord(time.time(), str(document.get("id")), str(document.get("type")),
                                 document.get("data") or {}, bool(message.delivery_info.get("redelivered")),
                                 str(document.get("time") or ""))
        except (ValueError, AttributeError):
            record = EventRecord(time.time(), "", "unparseable", {})
        with self._lock:
            self.records.append(record)
        message.ack()

    def snapshot(self) -> list[EventRecord]:
        with self._lock:
            return list(self.records)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
