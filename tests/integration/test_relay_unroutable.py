"""The outbox relay publishes with ``mandatory``: an event no queue is bound to is noticed, not silently dropped
(issue 15).

RabbitMQ confirms a message that no queue takes (the exchange routed it nowhere), so with ``mandatory=False``
the relay marked such an event published and nobody ever knew. Now the broker returns it, and the relay
counts it (``sanji_relay_unroutable_total`` by event type) and logs a warning with its id, type and routing
key. It still marks the row published: the broker has it confirmed, and holding the row back would stop
every later event of the outbox behind it (docs/reliability.md). In the test's vhost the subscriptions
queue's binding ``#``, the event log partitions' bindings and the notification queue's binding ``rectification.#``
are removed (bindings missing),
so ``rating.submitted`` and ``rectification.opened`` reach no queue, and ``supervision-order.issued`` reaches
the notification queue.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from kombu import Connection
from sqlalchemy import select

from shared.clock import SystemClock
from shared.db import session_factory, shared_engine
from shared.event_catalogue import event_type
from shared.events import TYPE_PREFIX
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxMessage
from shared.relay import OutboxRelay
from shared.topology import EVENTS_EXCHANGE_NAME, NOTIFICATION_EVENTS, SUBSCRIPTIONS_EVENTS
from tests.support.bus import drain_queue

pytestmark = pytest.mark.integration

RATING = TYPE_PREFIX + "rating.submitted.v1"
RECTIFICATION = TYPE_PREFIX + "rectification.opened.v2"
ROUTED = TYPE_PREFIX + "supervision-order.issued.v1"


def add_event(factory, type_: str) -> OutboxMessage:
    """The catalogue's example of a type, with an id of its own, in the evaluation service's outbox."""
    entry = event_type(type_)
    body = dict(entry["example"], id=str(uuid.uuid4()))
    row = OutboxMessage(event_id=body["id"], source=body["source"], event_type=type_,
                        routing_key=entry["example_routing_key"], body=json.dumps(body, ensure_ascii=False),
                        created_at=SystemClock().now())
    with factory() as session, session.begin():
        session.add(row)
    return row


def unroutable(metrics: ServiceMetrics, type_: str) -> float | None:
    return metrics.registry.get_sample_value("sanji_relay_unroutable_total", {"event_type": type_})


def bindings(amqp_uri: str, change: str) -> None:
    """Remove (``queue_unbind``) or restore (``queue_bind``) the bindings the test takes away: the event log's
    partitions take every event too (shared/event_log.py), so their district patterns go as well."""
    from shared.event_log import configured_layout

    taken_away = [(SUBSCRIPTIONS_EVENTS.name, "#"), (NOTIFICATION_EVENTS.name, "rectification.#")]
    taken_away += [(partition.name, key) for partition in configured_layout().partitions
                   for key in partition.event_binding_keys()]
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for queue, key in taken_away:
            getattr(channel, change)(queue, EVENTS_EXCHANGE_NAME, key)


def published_at(factory, event_id: str):
    with factory() as session:
        return session.scalars(select(OutboxMessage.published_at).where(OutboxMessage.event_id == event_id)).one()


def test_an_event_no_queue_takes_is_counted_logged_and_marked_published(rabbit_config, database_url, caplog):
    caplog.set_level(logging.WARNING)
    amqp_uri = rabbit_config["AMQP_URI"]
    factory = session_factory(shared_engine(database_url))
    metrics = ServiceMetrics("evaluation")
    relay = OutboxRelay(factory, amqp_uri=amqp_uri, source="/sanji/evaluation", clock=SystemClock(),
                        metrics=metrics)
    # The series exist at zero before anything happened (an alert's increase needs them).
    types = (RATING, RECTIFICATION, ROUTED)
    assert {type_: unroutable(metrics, type_) for type_ in types} == dict.fromkeys(types, 0.0)
    try:
        first = add_event(factory, ROUTED)
        assert relay.publish_pending() == 1  # connected, and the topology declared (bindings included)
        assert drain_queue(amqp_uri, NOTIFICATION_EVENTS.name, expect=1, timeout=2)[0].properties["message_id"] \
            == first.event_id
        bindings(amqp_uri, "queue_unbind")

        rating, rectification, routed = (add_event(factory, type_) for type_ in types)
        assert relay.publish_pending() == 3

        assert {type_: unroutable(metrics, type_) for type_ in types} == {RATING: 1.0, RECTIFICATION: 1.0,
                                                                          ROUTED: 0.0}
        for row in (rating, rectification, routed):
            assert published_at(factory, row.event_id) is not None, "an unroutable event must not block the outbox"
        (delivered,) = drain_queue(amqp_uri, NOTIFICATION_EVENTS.name, expect=1, timeout=2)
        assert delivered.properties["message_id"] == routed.event_id
        warnings = [record.getMessage() for record in caplog.records
                    if record.levelno >= logging.WARNING and "unroutable" in record.getMessage()]
        assert len(warnings) == 2, warnings
        for row, warning in zip((rating, rectification), warnings, strict=True):
            assert row.event_id in warning and row.event_type in warning and row.routing_key in warning
            assert '"data"' not in warning and "rating_level" not in warning  # no payload in the log

        # The bindings back: the relay goes on, the next one is routed and not counted, nothing published twice.
        bindings(amqp_uri, "queue_bind")
        again = add_event(factory, RECTIFICATION)
        assert relay.publish_pending() == 1
        assert published_at(factory, again.event_id) is not None
        assert {type_: unroutable(metrics, type_) for type_ in types} == {RATING: 1.0, RECTIFICATION: 1.0,
                                                                          ROUTED: 0.0}
        (delivered,) = drain_queue(amqp_uri, NOTIFICATION_EVENTS.name, expect=1, timeout=2)
        assert delivered.properties["message_id"] == again.event_id
        assert metrics.registry.get_sample_value("sanji_relay_published_total") == 5.0
        assert relay.broker_link.up is True
    finally:
        relay._reset_connection()
