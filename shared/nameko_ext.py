"""nameko extensions every service uses: storage with its outbox relay, and the event consumer.

Entrypoints stay thin: they parse, bind log context, and call one handler with a unit of work.
"""

from __future__ import annotations

import time

import eventlet
import structlog
from nameko.amqp.publish import get_producer
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shared import bus, tracing
from shared.auth import PersonAssertions, TokenRegistry
from shared.broker_faults import ResilientQueueConsumer
from shared.clock import Clock, SystemClock
from shared.db import session_factory, shared_engine
from shared.events import CloudEvent, UnknownEventType, source_of
from shared.health import CachedCheck, database_reachable, health_report
from shared.metrics import event_types_bound, for_container
from shared.migrate import schema_current
from shared.outbox import UnitOfWork
from shared.relay import OutboxRelay
from shared.topology import DEAD_LETTER_EXCHANGE_NAME, DEAD_LETTER_QUEUE_NAME, ConsumerQueue, ensure_topology

log = structlog.get_logger(__name__)


class PermanentError(Exception):
    """A message that can never be handled, however often it is retried: dead-letter it at once."""


class ClockProvider(DependencyProvider):
    """The service's clock; tests swap it for a FrozenClock with ``replace_dependencies``."""

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or SystemClock()

    def get_dependency(self, worker_ctx):
        return self.clock


class Authenticator(DependencyProvider):
    """``self.authenticate(request)`` gives the caller's Principal, or raises ApiError 401."""

    def setup(self):
        self.registry = TokenRegistry.from_file(self.container.config["SANJI_TOKENS_FILE"])
        # Person assertions signed by the console (shared/auth.py): people act with their unit's rights.
        self.assertions = PersonAssertions.from_config_value(self.container.config.get("SANJI_ASSERTION_KEY"))

    def get_dependency(self, worker_ctx):
        return lambda request: self.registry.authenticate(request.headers.get("Authorization"), self.assertions)


class Storage(DependencyProvider):
    """Hands each worker a factory of units of work, and runs the service's outbox relay."""

    def setup(self):
        config = self.container.config
        self.service = config.get("SANJI_SERVICE", self.container.service_name)
        self.engine = shared_engine(config["DATABASE_URL"])
        self.session_factory = session_factory(self.engine)
        self.clock = SystemClock()
        # /health and the scrape-time gauges read the database at most once per this many seconds.
        probe_seconds = float(config.get("SANJI_DB_PROBE_SECONDS", 5.0))
        self.database_check = CachedCheck(lambda: database_reachable(self.engine), probe_seconds)
        self.schema_check = CachedCheck(lambda: schema_current(self.engine, self.service), probe_seconds)
        self.metrics = for_container(self.container)
        # A service names gauges of its own tables in ``storage_collectors`` (the kernel knows no table).
        self.metrics.register_storage(self.engine, source_of(self.service), cache_seconds=probe_seconds,
                                      collectors=getattr(self.container.service_cls, "storage_collectors", None))
        # The depth of the queues this service consumes, and of the dead letters, from the broker at scrape time.
        consumed = [entrypoint.consumer_queue.name for entrypoint in self.container.entrypoints
                    if isinstance(entrypoint, EventConsumer)]
        self.metrics.register_queues(config["AMQP_URI"], consumed + [DEAD_LETTER_QUEUE_NAME],
                                     cache_seconds=probe_seconds, ssl=config.get("AMQP_SSL"))
        self.relay = OutboxRelay(
            self.session_factory,
            amqp_uri=config["AMQP_URI"],
            source=source_of(self.service),
            clock=self.clock,
            # A commit with events wakes the relay at once; the poll only finds rows nobody woke it for (those
            # of a replica that stopped before publishing them), so it can be slow: each one is a transaction.
            poll_seconds=float(config.get("SANJI_RELAY_POLL_SECONDS", 2.0)),
            metrics=self.metrics,
            service=self.service,
        )
        self._relay_thread = None

    def start(self):
        self._relay_thread = self.container.spawn_managed_thread(self.relay.run_forever,
                                                                 identifier="outbox-relay")

    def stop(self):
        # Entrypoints stop first, so by now no handler writes new rows: flush them and leave.
        self.relay.stop()
        if self._relay_thread is not None:
            self._relay_thread.wait()

    def kill(self):
        self.relay.stop()

    def get_dependency(self, worker_ctx):
        return StorageAccess(self)


