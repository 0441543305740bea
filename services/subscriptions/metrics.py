"""The subscriptions service's own metrics (on its /metrics, beside the kernel's):

Counted in the process, where the work happens (``dependencies.Sinks``), for rates:

- ``sanji_subscriptions_webhook_results{outcome}``: webhook attempts, by outcome: ``delivered`` (2xx),
  ``failed`` (retried), ``given_up``, and endpoints ``disabled``;
- ``sanji_subscriptions_stream_published``: deliveries published into streams with a broker confirm.

Read from the database at scrape time (cached ``SANJI_DB_PROBE_SECONDS``; the same on every replica, so aggregate
with ``max``):

- ``sanji_subscriptions_deliveries{sink,status}``: delivery rows by sink and status;
- ``sanji_subscriptions_backlog{sink}``: deliveries due now and not handed over (pending or retrying, of
  active subscriptions), and ``sanji_subscriptions_backlog_oldest_seconds{sink}``: how long the oldest has been
  due: the two numbers that say whether delivery keeps up;
- ``sanji_subscriptions_replays{status}``, and ``sanji_subscriptions_replay_events{kind}`` (``read``,
  ``matched``) summed over the replays running now: replay progress.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from shared.metrics import collector_up

WEBHOOK_OUTCOMES = ("delivered", "failed", "given_up", "disabled")
SINKS = ("queue", "webhook")
STATUSES = ("pending", "retrying", "delivered", "given_up")
REPLAY_STATUSES = ("queued", "running", "done", "failed")


class DeliveryCounters:
    """The in-process counters, in the container's registry."""

    def __init__(self, registry):
        self.webhook_results = Counter("sanji_subscriptions_webhook_results", "Webhook attempts by outcome "
                                       "(delivered, failed, given_up) and endpoints disabled", ["outcome"],
                                       registry=registry)
        self.stream_published = Counter("sanji_subscriptions_stream_published", "Deliveries published into "
                                        "subscription streams with a broker confirm", registry=registry)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_results.labels(outcome)

    def webhooks(self, counts: dict[str, int]) -> None:
        for outcome in WEBHOOK_OUTCOMES:
            if counts.get(outcome):
                self.webhook_results.labels(outcome).inc(counts[outcome])


class SubscriptionsCollector:
    def __init__(self, engine: Engine):
        self._engine = engine

    def describe(self):
        return []

    def collect(self):
        from services.subscriptions.adapters.orm import Delivery, Replay, Subscription

        now = datetime.now(UTC)
        due = (select(Subscription.sink_type, func.count(), func.min(Delivery.next_attempt_at))
               .join(Subscription, Subscription.id == Delivery.subscription_id)
               .where(Delivery.status.in_(("pending", "retrying")), Delivery.next_attempt_at <= now,
                      Subscription.status == "active").group_by(Subscription.sink_type))
        try:
            with self._engine.connect() as connection:
                by_status = connection.execute(
                    select(Subscription.sink_type, Delivery.status, func.count())
                    .join(Subscription, Subscription.id == Delivery.subscription_id)
                    .group_by(Subscription.sink_type, Delivery.status)).all()
                backlog = {sink: (count, oldest) for sink, count, oldest in connection.execute(due).all()}
                replays = dict(connection.execute(select(Replay.status, func.count()).group_by(Replay.status)).all())
                read, matched = connection.execute(select(
                    func.coalesce(func.sum(Replay.events_read), 0), func.coalesce(func.sum(Replay.events_matched), 0))
                    .where(Replay.status == "running")).one()
        except Exception:  # noqa: BLE001 - one failing collector must not fail the whole scrape
            yield collector_up("subscriptions", False)
            return
        deliveries = GaugeMetricFamily("sanji_subscriptions_deliveries", "Delivery rows by sink and status",
                                       labels=["sink", "status"])
        counts = {(sink, status): count for sink, status, count in by_status}
        for sink in SINKS:
            for status in STATUSES:
                deliveries.add_metric([sink, status], counts.get((sink, status), 0))
        yield deliveries
        waiting = GaugeMetricFamily("sanji_subscriptions_backlog", "Deliveries due now and not handed over "
                                    "(pending or retrying, of active subscriptions)", labels=["sink"])
        oldest = GaugeMetricFamily("sanji_subscriptions_backlog_oldest_seconds", "How long the oldest due "
                                   "delivery has been due", labels=["sink"])
        for sink in SINKS:
            count, since = backlog.get(sink, (0, None))
            waiting.add_metric([sink], count)
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            oldest.add_metric([sink], max(0.0, (now - since).total_seconds()) if since is not None else 0.0)
        yield waiting
        yield oldest
        by_replay_status = GaugeMetricFamily("sanji_subscriptions_replays", "Replays by status", labels=["status"])
        for status in REPLAY_STATUSES:
            by_replay_status.add_metric([status], replays.get(status, 0))
        yield by_replay_status
        progress = GaugeMetricFamily("sanji_subscriptions_replay_events", "Events read from the log and matched "
                                     "by the replays running now", labels=["kind"])
        progress.add_metric(["read"], int(read))
        progress.add_metric(["matched"], int(matched))
        yield progress
