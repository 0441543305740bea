"""The stream sinks on the broker: declare a subscription's stream queue and bind it to ``sanji.subscriptions``,
delete it, and publish matched events into it with publisher confirms.

A stream (``x-queue-type: stream``) keeps its events for ``x-max-age`` whatever is read, so a department reads
from where it wants (``x-stream-offset``: ``first``, ``last``, an offset or a timestamp) and again after a crash.
Only this service's broker user may declare, bind or delete ``<department user>.sub-<id>``; the department's
user may only read it (``shared.bus``).
"""

from __future__ import annotations

import structlog
from amqp.exceptions import NotFound
from kombu import Connection, Producer

from shared.bus import user_of_uri
from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.topology import SUBSCRIPTIONS_EXCHANGE_NAME, subscriptions_exchange

log = structlog.get_logger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10.0


class SinkUnavailable(RuntimeError):
    """The broker could not declare or delete a stream (down, or the topology missing)."""


class Streams:
    def __init__(self, amqp_uri: str, *, ssl=None, confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS):
        self._amqp_uri = amqp_uri
        self._ssl = ssl
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _connect(self, **options) -> Connection:
        return Connection(self._amqp_uri, ssl=self._ssl, connect_timeout=5, **options)

    def declare(self, name: str, subscription_id: str, max_age: str) -> None:
        """Declare the stream and its binding (idempotent: a second declare with the same arguments is a no-op)."""
        try:
            with self._connect() as connection:
                channel = connection.channel()
                # The queue and its binding only: the exchange is the topology's (this user may not declare it).
                channel.queue_declare(name, durable=True, auto_delete=False,
                                      arguments={"x-queue-type": "stream", "x-max-age": max_age})
                channel.queue_bind(name, SUBSCRIPTIONS_EXCHANGE_NAME, routing_key=subscription_id)
        except Exception as exc:  # noqa: BLE001 - any broker failure means: no sink, nothing written
            log.warning("could not declare a subscription stream", stream=name, error=type(exc).__name__)
            raise SinkUnavailable(f"the broker could not declare the stream ({type(exc).__name__})") from None

    def delete(self, name: str) -> None:
        try:
            with self._connect() as connection:
                connection.channel().queue_delete(name)
        except NotFound:
            return
        except Exception as exc:  # noqa: BLE001
            log.warning("could not delete a subscription stream", stream=name, error=type(exc).__name__)
            raise SinkUnavailable(f"the broker could not delete the stream ({type(exc).__name__})") from None

    def publish(self, subscription_id: str, event_id: str, event_type: str, body: str) -> None:
        """Publish one event into the subscription's stream and wait for the broker's confirm (raises otherwise)."""
        producer = self._ensure_producer()
        try:
            producer.publish(body, routing_key=subscription_id, content_type=CLOUDEVENTS_CONTENT_TYPE,
                             content_encoding="utf-8", delivery_mode=2, message_id=event_id, type=event_type,
                             user_id=self._connection.userid or user_of_uri(self._amqp_uri), retry=False,
                             mandatory=False, timeout=self.confirm_timeout, confirm_timeout=self.confirm_timeout)
        except Exception:
            self.reset()
            raise

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            connection = self._connect(transport_options={"confirm_publish": True}, heartbeat=0)
            connection.ensure_connection(max_retries=1)
            self._connection = connection
            self._producer = Producer(connection.channel(), exchange=subscriptions_exchange, auto_declare=False)
        return self._producer

    def reset(self) -> None:
        if self._connection is not None:
            try:
                self._connection.collect()
            except Exception:  # noqa: BLE001 - it is already broken; we only want it gone
                pass
        self._connection = None
        self._producer = None