class StorageAccess:
    """What a worker gets: units of work, and the service's health as its dependencies see it."""

    def __init__(self, provider: Storage):
        self._provider = provider

    def unit_of_work(self, clock: Clock | None = None) -> UnitOfWork:
        provider = self._provider
        return UnitOfWork(provider.session_factory, source=source_of(provider.service),
                          clock=clock or provider.clock, on_events_committed=provider.relay.wake)

    def health(self) -> tuple[int, dict]:
        """The broker as the service's own consumer and relay connections see it (``shared.health``)."""
        provider = self._provider
        links = [extension.broker_link for extension in provider.container.extensions
                 if isinstance(extension, ResilientQueueConsumer)] + [provider.relay.broker_link]
        return health_report(provider.service, provider.container.config["AMQP_URI"], provider.engine, links,
                             database_check=provider.database_check, schema_check=provider.schema_check)


class EventConsumer(Consumer):
    """Consumes CloudEvents from one quorum queue with an explicit failure policy.

    - An event from a sender that does not own its type, or whose ``source`` is not the sender's (the
      AMQP ``user_id``, which RabbitMQ vouches for; see shared/bus.py): never handled. It goes to the dead
      letters with the reason in the ``x-sanji-dead-letter-reason`` header, and nobody hears of it.
    - Success: ack.
    - Permanent failure (unparseable envelope, unknown type, invalid payload, ``PermanentError``):
      reject without requeue, so the broker dead-letters it at once.
    - The database or broker unreachable (an outage, a restart): the message is kept and the handler
      run again in place, with backoff, for up to about a minute. An outage is nobody's poison, so it
      must not use up the message's delivery budget and send good messages to the dead letters.
    - Anything else (a bug, a lock timeout): requeue after a short backoff. The quorum queue counts
      deliveries and dead-letters the message at its delivery limit, so even a misclassified poison
      message stops after a bounded number of attempts.
    """

    OUTAGE_RETRIES = 10          # 0.5 s doubling to a 10 s cap: about 65 s in all

    queue_consumer = ResilientQueueConsumer()

    def __init__(self, consumer_queue: ConsumerQueue, **kwargs):
        self.consumer_queue = consumer_queue
        super().__init__(queue=consumer_queue.kombu_queue(declare=False), requeue_on_error=True, **kwargs)

    def setup(self):
        super().setup()
        self.metrics = for_container(self.container)
        self.metrics.declare_handler(self.method_name, self.consumer_queue.name,
                                     event_types_bound(self.consumer_queue.binding_keys))
        self.bus_users = bus_users(self.container.config)
        # The consumer only reads its queue (a service's broker user may not declare it): the topology must
        # be there before it starts. Declared here where the user may, checked otherwise (shared.topology).
        from kombu import Connection

        from shared.topology import TopologyMissing

        try:
            with Connection(self.container.config["AMQP_URI"], connect_timeout=5) as connection:
                ensure_topology(connection)
        except TopologyMissing:
            raise  # fail closed, in one line: nothing would consume, and the relay would drop events
        except Exception:  # noqa: BLE001 - the broker is down: consuming reconnects, the relay ensures it first
            log.warning("could not check the topology at start; the broker seems down", exc_info=True)

    def handle_message(self, body, message):
        try:
            event = (CloudEvent.model_validate(body) if isinstance(body, dict)
                     else CloudEvent.model_validate_json(body))
        except ValidationError as exc:
            log.error("dead-lettering a message that is not a valid CloudEvent",
                      queue=self.consumer_queue.name, errors=exc.error_count())
            self._count_redelivery(message, None)
            self._reject(message)
            self.metrics.failed(self.method_name, self.consumer_queue.name, None, "dead_lettered")
            return
        self._count_redelivery(message, event.type)
        sender = message.properties.get("user_id")
        refusal = bus.sender_refusal(sender, event, self.bus_users)
        if refusal is not None:
            log.error("dead-lettering an event from a sender that may not send it", queue=self.consumer_queue.name,
                      event_id=event.id, event_type=event.type, source=event.source, sender=sender, reason=refusal)
            self._dead_letter_with_reason(message, refusal, sender)
            self.metrics.failed(self.method_name, self.consumer_queue.name, event.type, "dead_lettered")
            return
        self._spawn(message, event, outage_retry=0)

    def _count_redelivery(self, message, event_type: str | None) -> None:
        """A delivery the broker has made before: the AMQP ``redelivered`` flag (a message requeued, or left
        unacknowledged by a consumer that went away), or the quorum queue's count of earlier deliveries."""
        headers = message.headers or {}
        if message.delivery_info.get("redelivered") or int(headers.get("x-delivery-count") or 0) > 0:
            self.metrics.redelivered(self.method_name, self.consumer_queue.name, event_type)

    def _dead_letter_with_reason(self, message, reason: str, sender: str | None) -> None:
        """Dead-letter with the reason in a header. RabbitMQ's own dead-lettering (a reject) keeps the headers
        as they were, so the message is published to the dead-letter exchange here, then acknowledged; if that
        publish fails, it is rejected instead (dead-lettered by the broker, the reason in the log only)."""
        config = self.container.config
        headers = dict(message.headers or {})
        headers.update({bus.DEAD_LETTER_REASON_HEADER: reason, bus.DEAD_LETTER_QUEUE_HEADER: self.consumer_queue.name,
                        bus.DEAD_LETTER_SENDER_HEADER: sender or ""})
        try:
            with get_producer(config["AMQP_URI"], True, config.get("AMQP_SSL"), config.get("LOGIN_METHOD")) as producer:
                producer.publish(
                    message.body, exchange=DEAD_LETTER_EXCHANGE_NAME,
                    routing_key=message.delivery_info.get("routing_key") or "",
                    headers=headers, content_type=message.content_type, content_encoding=message.content_encoding,
                    message_id=message.properties.get("message_id"), delivery_mode=2,
                    user_id=bus.user_of_uri(config["AMQP_URI"]), retry=False)
        except Exception:  # noqa: BLE001 - the broker's dead-lettering still keeps it out of the handler
            log.warning("could not publish to the dead letters; rejecting instead", queue=self.consumer_queue.name,
                        exc_info=True)
            self._reject(message)
            return
        self.queue_consumer.ack_message(message)

    def _spawn(self, message, event: CloudEvent, outage_retry: int) -> None:
        context_data = self.unpack_message_headers(message)
        # A child of the relay's PRODUCER span (the AMQP header), else of the span the event was created in.
        span = tracing.start_span(
            self.metrics.service, f"process {self.consumer_queue.name}", "consumer",
            carrier=(tracing.trace_context_of(message.headers)
                     or tracing.trace_context_of({"traceparent": event.traceparent, "tracestate": event.tracestate})),
            attributes={"messaging.system": "rabbitmq", "messaging.operation.type": "process",
                        "messaging.destination.name": self.consumer_queue.name,
                        "messaging.message.id": event.id, "cloudevents.event_id": event.id,
                        "cloudevents.event_type": event.type, "cloudevents.event_source": event.source,
                        "sanji.handler": self.method_name})
        context_data.update(tracing.worker_context(span))
        handle_result = _partial_result(self, message, event, outage_retry, span)
        try:
            self.container.spawn_worker(self, (event,), {}, context_data=context_data,
                                        handle_result=handle_result)
        except ContainerBeingKilled:
            tracing.end_span(span, error="ContainerBeingKilled")
            self.queue_consumer.requeue_message(message)

    def handle_event_result(self, message, event, worker_ctx, result=None, exc_info=None, outage_retry=0):
        """Settle the delivery by the failure policy. Never raises: nameko would kill the container."""
        try:
            self._settle(message, event, exc_info, outage_retry)
        except Exception as exc:  # noqa: BLE001 - a bug here must cost one redelivery, not the service
            log.critical("could not apply the failure policy; leaving the message to be redelivered",
                         queue=self.consumer_queue.name, event_id=event.id, error=type(exc).__name__)
            self.queue_consumer.requeue_message(message)
        return result, exc_info

    def _settle(self, message, event: CloudEvent, exc_info, outage_retry: int) -> None:
        metrics = for_container(self.container)
        if exc_info is None:
            # A failed ack is dropped: the message comes back on the next connection and the inbox
            # (claim_message) makes its second handling a no-op.
            self.queue_consumer.ack_message(message)
            metrics.handled(self.method_name, self.consumer_queue.name, event.type)
            return
        error = exc_info[1]
        bound = log.bind(queue=self.consumer_queue.name, event_id=event.id, event_type=event.type)
        if isinstance(error, PermanentError | UnknownEventType | ValidationError):
            bound.error("dead-lettering an event that can never be handled", error=type(error).__name__,
                        reason=str(error)[:300])
            self._reject(message)
            metrics.failed(self.method_name, self.consumer_queue.name, event.type, "dead_lettered")
        elif is_outage(error) and outage_retry < self.OUTAGE_RETRIES:
            delay = min(0.5 * 2 ** outage_retry, 10.0)
            bound.warning("database or broker unreachable; retrying in place", retry_in_s=delay,
                          error=type(error).__name__)
            metrics.failed(self.method_name, self.consumer_queue.name, event.type, "retried_in_place")
            eventlet.spawn_after(delay, self._spawn, message, event, outage_retry + 1)
        else:
            attempts = int((message.headers or {}).get("x-delivery-count", 0)) + 1
            base = float(self.container.config.get("SANJI_RETRY_BASE_SECONDS", 0.1))
            delay = min(base * 2 ** attempts, 5.0)
            bound.warning("handler failed; requeueing", attempt=attempts, retry_in_s=delay,
                          error=type(error).__name__)
            eventlet.sleep(delay)
            self.queue_consumer.requeue_message(message)
            metrics.failed(self.method_name, self.consumer_queue.name, event.type, "requeued")

    def _reject(self, message):
        self.queue_consumer.reject_message(message)


