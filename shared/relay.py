"""The outbox relay: publishes committed events to RabbitMQ with publisher confirms.

At least once: a row is marked published only after the broker confirmed it, in the same transaction
that selected it. A batch is published in one go and its confirms then awaited together (a window of
publishes per round trip, not one). A crash between the confirm and the commit publishes the row again later, and
consumers dedupe on the event id. On PostgreSQL several replicas relay at once without publishing the
same row concurrently (``FOR UPDATE SKIP LOCKED``).

The publishes happen inside that transaction, so each one is bounded: a broker that stops answering (a
memory or disk alarm blocks publishers; a confirm is lost; the network drops packets) makes the publish
fail after ``confirm_timeout`` seconds. The batch then rolls back (its rows stay unpublished and unlocked,
for the next attempt or another replica), the connection is dropped without a polite close (which would
wait on the same silent broker), and the broker link is marked down until a publish gets through.

Each published event's time in the outbox goes to ``sanji_outbox_lag_seconds``. With tracing on, each
publish is a PRODUCER span, a child of the span the event was created in (its CloudEvents ``traceparent``),
and the message carries the PRODUCER span's context in its ``traceparent`` AMQP header for the consumers.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import structlog
from amqp.exceptions import MessageNacked
from kombu import Connection, Producer
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from shared import tracing
from shared.clock import Clock
from shared.db import is_postgres
from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.health import LinkState
from shared.outbox import OutboxMessage
from shared.topology import ensure_topology, events_exchange

log = structlog.get_logger(__name__)

# How long one publish may wait for its socket write and its confirm. RabbitMQ confirms a persistent message
# on a quorum queue in milliseconds; ten seconds is an unanswering broker, not a slow one.
CONFIRM_TIMEOUT_SECONDS = 10.0


class OutboxRelay:
    def __init__(self, session_factory: sessionmaker, *, amqp_uri: str, source: str, clock: Clock,
                 poll_seconds: float = 0.5, batch_size: int = 200, metrics=None, service: str | None = None,
                 confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS):
        self._service = service or source.rsplit("/", 1)[-1]
        self._session_factory = session_factory
        self._amqp_uri = amqp_uri
        self._source = source
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self.confirm_timeout = confirm_timeout
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        # The channel's publishes not yet confirmed (delivery tags), the next tag, and how many were refused.
        self._unconfirmed: set[int] = set()
        self._next_tag = 1
        self._nacked = 0
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
        self._reset_connection(polite=self.broker_link.up is True)

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
                spans = []
                try:
                    for row in rows:
                        span = self._producer_span(row)
                        spans.append(span)
                        producer.publish(
                            row.body,
                            routing_key=row.routing_key,
                            content_type=CLOUDEVENTS_CONTENT_TYPE,
                            content_encoding="utf-8",
                            delivery_mode=2,
                            # An event no queue takes is returned (``_on_return``), not silently dropped.
                            mandatory=True,
                            message_id=row.event_id,
                            type=row.event_type,
                            # The sender, as RabbitMQ checks it (it refuses a user_id that is not the
                            # connection's user): consumers trust an event only from its owner.
                            user_id=self._connection.userid or "guest",
                            headers=tracing.carrier_of(span) or None,
                            retry=False,
                            # Bounded: a blocked broker raises a timeout on the write.
                            timeout=self.confirm_timeout,
                        )
                        self._unconfirmed.add(self._next_tag)
                        self._next_tag += 1
                    # The batch's confirms, all together: the broker acknowledges a window of publishes
                    # at once instead of one round trip (and one fsync wait) per message. Bounded too.
                    self._await_confirms()
                except Exception as exc:
                    for span in spans:
                        tracing.end_span(span, error=type(exc).__name__)
                    raise
                for span in spans:
                    tracing.end_span(span)
            except Exception as exc:
                self.broker_link.mark_down(exc)
                if isinstance(exc, socket.timeout | TimeoutError):
                    log.warning("broker did not confirm in time; the batch stays unpublished", source=self._source,
                                timeout_s=self.confirm_timeout, rows=len(rows))
                # The connection's state is unknown (a confirm may still be on its way): never reuse it. The
                # transaction rolls back as the exception leaves the ``with`` above.
                self._reset_connection()
                raise
            self.broker_link.mark_up()
            published_at = self._clock.now()
            if self._metrics is not None:
                self._metrics.relay_published.inc(len(rows))
                for row in rows:
                    self._metrics.outbox_lag.observe(max(_seconds_between(row.created_at, published_at), 0.0))
            session.execute(update(OutboxMessage)
                            .where(OutboxMessage.seq.in_([row.seq for row in rows]))
                            .values(published_at=published_at))
            log.debug("outbox published", source=self._source, count=len(rows))
            return len(rows)

    def _producer_span(self, row: OutboxMessage):
        """A PRODUCER span for one publish, a child of the span the event was created in (None when off)."""
        if not tracing.enabled():
            return None
        try:
            envelope = json.loads(row.body)
        except ValueError:
            envelope = {}
        return tracing.start_span(
            self._service, f"publish {row.event_type}", "producer",
            carrier=tracing.trace_context_of(envelope if isinstance(envelope, dict) else None),
            attributes={"messaging.system": "rabbitmq", "messaging.operation.type": "publish",
                        "messaging.destination.name": events_exchange.name, "messaging.message.id": row.event_id,
                        "cloudevents.event_id": row.event_id, "cloudevents.event_type": row.event_type,
                        "cloudevents.event_source": self._source})

    def _await_confirms(self) -> None:
        """Wait until the broker has confirmed every publish on the channel; raises ``socket.timeout`` after
        ``confirm_timeout`` seconds, ``MessageNacked`` if it refused one."""
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed and not self._nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._unconfirmed)} publishes unconfirmed after {self.confirm_timeout}s")
            self._connection.drain_events(timeout=remaining)
        if self._nacked:
            raise MessageNacked(f"the broker refused {self._nacked} message(s)")

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        refused = {tag for tag in self._unconfirmed if tag <= delivery_tag} if multiple else {delivery_tag}
        self._nacked += len(refused & self._unconfirmed)
        self._unconfirmed -= refused

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            # No heartbeats: servicing them would mean reading the socket between batches (heartbeat_check
            # alone counts only frames something else has read, and would call a healthy idle link dead),
            # and a relay blocked in a long database query would miss them anyway. Not needed either: every
            # publish is bounded by confirm_timeout, so a dead or blocked link fails the next batch within
            # that time and the connection is rebuilt; an idle dead link is found by the next publish, or by
            # py-amqp's TCP keepalive (on by default: 60 s idle, then 9 probes 10 s apart).
            connection = Connection(self._amqp_uri, heartbeat=0)
            connection.ensure_connection(max_retries=1)
            ensure_topology(connection)
            self._connection = connection
            # Publisher confirms on the channel, collected by the callbacks (not one blocking wait per publish,
            # as kombu's confirm_publish does): delivery tags count the channel's publishes from 1.
            channel = connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._unconfirmed, self._next_tag, self._nacked = set(), 1, 0
            # No exchange declaration on publish: a service's broker user may publish, not declare.
            # on_return: py-amqp raises on a basic.return that no handler takes.
            self._producer = Producer(channel, exchange=events_exchange, auto_declare=False,
                                      on_return=self._on_return)
        return self._producer

    def _on_return(self, exception, exchange, routing_key, message) -> None:
        """The broker returned a mandatory publish: no queue is bound to its routing key, nobody gets it.

        It is counted and logged (id, type and routing key: no payload, which may carry codes of people's
        cases), and its row is still marked published: the broker confirmed it (the return comes before the
        confirm), publishing it again would be returned again, and holding it back would stop every later
        event of the outbox. The subscriptions service's queue is bound to every event, so a returned one
        means a queue or binding is missing: a deployment fault the alert points at (docs/reliability.md,
        "Unroutable events")."""
        properties = getattr(message, "properties", None) or {}
        event_type = properties.get("type")
        if self._metrics is not None:
            self._metrics.unroutable(event_type)
        log.warning("unroutable event: no queue is bound to its routing key; marked published, nobody received it",
                    event_id=properties.get("message_id"), event_type=event_type, routing_key=routing_key,
                    exchange=exchange, source=self._source)

    def _reset_connection(self, polite: bool = False) -> None:
        if self._connection is not None:
            try:
                # After a failure the connection is dropped, not closed: a polite close waits for the broker's
                # reply, and the broker may be the one not answering. It sees the socket go and cleans up.
                # On a clean stop, with the broker answering, it is closed politely.
                if polite:
                    self._connection.release()
                else:
                    self._connection.collect()
            except Exception:  # noqa: BLE001 - it is already broken; we only want it gone
                pass
        self._connection = None
        self._producer = None
        self._unconfirmed, self._next_tag, self._nacked = set(), 1, 0


def _seconds_between(created_at, published_at) -> float:
    if created_at.tzinfo is None:  # SQLite may hand a naive UTC datetime back
        created_at = created_at.replace(tzinfo=published_at.tzinfo)
    return (published_at - created_at).total_seconds()
