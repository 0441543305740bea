"""nameko's AMQP plumbing, made to survive broker faults, and a container that says when it dies.

nameko 2.14 treats any exception raised while a worker's result is handled as a bug in an extension:
the container kills itself. A broker restart or a dropped connection makes exactly that happen in
ordinary operation: ``message.ack()`` on the socket the broker has just reset raises
``ConnectionResetError`` or ``BrokenPipeError`` (nameko only catches amqp's own ``ConnectionError``),
and so does the RPC reply published on a dead connection. The process then stays up and consumes
nothing more.

Here every way a delivery can be settled (ack, requeue, reject) and every RPC reply is attempted
once; if the connection is gone the attempt is dropped with a warning. That is safe because:

- a delivery that was not acked goes back to its queue when its channel closes, and comes again on
  the new connection; every consumer is idempotent (``UnitOfWork.claim_message``), so the second
  delivery changes nothing and is acked;
- an RPC request whose reply could not be sent is requeued (or redelivered after the reconnect) and
  answered again; the RPCs are reads.

Should a container die all the same, ``SupervisedContainer`` lets the process that runs it know at
once (``sanji.cli`` then exits non-zero so that its supervisor restarts it).
"""

from __future__ import annotations

import eventlet
import structlog
from eventlet.event import Event
from nameko.containers import ServiceContainer
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener, RpcConsumer
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcProxy as NamekoRpcProxy

from shared.health import LinkState

log = structlog.get_logger(__name__)


def settle_quietly(message, how: str) -> bool:
    """Ack, requeue or reject (without requeue) a delivery; False if the connection was gone.

    Only a live channel is tried: after a clean close the broker has already taken the message back.
    Any error on the way (reset socket, broken pipe, closed channel) means the same thing, so it is
    logged and dropped; the message is redelivered on the next connection.
    """
    if not message.channel.connection:
        return False
    try:
        if how == "ack":
            message.ack()
        elif how == "requeue":
            message.requeue()
        elif how == "reject":
            message.reject(requeue=False)
        else:  # pragma: no cover - a programming error, not a broker fault
            raise ValueError(f"unknown settlement {how!r}")
    except Exception as exc:  # noqa: BLE001 - every failure here is a lost connection, by the above
        log.warning("could not settle a delivery; the broker will redeliver it", settlement=how,
                    error=type(exc).__name__, delivery_tag=message.delivery_tag)
        return False
    return True


class ResilientQueueConsumer(QueueConsumer):
    """nameko's queue consumer, shared by a container's event consumers, RPC entrypoints and RPC
    replies, with three changes:

    - settling a delivery never raises (``settle_quietly``);
    - a body it cannot decode is dead-lettered: without this, a message with a foreign content type
      raises inside kombu's drain loop on every redelivery and stalls the whole queue;
    - it keeps ``broker_link`` for ``/health``: up once the consumers are ready, down when the
      connection is lost or a reconnect fails.
    """

    def __init__(self):
        super().__init__()
        self.broker_link = LinkState("consumer", required=True)

    def ack_message(self, message):
        settle_quietly(message, "ack")

    def requeue_message(self, message):
        settle_quietly(message, "requeue")

    def reject_message(self, message):
        """Reject without requeue: the queue's dead-letter exchange takes it."""
        settle_quietly(message, "reject")

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        self.broker_link.mark_up()

    def on_connection_error(self, exc, interval):
        self.broker_link.mark_down(exc)
        super().on_connection_error(exc, interval)

    def consume(self, *args, **kwargs):
        try:
            yield from super().consume(*args, **kwargs)
        finally:  # the connection was lost (kombu reconnects from run()), or the consumer is stopping
            self.broker_link.mark_down("consumer connection closed")

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for consumer in consumers:
            consumer.on_decode_error = self._dead_letter_undecodable
        return consumers

    @staticmethod
    def _dead_letter_undecodable(message, exc):
        log.error("dead-lettering a message that cannot be decoded",
                  content_type=message.content_type, error=type(exc).__name__)
        settle_quietly(message, "reject")


class ResilientRpcConsumer(RpcConsumer):
    queue_consumer = ResilientQueueConsumer()

    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except Exception as exc:  # noqa: BLE001 - the reply could not be published: the broker is away
            log.warning("could not send an RPC reply; the request goes back to the queue",
                        error=type(exc).__name__, routing_key=message.delivery_info.get("routing_key"))
            self.queue_consumer.requeue_message(message)
            return result, exc_info


class Rpc(NamekoRpc):
    """``@rpc`` whose reply and ack survive a lost connection."""

    rpc_consumer = ResilientRpcConsumer()


rpc = Rpc.decorator


class ResilientReplyListener(ReplyListener):
    queue_consumer = ResilientQueueConsumer()


class RpcProxy(NamekoRpcProxy):
    """nameko's RPC proxy, its replies received through the resilient queue consumer."""

    rpc_reply_listener = ResilientReplyListener()


class SupervisedContainer(ServiceContainer):
    """A container that announces its own death.

    ``dying`` fires with the error when the container starts killing itself because a thread died
    with an exception (or anyone kills it): the runner need not wait for the kill to finish, which can
    take as long as the broker stays away, to know that the process must go.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dying = Event()

    def kill(self, exc_info=None):
        if not self.dying.ready():
            error = exc_info[1] if exc_info is not None else None
            if error is not None:
                log.critical("service container is dying", service=self.service_name,
                             error=type(error).__name__, reason=str(error)[:300])
            self.dying.send(error)
        super().kill(exc_info)


def exit_when_dying(containers, on_death, grace_seconds: float) -> list:
    """Call ``on_death(container, error)`` once the kill has finished, or after ``grace_seconds`` at
    the latest: a supervisor must restart the process soon, and a kill can hang on a broker that is
    still away. Only for runners that own their process (``sanji serve``), never inside tests."""

    def watch(container: SupervisedContainer):
        error = container.dying.wait()
        with eventlet.Timeout(grace_seconds, False):
            try:
                container.wait()
            except Exception:  # noqa: BLE001 - the same error, re-raised by wait(); reported below
                pass
        on_death(container, error)

    return [eventlet.spawn(watch, container) for container in containers
            if isinstance(container, SupervisedContainer)]