def bus_users(config: dict) -> dict[str, str]:
    """Each service's broker user (SANJI_BUS_USERS); by default every service is this container's own user,
    the development broker's one shared user."""
    users = config.get("SANJI_BUS_USERS")
    if isinstance(users, str):
        return bus.parse_users(users)
    if users:
        return dict(users)
    return {service: bus.user_of_uri(config["AMQP_URI"]) for service in bus.SERVICES}


def is_outage(error: BaseException) -> bool:
    """The database or the broker cannot be reached (as opposed to a bug or a bad message).

    A connection pool that hands out no connection in time (``sqlalchemy.exc.TimeoutError``: every connection
    held, by a slow database or a burst of work) is one too: the message is not to blame, and counted as
    "anything else" it would use up its delivery budget and be dead-lettered while the database recovers.
    """
    if isinstance(error, DBAPIError) and (error.connection_invalidated or isinstance(error, OperationalError)):
        return True
    return isinstance(error, OperationalError | PoolTimeoutError | ConnectionError | TimeoutError)


def _partial_result(consumer: EventConsumer, message, event: CloudEvent, outage_retry: int = 0, span=None):
    arrived = time.perf_counter()

    def handle_result(worker_ctx, result=None, exc_info=None):
        consumer.metrics.observe_handler(consumer.method_name, consumer.consumer_queue.name, event.type,
                                         time.perf_counter() - arrived)
        tracing.end_span(span, error=None if exc_info is None else type(exc_info[1]).__name__)
        return consumer.handle_event_result(message, event, worker_ctx, result, exc_info, outage_retry)

    return handle_result


consume_events = EventConsumer.decorator
