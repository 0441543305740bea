"""The RabbitMQ topology every service relies on, declared up front.

nameko publishes with ``mandatory=False``: an event published before its consumer's queue exists is
confirmed and silently dropped. So the exchanges, queues and bindings are declared here, once, and
each service declares the whole topology on start (declaring is idempotent) before its relay publishes.
``deploy/rabbitmq/definitions.json`` holds the same topology for the broker to load at start.

The event log (``shared/event_log.py``: a super stream of one stream per district, bound to ``sanji.events``) is
part of it: its layout comes from the catalogue's districts and ``SANJI_EVENT_LOG_MAX_AGE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kombu import Exchange, Queue, binding

EVENTS_EXCHANGE_NAME = "sanji.events"
DEAD_LETTER_EXCHANGE_NAME = "sanji.dead-letter"
DEAD_LETTER_QUEUE_NAME = "sanji.dead-letters"

# The broker dead-letters a message returned more than this many times (the handler kept failing, or
# the consumer died holding it): at most DELIVERY_LIMIT + 1 = 5 delivery attempts, never an endless loop.
DELIVERY_LIMIT = 4

events_exchange = Exchange(EVENTS_EXCHANGE_NAME, type="topic", durable=True)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE_NAME, type="topic", durable=True)
# nameko 2.14's RPC exchange (its default name), declared here with the rest so that the services' own broker
# users need not declare it (shared/rpc.py binds to it passively).
RPC_EXCHANGE_NAME = "nameko-rpc"
rpc_exchange = Exchange(RPC_EXCHANGE_NAME, type="topic", durable=True)
# The subscriptions service's sinks: a direct exchange, one stream queue per queue-sink subscription bound with
# the subscription's id as the key (services/subscriptions/streams.py declares and binds the streams).
SUBSCRIPTIONS_EXCHANGE_NAME = "sanji.subscriptions"
subscriptions_exchange = Exchange(SUBSCRIPTIONS_EXCHANGE_NAME, type="direct", durable=True)


@dataclass(frozen=True)
class ConsumerQueue:
    """A durable quorum queue one service consumes from, bound to the event routing keys it handles."""

    name: str
    binding_keys: tuple[str, ...]
    arguments: dict = field(
        default_factory=lambda: {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE_NAME,
        }
    )

    def kombu_queue(self, *, declare: bool = True) -> Queue:
        """The queue with its bindings; ``declare=False`` for a consumer, which only reads it (a service's
        broker user may not declare: the topology is there before it starts, see ``ensure_topology``)."""
        return Queue(
            self.name,
            bindings=[binding(events_exchange, routing_key=key) for key in self.binding_keys],
            durable=True,
            queue_arguments=self.arguments,
            no_declare=not declare,
        )


ROUTING_CASE_SUBMITTED = ConsumerQueue("routing.case-submitted", ("case.submitted.#",))
INTAKE_ITEM_UPDATES = ConsumerQueue("intake.item-updates", ("item.#", "case.completed.#"))
# Evaluation's events: only those someone is told of (not rating.submitted: a rating tells no one by itself).
NOTIFICATION_EVENTS = ConsumerQueue("notification.events", ("case.#", "item.#", "whistle.#", "report.#",
                                                            "rectification.#", "appeal.decided.#",
                                                            "supervision-order.#"))

ROUTING_ESCALATION_ORDERS = ConsumerQueue("routing.escalation-orders", ("escalation.ordered.#",))
# Intake's 容缺 due dates revised once a year's holiday arrangement is loaded: routing keeps a copy to expire by.
ROUTING_DEFERRAL_REVISIONS = ConsumerQueue("routing.deferral-revisions", ("case.deferral-due-date-revised.#",))

# Routing's item changes (not the escalation service's own notices, also on item.*), and reports filed at kiosks.
ESCALATION_EVENTS = ConsumerQueue("escalation.events", tuple(
    f"item.{verb}.#" for verb in ("routed", "released", "claimed", "accepted", "supplement-requested",
                                  "supplement-supplied", "resolved", "rejected", "returned", "terminated",
                                  "escalated", "deadline-revised")) + ("report.filed.#",))

# The item facts the three rates are computed from (with routing's revisions of provisional deadlines), and the
# completions that open the rating window.
EVALUATION_EVENTS = ConsumerQueue("evaluation.events", tuple(
    f"item.{verb}.#" for verb in ("routed", "released", "claimed", "accepted", "supplement-requested",
                                  "supplement-supplied", "resolved", "rejected", "returned", "terminated",
                                  "escalated", "deadline-revised")) + ("case.completed.#",))

# Every event: the subscriptions service matches each against the departments' subscriptions.
SUBSCRIPTIONS_EVENTS = ConsumerQueue("subscriptions.events", ("#",))

CONSUMER_QUEUES: tuple[ConsumerQueue, ...] = (ROUTING_CASE_SUBMITTED, ROUTING_ESCALATION_ORDERS,
                                              ROUTING_DEFERRAL_REVISIONS, INTAKE_ITEM_UPDATES, NOTIFICATION_EVENTS,
                                              ESCALATION_EVENTS, EVALUATION_EVENTS, SUBSCRIPTIONS_EVENTS)

dead_letter_queue = Queue(
    DEAD_LETTER_QUEUE_NAME, exchange=dead_letter_exchange, routing_key="#", durable=True,
    queue_arguments={"x-queue-type": "quorum"},
)


class TopologyMissing(RuntimeError):
    """The broker lacks part of the topology, and this connection's user may not declare it."""


