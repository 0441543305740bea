"""nameko extensions every service uses: storage with its outbox relay, and the event consumer.

Entrypoints stay thin: they parse, bind log context, and call one handler with a unit of work.
"""

from __future__ import annotations

import eventlet
import structlog
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer, QueueConsumer
from pydantic import ValidationError

from shared.auth import TokenRegistry
from shared.clock import Clock, SystemClock
from shared.db import session_factory, shared_engine
from shared.events import CloudEvent, UnknownEventType, source_of
from shared.health import health_report
from shared.outbox import UnitOfWork
from shared.relay import OutboxRelay
from shared.topology import ConsumerQueue

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

    def get_dependency(self, worker_ctx):
        return lambda request: self.registry.authenticate(request.headers.get("Authorization"))


class Storage(DependencyProvider):
    """Hands each worker a factory of units of work, and runs the service's outbox relay."""

    def setup(self):
        config = self.container.config
        self.service = config.get("SANJI_SERVICE", self.container.service_name)
        self.engine = shared_engine(config["DATABASE_URL"])
        self.session_factory = session_factory(self.engine)
        self.clock = SystemClock()
        self.relay = OutboxRelay(
            self.session_factory,
            amqp_uri=config["AMQP_URI"],
            source=source_of(self.service),
            clock=self.clock,
            poll_seconds=float(config.get("SANJI_RELAY_POLL_SECONDS", 0.5)),
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
        provider = self._provider
        return health_report(provider.service, provider.container.config["AMQP_URI"], provider.engine)


class DeadLetteringQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that a body it cannot decode is dead-lettered.

    Without this, a message with a foreign content type raises inside kombu's drain loop on every
    redelivery and stalls the whole queue.
    """

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for consumer in consumers:
            consumer.on_decode_error = self._dead_letter_undecodable
        return consumers

    @staticmethod
    def _dead_letter_undecodable(message, exc):
        log.error("dead-lettering a message that cannot be decoded",
                  content_type=message.content_type, error=type(exc).__name__)
        message.reject(requeue=False)


class EventConsumer(Consumer):
    """Consumes CloudEvents from one quorum queue with an explicit failure policy.

    - Success: ack.
    - Permanent failure (unparseable envelope, unknown type, invalid payload, ``PermanentError``):
      reject without requeue, so the broker dead-letters it at once.
    - Anything else is taken as transient (database down, lock timeout): requeue after a short
      backoff. The quorum queue counts deliveries and dead-letters the message at its delivery limit,
      so even a misclassified poison message stops after a bounded number of attempts.
    """

    queue_consumer = DeadLetteringQueueConsumer()

    def __init__(self, consumer_queue: ConsumerQueue, **kwargs):
        self.consumer_queue = consumer_queue
        super().__init__(queue=consumer_queue.kombu_queue(), requeue_on_error=True, **kwargs)

    def handle_message(self, body, message):
        try:
            event = (CloudEvent.model_validate(body) if isinstance(body, dict)
                     else CloudEvent.model_validate_json(body))
        except ValidationError as exc:
            log.error("dead-lettering a message that is not a valid CloudEvent",
                      queue=self.consumer_queue.name, errors=exc.error_count())
            self._reject(message)
            return
        context_data = self.unpack_message_headers(message)
        handle_result = _partial_result(self, message, event)
        self.container.spawn_worker(self, (event,), {}, context_data=context_data,
                                    handle_result=handle_result)

    def handle_event_result(self, message, event, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        error = exc_info[1]
        bound = log.bind(queue=self.consumer_queue.name, event_id=event.id, event_type=event.type)
        if isinstance(error, PermanentError | UnknownEventType | ValidationError):
            bound.error("dead-lettering an event that can never be handled", error=type(error).__name__,
                        reason=str(error)[:300])
            self._reject(message)
        else:
            attempts = int((message.headers or {}).get("x-delivery-count", 0)) + 1
            base = float(self.container.config.get("SANJI_RETRY_BASE_SECONDS", 0.1))
            delay = min(base * 2 ** attempts, 5.0)
            bound.warning("handler failed; requeueing", attempt=attempts, retry_in_s=delay,
                          error=type(error).__name__)
            eventlet.sleep(delay)
            self.queue_consumer.requeue_message(message)
        return result, exc_info

    @staticmethod
    def _reject(message):
        if message.channel.connection:
            message.reject(requeue=False)


def _partial_result(consumer: EventConsumer, message, event: CloudEvent):
    def handle_result(worker_ctx, result=None, exc_info=None):
        return consumer.handle_event_result(message, event, worker_ctx, result, exc_info)

    return handle_result


consume_events = EventConsumer.decorator
