"""The subscriptions service's nameko dependency: its settings, the known event types, the broker's streams, the
webhook caller, the in-memory subscriptions, and the two delivery loops (streams, webhooks), each a managed
thread that a matched event wakes at once and that otherwise runs every ``SANJI_SUBSCRIPTIONS_SWEEP_SECONDS``.

The loops run in every replica: the row locks and leases (``delivery``) make that safe.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from datetime import timedelta

import eventlet
import structlog
from nameko.extensions import DependencyProvider

from services.subscriptions import delivery, replay
from services.subscriptions.adapters.streams import Streams
from services.subscriptions.adapters.webhooks import WebhookCaller
from services.subscriptions.mandate import EventTypes
from services.subscriptions.matching import ActiveSubscriptions
from services.subscriptions.metrics import DeliveryCounters
from services.subscriptions.registry import Registry
from services.subscriptions.settings import SubscriptionsVariables
from services.subscriptions.webhook_urls import system_resolver
from shared.catalogue import load_catalogue
from shared.events import PAYLOAD_TYPES
from shared.metrics import for_container
from shared.nameko_ext import ClockProvider, Storage

log = structlog.get_logger(__name__)

# At most this many batches of webhook jobs wait in memory; beyond, matched deliveries are written for the sweep.
HAND_OFF_LIMIT_BATCHES = 5


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
        self.amqp_uri, self.amqp_ssl = config["AMQP_URI"], config.get("AMQP_SSL")
        # How far back a replay may start: the event log's retention (shared.event_log, SANJI_EVENT_LOG_MAX_AGE).
        self.log_retention = replay.retention_of(config.get("SANJI_EVENT_LOG_MAX_AGE") or "30D")
        self.counters = DeliveryCounters(for_container(self.container).registry)
        self.active = ActiveSubscriptions()
        self.policy = self.settings.retry_policy()
        self.rng = random.SystemRandom()
        self._wake_streams, self._wake_webhooks = threading.Event(), threading.Event()
        self._wake_replays = threading.Event()
        # Webhook deliveries the consumer claimed as it wrote them, waiting to be sent (matching.py, "Hand-off").
        self._handed: deque = deque()
        self.lease = timedelta(seconds=self.settings.lease_seconds)
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
                identifier="subscription-webhooks"),
            # A second sender of handed-over jobs only (no claims, so no two senders ever claim the same rows, even
            # on SQLite, which has no SKIP LOCKED): one sends while the other waits for the database.
            self.container.spawn_managed_thread(
                lambda: self._loop("webhooks-handed", self._wake_webhooks,
                                   lambda: self.sweep_webhooks(claim=False)),
                identifier="subscription-webhooks-handed"),
            self.container.spawn_managed_thread(
                lambda: self._loop("replays", self._wake_replays, self.run_replays, full=1),
                identifier="subscription-replays")]

    def stop(self):
        self._stopping.set()
        self.wake()
        for thread in self._threads:
            thread.wait()
        self._release_handed()

    def _release_handed(self) -> None:
        """Jobs handed over but not sent: due again now, for the sweep of any replica (else they wait out their
        lease). Best effort: when the database is gone too, the lease lapses anyway."""
        jobs = list(self._handed)
        self._handed.clear()
        if jobs:
            try:
                delivery.release_claims(self._unit_of_work, jobs, now=self.clock.now())
            except Exception:  # noqa: BLE001 - stopping; the leases lapse on their own
                log.warning("could not release handed-over webhook deliveries; they go out when their lease lapses",
                            deliveries=len(jobs), exc_info=True)

    def lease_for_hand_off(self) -> timedelta | None:
        """A lease when the sender can take more jobs in memory; None: write them pending, for the sweep."""
        return self.lease if len(self._handed) < HAND_OFF_LIMIT_BATCHES * self.settings.batch_size else None

    def hand_off(self, jobs) -> None:
        self._handed.extend(jobs)
        self._wake_webhooks.set()

    def kill(self):
        self._stopping.set()
        self.wake()

    def wake(self, *, streams: bool = True, webhooks: bool = True) -> None:
        if streams:
            self._wake_streams.set()
        if webhooks:
            self._wake_webhooks.set()

    def wake_replays(self) -> None:
        self._wake_replays.set()

    def read_log(self, **selection):
        """``shared.event_log.read_event_log`` on a connection of this service's broker user (the log's reader)."""
        from kombu import Connection

        from shared.event_log import read_event_log

        return read_event_log(Connection(self.amqp_uri, ssl=self.amqp_ssl, connect_timeout=5), **selection)

    def run_replays(self) -> int:
        """Run one due replay, if any, to its end; 1 if one ran (so the loop looks for another at once)."""
        lease = timedelta(seconds=self.settings.lease_seconds)
        claimed = replay.claim_replay(self._unit_of_work, now=self.clock.now(), lease=lease)
        if claimed is None:
            return 0
        outcome = replay.run_replay(claimed, unit_of_work_factory=self._unit_of_work, read_log=self.read_log,
                                    now=self.clock.now, lease=lease, batch_size=self.settings.batch_size,
                                    on_queued=self.wake)
        log.info("replay ran", replay_id=claimed.id, subscription_id=claimed.subscription_id, outcome=outcome)
        return 1

    def sweep_streams(self) -> int:
        published = delivery.publish_streams(self._unit_of_work, streams=self.streams, now=self.clock.now,
                                             batch_size=self.settings.batch_size)
        if published:
            self.counters.stream_published.inc(published)
        return published

    def sweep_webhooks(self, claim: bool = True) -> int:
        handed = [self._handed.popleft() for _ in range(min(len(self._handed), self.settings.batch_size))]
        # Paused or deleted since the event was matched: the row waits (its lease lapses, then the resume).
        sending = self.active.sending_now()
        counts = delivery.send_webhooks(
            self._unit_of_work, caller=self.caller, policy=self.policy, rng=self.rng, now=self.clock.now,
            batch_size=self.settings.batch_size, lease=self.lease,
            handed=[job for job in handed if job.subscription_id in sending], claim=claim,
            run_all=lambda function, jobs: eventlet.GreenPool(self.settings.concurrency).imap(function, jobs))
        self.counters.webhooks(counts)
        return sum(counts[name] for name in ("delivered", "failed"))

    def _loop(self, name: str, wake: threading.Event, sweep, full: int | None = None) -> None:
        full = full or self.settings.batch_size
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
            if done < full:   # a full batch: more may be waiting, go again at once
                wake.wait(self.settings.sweep_seconds)
                wake.clear()
        self.streams.reset()

    def get_dependency(self, worker_ctx):
        return self