def declare_topology(connection, channel=None, event_log=None) -> None:
    """Declare exchanges, the dead-letter queue, every consumer queue with its bindings, and the event log's
    super stream (``event_log``: an ``EventLogLayout``; by default this deployment's, ``configured_layout``)."""
    from shared.event_log import configured_layout, declare_event_log

    channel = channel or connection.default_channel
    events_exchange(channel).declare()
    dead_letter_exchange(channel).declare()
    rpc_exchange(channel).declare()
    subscriptions_exchange(channel).declare()
    dead_letter_queue(channel).declare()
    for consumer_queue in CONSUMER_QUEUES:
        consumer_queue.kombu_queue()(channel).declare()
    declare_event_log(channel, event_log or configured_layout())


def ensure_topology(connection, event_log=None) -> None:
    """Make sure the whole topology exists before anything is published or consumed.

    A user allowed to declare (the development broker's administrator, a test's vhost) declares it, which
    also adds what a newer version brings. A service's own broker user may not (docs/security.md): the
    broker loaded the topology from its definitions, so each object is only checked (a passive declare,
    which needs no permission) and a missing one is reported in one line.
    """
    from amqp.exceptions import AccessRefused, NotFound

    from shared.event_log import SUPER_STREAM_NAME, configured_layout

    layout = event_log or configured_layout()
    channel = connection.channel()
    try:
        declare_topology(connection, channel, layout)
        return
    except AccessRefused:
        pass
    finally:
        _close_quietly(channel)
    checks = [("exchange", name, lambda ch, name=name: ch.exchange_declare(name, "topic", passive=True))
              for name in (EVENTS_EXCHANGE_NAME, DEAD_LETTER_EXCHANGE_NAME, RPC_EXCHANGE_NAME)]
    checks += [("exchange", name, lambda ch, name=name: ch.exchange_declare(name, "direct", passive=True))
               for name in (SUBSCRIPTIONS_EXCHANGE_NAME, SUPER_STREAM_NAME)]
    checks += [("queue", name, lambda ch, name=name: ch.queue_declare(name, passive=True))
               for name in [DEAD_LETTER_QUEUE_NAME] + [q.name for q in CONSUMER_QUEUES]
               + [partition.name for partition in layout.partitions]]
    missing = []
    for kind, name, check in checks:
        channel = connection.channel()
        try:
            check(channel)
        except NotFound:
            missing.append(f"{kind} {name}")
        finally:
            _close_quietly(channel)
    if missing:
        raise TopologyMissing(
            f"the broker lacks {', '.join(missing)} and user {connection.userid!r} may not declare it: load "
            "deploy/rabbitmq/definitions.json into the broker, or run `sanji bus setup` as its administrator")


def _close_quietly(channel) -> None:
    try:
        channel.close()
    except Exception:  # noqa: BLE001 - a channel the broker closed is closed
        pass


def broker_definitions(vhost: str = "/", event_log=None) -> dict:
    """The same topology in RabbitMQ's definitions format, for the broker to load at start
    (``deploy/rabbitmq/definitions.json`` is written from this by ``sanji write-docs``)."""
    from shared.event_log import configured_layout, event_log_definitions

    log_objects = event_log_definitions(event_log or configured_layout(), vhost)

    def exchange(ex: Exchange) -> dict:
        return {"name": ex.name, "vhost": vhost, "type": ex.type, "durable": True, "auto_delete": False,
                "internal": False, "arguments": {}}

    def queue(name: str, arguments: dict) -> dict:
        return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": dict(arguments)}

    def bind(source: str, destination: str, key: str) -> dict:
        return {"source": source, "vhost": vhost, "destination": destination, "destination_type": "queue",
                "routing_key": key, "arguments": {}}

    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [exchange(events_exchange), exchange(dead_letter_exchange), exchange(rpc_exchange),
                      exchange(subscriptions_exchange)] + log_objects["exchanges"],
        "queues": [queue(DEAD_LETTER_QUEUE_NAME, dead_letter_queue.queue_arguments)]
                  + [queue(q.name, q.arguments) for q in CONSUMER_QUEUES] + log_objects["queues"],
        "bindings": [bind(DEAD_LETTER_EXCHANGE_NAME, DEAD_LETTER_QUEUE_NAME, "#")]
                    + [bind(EVENTS_EXCHANGE_NAME, q.name, key) for q in CONSUMER_QUEUES for key in q.binding_keys]
                    + log_objects["bindings"],
    }
