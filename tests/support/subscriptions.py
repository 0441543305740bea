"""Shared by the subscriptions service's integration tests: the service on the scoped bus, item events placed in
time and space as routing publishes them, a recording webhook receiver, and waiting."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import eventlet
from nameko.testing.utils import find_free_port

from examples import subscription_webhook_receiver
from shared.clock import new_id
from shared.events import CloudEvent, ItemRoutedV1
from tests.support.bus import publish_raw
from tests.support.routing_harness import at

QIXIA, XUANWU = "320113000000", "320102000000"
MAIGAOQIAO, XINHE = "320113003000", "320113003021"
POLICE = {"Authorization": "Bearer dev-dept-qixia-police"}
HOUSING = {"Authorization": "Bearer dev-dept-qixia-housing"}
STAFF_QIXIA = {"Authorization": "Bearer dev-staff-qixia"}
ASSERTION_KEY = "subscriptions-test-assertion-key-0123456789abcdef"


def start_service(container_factory, make_service_config, scoped_bus, **overrides) -> tuple[str, dict]:
    """The subscriptions service with the production bus users and fast sweeps and retries."""
    from services.subscriptions.service import SubscriptionsService

    port = find_free_port()
    prefix = scoped_bus.desks["dept-qixia-police"].user.removesuffix("dept-qixia-police")
    settings = dict(SANJI_SUBSCRIPTIONS_SWEEP_SECONDS=0.1, SANJI_SUBSCRIPTIONS_RETRY_BASE_SECONDS=0.05,
                    SANJI_SUBSCRIPTIONS_RETRY_CAP_SECONDS=0.3, SANJI_SUBSCRIPTIONS_WEBHOOK_TIMEOUT=2,
                    SANJI_SUBSCRIPTIONS_BROKER_USER_PREFIX=prefix, SANJI_ASSERTION_KEY=ASSERTION_KEY)
    settings.update(overrides)
    config = scoped_bus.service_config(make_service_config, "subscriptions", web_port=port, **settings)
    container = container_factory(SubscriptionsService, config)
    container.start()
    return f"http://127.0.0.1:{port}", config


def item_event(department: str, *, district: str = QIXIA, unit: str = MAIGAOQIAO, level: str = "street",
               case_id: str | None = None, time: datetime | None = None) -> tuple[str, str, str]:
    """(body, routing key, event id) of an item.routed event as routing publishes it, at ``time``."""
    start = time or at(2026, 12, 1, 9, 0)
    community = XINHE if district == QIXIA else "320102002001"
    payload = ItemRoutedV1(item_id=new_id(), case_id=case_id or new_id(), case_number="SJ-1",
                           matter_code="residence-permit", department_code=department, level=level, unit_code=unit,
                           district_code=district, community_code=community, status="queued", occurred_at=start,
                           legal_deadline=start + timedelta(days=20), promised_deadline=start + timedelta(days=10),
                           deadline_provisional=False, catalogue_version="v")
    event = CloudEvent.wrap(payload, source="/sanji/routing", time=start)
    return event.model_dump_json(), payload.routing_key(), event.id


def publish(scoped_bus, *events) -> None:
    for body, key, _ in events:
        publish_raw(scoped_bus.service_uri("routing"), body, key, declare=False)


def wait_until(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        eventlet.sleep(0.05)
    return condition()


@dataclass
class RecordingReceiver:
    """The example receiver (verify, dedupe on webhook-id, handle), recording every request's answer and id, and
    every event handled; ``down`` makes the department's system fail (500)."""

    handled: list = field(default_factory=list)
    answers: list = field(default_factory=list)       # (status, webhook-id), in arrival order
    down: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        outer = self

        class Recording(subscription_webhook_receiver.Receiver):
            def receive(self, headers, body):
                status = super().receive(headers, body)
                outer.answers.append((status, {k.lower(): v for k, v in headers.items()}.get("webhook-id")))
                return status

        def on_event(event):
            if self.down.is_set():
                raise RuntimeError("the department's system is down")
            self.handled.append(event)

        self.receiver = Recording([], on_event)
        self.port = find_free_port()
        self.server = subscription_webhook_receiver.serve(self.receiver, port=self.port)
        self.thread = eventlet.spawn(self.server.serve_forever)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sanji"

    def trust(self, *secrets: str) -> None:
        from standardwebhooks import Webhook

        self.receiver.webhooks = [Webhook(secret) for secret in secrets]

    def close(self) -> None:
        self.server.shutdown()
        self.thread.kill()
