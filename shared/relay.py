"""The outbox relay: publishes committed events to RabbitMQ with publisher confirms.

At least once: a row is marked published only after the broker confirmed it, in the same transaction
that selected it. A crash between the confirm and the commit publishes the row again later, and
consumers dedupe on the event id. On PostgreSQL several replicas relay at once without publishing the
same row concurrently (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import threading

import structlog
from kombu import Connection, Producer
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from shared.clock import Clock
from shared.db import is_postgres
from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.health import LinkState
from shared.outbox import OutboxMessage
from shared.topology import ensure_topology, events_exchange

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(self, session_factory: sessionmaker, *, amqp_uri: str, source: str, clock: Clock,
                 poll_seconds: float = 0.5, batch_size: int = 200, metrics=None):
        self._session_factory = session_factory
        self._amqp_uri = amqp_uri
        self._source = source
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        # shared.metrics.ServiceMetrics (published/failed counters), when the service has one.
        self._metrics = metrics
        # Opened lazily, so "never used" is healthy; down after a failed publish until one gets through.
        self.broker_link = LinkState("relay", required=False)

    def wake(self) -> None:
        """Called after a local commit with events, so they go out now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run_forever(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                published = self.publish_pending()
                if self.broker_link.up is False:  # another replica may have sent our rows: check anyway
                    self._ensure_producer()
                    self.broker_link.mark_up()
                failures = 0
            except Exception:  # noqa: BLE001 - the relay must outlive any broker or database outage
                failures += 1
                if self._metrics is not None:
                    self._metrics.relay_failures.inc()
                delay = min(0.2 * 2 ** failures, 10.0)
                log.warning("outbox relay failed; retrying", source=self._source, retry_in_s=delay,
                            exc_info=True)
                self._reset_connection()
                self._stopping.wait(delay)
                continue
            if published < self._batch_size:
                self._wake.wait(self._poll_seconds)
                self._wake.clear()
        self.publish_pending_quietly()
        self._reset_connection()

    def publish_pending_quietly(self) -> None:
        """A last flush on shutdown, so a graceful stop leaves nothing behind that it could send."""
        try:
            self.publish_pending()
        except Exception:  # noqa: BLE001
            log.warning("outbox relay could not flush on shutdown; rows stay for the next start",
                        source=self._source, exc_info=True)

    def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        with self._session_factory() as session, session.begin():
            query = (select(OutboxMessage)
                     .where(OutboxMessage.source == self._source, OutboxMessage.published_at.is_(None))
                     .order_by(OutboxMessage.seq)
                     .limit(self._batch_size))
            if is_postgres(session.get_bind()):
                query = query.with_for_update(skip_locked=True)
            rows = session.scalars(query).all()
            if not rows:
                return 0
            try:
                producer = self._ensure_producer()
                for row in rows:
                    # confirm_publish makes each publish wait for the broker's ack (raises on nack).
                    producer.publish(
                        row.body,
                        routing_key=row.routing_key,
                        content_type=CLOUDEVENTS_CONTENT_TYPE,
                        content_encoding="utf-8",
                        delivery_mode=2,
                        message_id=row.event_id,
                        type=row.event_type,
                        # The sender, as RabbitMQ checks it (it refuses a user_id that is not the
                        # connection's user): consumers trust an event only from its owner.
                        user_id=self._connection.userid or "guest",
                        retry=False,
                    )
            except Exception as exc:
                self.broker_link.mark_down(exc)
                raise
            self.broker_link.mark_up()
            if self._metrics is not None:
                self._metrics.relay_published.inc(len(rows))
            session.execute(update(OutboxMessage)
                            .where(OutboxMessage.seq.in_([row.seq for row in rows]))
                            .values(published_at=self._clock.now()))
            log.debug("outbox published", source=self._source, count=len(rows))
            return len(rows)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            # No heartbeats: nothing here would service them between batches. A dead link surfaces on the
            # next publish, which fails the batch, and the connection is rebuilt.
            connection = Connection(self._amqp_uri, transport_options={"confirm_publish": True}, heartbeat=0)
            connection.ensure_connection(max_retries=1)
            ensure_topology(connection)
            self._connection = connection
            # No exchange declaration on publish: a service's broker user may publish, not declare.
            self._producer = Producer(connection.channel(), exchange=events_exchange, auto_declare=False)
        return self._producer

    def _reset_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # noqa: BLE001 - it is already broken; we only want it gone
                pass
        self._connection = None
        self._producer = None
