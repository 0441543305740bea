"""The subscriptions service's nameko dependency: its settings, the known event types, the broker's streams, the
webhook caller, the in-memory subscriptions, and the two delivery loops (streams, webhooks), each a managed
thread that a matched event wakes at once and that otherwise runs every ``SANJI_SUBSCRIPTIONS_SWEEP_SECONDS``.

The loops run in every replica: the row locks and leases (``delivery``) make that safe.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import eventlet
import structlog
from nameko.extensions import DependencyProvider

from services.subscriptions import delivery
from services.subscriptions.adapters.streams import Streams
from services.subscriptions.adapters.webhooks import WebhookCaller
from services.subscriptions.mandate import EventTypes
from services.subscriptions.matching import ActiveSubscriptions
from services.subscriptions.registry import Registry
from services.subscriptions.settings import SubscriptionsVariables
from services.subscriptions.webhook_urls import system_resolver
from shared.catalogue import load_catalogue
from shared.events import PAYLOAD_TYPES
from shared.nameko_ext import ClockProvider, Storage

log = structlog.get_logger(__name__)


def known_event_types(departments) -> EventTypes:
    return EventTypes(types=frozenset(PAYLOAD_TYPES),
                      with_department=frozenset(name for name, payload in PAYLOAD_TYPES.items()
                                                if "department_code" in payload.model_fields),
                      departments=frozenset(departments))


class Sinks(DependencyProvider):
    """``self.sinks.registry`` (the API's rules), ``.active`` (what events are matched against), ``.wake()``."""

    def setup(self):
        config = self.container.config
        self.settings = SubscriptionsVariables.read(config)
        catalogue = load_catalogue(config["SANJI_CATALOGUE_DIR"])
        self.streams = Streams(config["AMQP_URI"], ssl=config.get("AMQP_SSL"))
        self.caller = WebhookCaller(timeout=self.settings.webhook_timeout, pool_size=self.settings.concurrency)
        self.registry = Registry(
            known=known_event_types(catalogue.departments), streams=self.streams, resolve=system_resolver,
            production=config.get("SANJI_PROFILE") == "production", stream_max_age=self.settings.stream_max_age,
            secret_grace=timedelta(seconds=self.settings.secret_grace_seconds),
            broker_user_prefix=self.settings.broker_user_prefix)
        self.active = ActiveSubscriptions()
        self.policy = self.settings.retry_policy()
        self.rng = random.SystemRandom()
        self._wake_streams, self._wake_webhooks = threading.Event(), threading.Event()
        self._stopping = threading.Event()
        self._threads = []

    def _dependency(self, kind):
        return next(dependency for dependency in self.container.dependencies if isinstance(dependency, kind))

    def start(self):
        storage, clock = self._dependency(Storage), self._dependency(ClockProvider).clock
        self.clock = clock
        from shared.events import source_of
        from shared.outbox import UnitOfWork

        def unit_of_work():
            return UnitOfWork(storage.session_factory, source=source_of(storage.service), clock=clock)

        self._unit_of_work = unit_of_work
        self._threads = [
            self.container.spawn_managed_thread(lambda: self._loop("streams", self._wake_streams, self.sweep_streams),
                                                identifier="subscription-streams"),
            self.container.spawn_managed_thread(
                lambda: self._loop("webhooks", self._wake_webhooks, self.sweep_webhooks),
                identifier="subscription-webhooks")]

    def stop(self):
        self._stopping.set()
        self.wake()
        for thread in self._threads:
            thread.wait()

    def kill(self):
        self._stopping.set()
        self.wake()

    def wake(self) -> None:
        self._wake_streams.set()
        self._wake_webhooks.set()

    def sweep_streams(self) -> int:
        return delivery.publish_streams(self._unit_of_work, streams=self.streams, now=self.clock.now,
                                        batch_size=self.settings.batch_size)

    def sweep_webhooks(self) -> int:
        counts = delivery.send_webhooks(
            self._unit_of_work, caller=self.caller, policy=self.policy, rng=self.rng, now=self.clock.now,
            batch_size=self.settings.batch_size, lease=timedelta(seconds=self.settings.lease_seconds),
            run_all=lambda function, jobs: eventlet.GreenPool(self.settings.concurrency).imap(function, jobs))
        return sum(counts[name] for name in ("delivered", "failed"))

    def _loop(self, name: str, wake: threading.Event, sweep) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                done = sweep()
                failures = 0
            except Exception:  # noqa: BLE001 - the loop must outlive a broker or database outage
                failures += 1
                delay = min(0.2 * 2 ** failures, 10.0)
                log.warning("subscription delivery sweep failed; retrying", sweep=name, retry_in_s=delay,
                            exc_info=True)
                self._stopping.wait(delay)
                continue
            if done < self.settings.batch_size:   # a full batch: more may be waiting, go again at once
                wake.wait(self.settings.sweep_seconds)
                wake.clear()
        self.streams.reset()

    def get_dependency(self, worker_ctx):
        return self
