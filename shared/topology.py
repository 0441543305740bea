"""The RabbitMQ topology every service relies on, declared up front.

nameko publishes with ``mandatory=False``: an event published before its consumer's queue exists is
confirmed and silently dropped. So the exchanges, queues and bindings are declared here, once, and
each service declares the whole topology on start (declaring is idempotent) before its relay publishes.
``deploy/rabbitmq/definitions.json`` holds the same topology for the broker to load at start.

Dead-lettering is at least once (RabbitMQ 3.10 and later, quorum queues) under a broker policy. By default a
quorum queue dead-letters at most once: it drops a message its dead-letter exchange cannot route, or whose
target queue refuses it. With ``dead-letter-strategy: at-least-once`` (which needs ``overflow: reject-publish``)
the queue keeps the message until ``sanji.dead-letters`` has confirmed it, and the broker tries again (at once
when the queue's policy changes, else every ``dead_letter_worker_publisher_confirm_timeout``, 180 s by default).
Both come from the policy ``DEAD_LETTER_POLICY_NAME`` (in the definitions; ``sanji bus setup`` / ``make run``
apply it), never from queue arguments: a policy applies to queues that already exist (an upgrade), and it can be
lifted without deleting a queue. That matters because of rabbitmq-server#16652: a burst of dead-letter worker
crashes (over 100 in a second, e.g. deleting a vhost full of such queues) stops the node's ``rabbit_fifo_dlx_sup``
for good, and every at-least-once queue declared afterwards fails with INTERNAL_ERROR until the node restarts
(seen here, docs/reliability.md). Declared as arguments, the strategy could not be taken back.

The event log (``shared/event_log.py``: a super stream of one stream per district, bound to ``sanji.events``) is
part of it: its layout comes from the catalogue's districts and ``SANJI_EVENT_LOG_MAX_AGE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from kombu import Exchange, Queue, binding

log = structlog.get_logger(__name__)

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


# A consumer queue's arguments; at-least-once dead-lettering comes from the policy below, not from arguments.
CONSUMER_QUEUE_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-delivery-limit": DELIVERY_LIMIT,
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE_NAME,
}
# A dead-lettered message stays in its queue until the dead-letter queue confirmed it. RabbitMQ uses the
# strategy only together with reject-publish overflow (else it falls back to at most once, with a warning in
# its log). Without a length limit reject-publish refuses no publish; should an operator policy set one, a
# full queue refuses (the relay's publish is nacked and retried) rather than dropping its oldest message.
AT_LEAST_ONCE_DEAD_LETTERING = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}

# The two settings as a policy: it applies to queues that already exist, and can be lifted (rabbitmq-server#16652,
# above); a queue's own arguments would win over a policy's. One policy applies to a queue, the matching one of highest
# priority: a city's own policy for these queues must carry these keys too.
DEAD_LETTER_POLICY_NAME = "sanji-at-least-once-dead-lettering"
DEAD_LETTER_POLICY_PRIORITY = 10


@dataclass(frozen=True)
class ConsumerQueue:
    """A durable quorum queue one service consumes from, bound to the event routing keys it handles."""

    name: str
    binding_keys: tuple[str, ...]
    arguments: dict = field(default_factory=lambda: dict(CONSUMER_QUEUE_ARGUMENTS))

    def kombu_queue(self, *, declare: bool = True, arguments: dict | None = None) -> Queue:
        """The queue with its bindings; ``declare=False`` for a consumer, which only reads it (a service's
        broker user may not declare: the topology is there before it starts, see ``ensure_topology``).
        ``arguments`` replaces the queue's own (the older release's, to recognise a queue it declared)."""
        return Queue(
            self.name,
            bindings=[binding(events_exchange, routing_key=key) for key in self.binding_keys],
            durable=True,
            queue_arguments=self.arguments if arguments is None else arguments,
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


def declare_topology(connection, channel=None, event_log=None) -> tuple[str, ...]:
    """Declare exchanges, the dead-letter queue, every consumer queue with its bindings, and the event log's
    super stream (``event_log``: an ``EventLogLayout``; by default this deployment's, ``configured_layout``).

    Returns the consumer queues declared with other arguments (the strategy as arguments, by a development
    build): they are kept as they are, their bindings declared. Any other difference still fails with
    PRECONDITION_FAILED. Every queue dead-letters at least once only under the broker policy
    ``DEAD_LETTER_POLICY_NAME``.
    """
    from amqp.exceptions import PreconditionFailed

    from shared.event_log import absent_partitions, configured_layout, declare_event_log

    layout = event_log or configured_layout()
    new_partitions = absent_partitions(connection, layout)
    channel = channel or connection.default_channel
    events_exchange(channel).declare()
    dead_letter_exchange(channel).declare()
    rpc_exchange(channel).declare()
    subscriptions_exchange(channel).declare()
    dead_letter_queue(channel).declare()
    legacy, opened = [], None
    try:
        for consumer_queue in CONSUMER_QUEUES:
            try:
                consumer_queue.kombu_queue()(channel).declare()
            except PreconditionFailed:
                # The broker closed the channel; the connection's default channel must not stay a closed one.
                if getattr(connection, "_default_channel", None) is channel:
                    connection._default_channel = None
                _close_quietly(channel)
                channel = opened = connection.channel()
                # Declared with the strategy as arguments (a development build of 2026-12-07 did): kept as it is.
                consumer_queue.kombu_queue(arguments={**CONSUMER_QUEUE_ARGUMENTS,
                                                      **AT_LEAST_ONCE_DEAD_LETTERING})(channel).declare()
                legacy.append(consumer_queue.name)
        declare_event_log(channel, layout, new_partitions=new_partitions)
    finally:
        if opened is not None:
            _close_quietly(opened)
    return tuple(legacy)


def warn_of_legacy_queues(legacy) -> None:
    """One line for queues declared with the strategy as arguments, which the policy cannot lift."""
    if legacy:
        log.warning(
            "queues declared with at-least-once dead-lettering as arguments are kept; this release sets it by the "
            "broker policy "
            f"{DEAD_LETTER_POLICY_NAME!r} (deploy/rabbitmq/definitions.json, `sanji bus setup`, `make run`); "
            "delete and redeclare them, drained, to be able to lift it (docs/reliability.md)", queues=",".join(legacy))


def ensure_topology(connection, event_log=None) -> tuple[str, ...]:
    """Make sure the whole topology exists before anything is published or consumed.

    A user allowed to declare (the development broker's administrator, a test's vhost) declares it, which
    also adds what a newer version brings, and warns in one line of queues an older release declared
    (returned: see ``declare_topology``). A service's own broker user may not (docs/security.md): the
    broker loaded the topology and the dead-lettering policy from its definitions, so each object is only
    checked (a passive declare, which needs no permission) and a missing one is reported in one line.
    """
    from amqp.exceptions import AccessRefused, NotFound

    from shared.event_log import SUPER_STREAM_NAME, configured_layout

    layout = event_log or configured_layout()
    channel = connection.channel()
    try:
        legacy = declare_topology(connection, channel, layout)
        warn_of_legacy_queues(legacy)
        return legacy
    except AccessRefused:
        pass
    finally:
        _close_quietly(channel)
    checks = [("exchange", name, lambda ch, name=name: ch.exchange_declare(name, "topic", passive=True))
              for name in (EVENTS_EXCHANGE_NAME, DEAD_LETTER_EXCHANGE_NAME, RPC_EXCHANGE_NAME,
                           SUBSCRIPTIONS_EXCHANGE_NAME)]
    checks += [("exchange", SUPER_STREAM_NAME,
                lambda ch: ch.exchange_declare(SUPER_STREAM_NAME, "direct", passive=True))]
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
    return ()


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
        "policies": [dead_letter_policy(vhost)],
        "exchanges": [exchange(events_exchange), exchange(dead_letter_exchange), exchange(rpc_exchange),
                      exchange(subscriptions_exchange)] + log_objects["exchanges"],
        "queues": [queue(DEAD_LETTER_QUEUE_NAME, dead_letter_queue.queue_arguments)]
                  + [queue(q.name, q.arguments) for q in CONSUMER_QUEUES] + log_objects["queues"],
        "bindings": [bind(DEAD_LETTER_EXCHANGE_NAME, DEAD_LETTER_QUEUE_NAME, "#")]
                    + [bind(EVENTS_EXCHANGE_NAME, q.name, key) for q in CONSUMER_QUEUES for key in q.binding_keys]
                    + log_objects["bindings"],
    }


def dead_letter_policy(vhost: str = "/") -> dict:
    """The broker policy that makes every consumer queue dead-letter at least once, those an older release
    declared included (in RabbitMQ's definitions format; the management API takes the same fields)."""
    names = "|".join(q.name.replace(".", "\\.") for q in CONSUMER_QUEUES)  # names of [a-z.-] only
    return {"vhost": vhost, "name": DEAD_LETTER_POLICY_NAME, "pattern": f"^({names})$", "apply-to": "queues",
            "priority": DEAD_LETTER_POLICY_PRIORITY,
            "definition": {key.removeprefix("x-"): value for key, value in AT_LEAST_ONCE_DEAD_LETTERING.items()}}
