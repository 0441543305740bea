"""At-least-once dead-lettering of the consumer queues, on the real broker (issue 15).

A quorum queue dead-letters at most once by default: a message its dead-letter exchange cannot deliver is
dropped. Each test makes ``sanji.dead-letters`` refuse (its binding to ``sanji.dead-letter`` removed, so the
dead-letter exchange routes to no queue), rejects an event from a consumer queue, then lets the dead letters
accept again and checks where the event went:

- a queue as this release declares it keeps the event and hands it to ``sanji.dead-letters`` once it is
  bound again;
- a queue as an older release declared it (no strategy in its arguments; RabbitMQ refuses to redeclare it
  with one, and a definitions import leaves it unchanged) does the same under the broker policy of
  ``deploy/rabbitmq/definitions.json``, and the services still start on it;
- without either (the control) the event is lost: what the first two tests tell apart is real.

Why not a "full" dead-letter queue (``max-length`` with ``overflow: reject-publish``), as first tried: a quorum
queue refuses only once it holds *more* than ``max-length`` messages, so one filled to the limit takes one
more; at-most-once dead-lettering enqueues untracked, so even a quorum queue over its limit takes it (the
message "reached a full queue in both modes"); and the management API shows a new policy on a queue only
with its next statistics (every 5 s), which looked like a policy not applied yet. A refused dead letter is
also tried again only after ``dead_letter_worker_publisher_confirm_timeout`` (180 s), too long for a test.
A dead letter that found no route is tried again as soon as the queue's policy changes; the broker would
also try it within 180 s on its own. The tests change a policy on the queue (``nudge``) to get it at once.
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import unquote, urlparse

import pytest
from kombu import Connection

from shared.bus import at_most_once_queues
from shared.topology import (
    CONSUMER_QUEUE_ARGUMENTS,
    CONSUMER_QUEUES,
    DEAD_LETTER_EXCHANGE_NAME,
    DEAD_LETTER_POLICY_NAME,
    DEAD_LETTER_QUEUE_NAME,
    EVENTS_EXCHANGE_NAME,
    ROUTING_CASE_SUBMITTED,
    dead_letter_policy,
    declare_topology,
    events_exchange,
)
from tests.integration.test_topology_broker import import_definitions

pytestmark = pytest.mark.integration

QUEUE = ROUTING_CASE_SUBMITTED.name
ROUTING_KEY = "case.submitted.320113000000.320113003021"


def declare_as_an_older_release(amqp_uri: str) -> None:
    """The topology as the release before at-least-once dead-lettering declared it."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.exchange_declare(EVENTS_EXCHANGE_NAME, "topic", durable=True, auto_delete=False)
        channel.exchange_declare(DEAD_LETTER_EXCHANGE_NAME, "topic", durable=True, auto_delete=False)
        channel.queue_declare(DEAD_LETTER_QUEUE_NAME, durable=True, auto_delete=False,
                              arguments={"x-queue-type": "quorum"})
        channel.queue_bind(DEAD_LETTER_QUEUE_NAME, DEAD_LETTER_EXCHANGE_NAME, "#")
        for consumer_queue in CONSUMER_QUEUES:
            channel.queue_declare(consumer_queue.name, durable=True, auto_delete=False,
                                  arguments=dict(CONSUMER_QUEUE_ARGUMENTS))
            for key in consumer_queue.binding_keys:
                channel.queue_bind(consumer_queue.name, EVENTS_EXCHANGE_NAME, key)


def reject_while_the_dead_letters_refuse(amqp_uri: str) -> str:
    """Unbind the dead letters, publish an event to the consumer queue, take it and reject it (no requeue)."""
    event_id = str(uuid.uuid4())
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        channel.queue_unbind(DEAD_LETTER_QUEUE_NAME, DEAD_LETTER_EXCHANGE_NAME, "#")
        connection.Producer(channel, exchange=events_exchange, auto_declare=False).publish(
            json.dumps({"id": event_id}), routing_key=ROUTING_KEY, message_id=event_id, delivery_mode=2,
            retry=False)
        message = channel.basic_get(QUEUE, no_ack=False)
        assert message is not None and message.properties["message_id"] == event_id
        channel.basic_reject(message.delivery_tag, requeue=False)
    return event_id


def let_the_dead_letters_accept(amqp_uri: str, rabbit_manager, vhost: str, definition: dict) -> None:
    """Bind the dead letters again, and nudge the queue's dead-letter worker with a policy change.

    The nudge policy takes the place of the queue's policy while it applies (one policy applies to a queue),
    so it carries that policy's ``definition``; the dead-letter exchange it adds is the queue's own."""
    with Connection(amqp_uri) as connection:
        connection.channel().queue_bind(DEAD_LETTER_QUEUE_NAME, DEAD_LETTER_EXCHANGE_NAME, "#")
    rabbit_manager._put("policies", vhost, "test-nudge", json={
        "pattern": f"^{QUEUE.replace('.', chr(92) + '.')}$", "apply-to": "queues", "priority": 100,
        "definition": {**definition, "dead-letter-exchange": DEAD_LETTER_EXCHANGE_NAME}})


def dead_letters(amqp_uri: str, *, wait: float) -> list:
    """Take everything from the dead letters, waiting up to ``wait`` seconds for the first message."""
    found, deadline = [], time.monotonic() + wait
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        while True:
            message = channel.basic_get(DEAD_LETTER_QUEUE_NAME, no_ack=True)
            if message is not None:
                found.append(message)
                continue
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def queue_stats(rabbit_manager, vhost: str, until, timeout: float = 12.0) -> dict:
    """The management API's view of the consumer queue once ``until`` holds (it refreshes every 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = rabbit_manager.get_queue(vhost, QUEUE)
        if until(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.25)


def at_most_once(rabbit_config, rabbit_manager) -> set[str]:
    """What ``sanji bus setup`` and ``make run`` report from the management API."""
    uri = urlparse(rabbit_config["AMQP_URI"])
    admin = (unquote(uri.username), unquote(uri.password))
    return set(at_most_once_queues(rabbit_manager._base_url.removesuffix("/api"), admin, rabbit_config["vhost"]))


def assert_dead_lettered_once(found: list, event_id: str) -> None:
    assert [message.properties["message_id"] for message in found] == [event_id]
    (death,) = found[0].headers["x-death"]
    assert (death["queue"], death["reason"]) == (QUEUE, "rejected")


def test_a_consumer_queue_keeps_a_dead_letter_until_the_dead_letters_take_it(rabbit_config, rabbit_manager):
    amqp_uri, vhost = rabbit_config["AMQP_URI"], rabbit_config["vhost"]
    with Connection(amqp_uri) as connection:
        assert declare_topology(connection) == ()
    # Without the policy, this release's queues dead-letter at most once (the strategy is the policy's alone).
    assert at_most_once(rabbit_config, rabbit_manager) == {queue.name for queue in CONSUMER_QUEUES}
    policy = dead_letter_policy(vhost)
    rabbit_manager._put("policies", vhost, policy["name"], json={k: v for k, v in policy.items()
                                                                  if k not in ("name", "vhost")})
    queue_stats(rabbit_manager, vhost, lambda stats: stats.get("policy") == DEAD_LETTER_POLICY_NAME)
    assert at_most_once(rabbit_config, rabbit_manager) == set()

    event_id = reject_while_the_dead_letters_refuse(amqp_uri)

    # Held by the queue as a dead letter not yet delivered, not consumable, not dropped.
    stats = queue_stats(rabbit_manager, vhost, lambda stats: stats.get("messages_dlx"))
    assert stats.get("messages_dlx") == 1, f"the rejected event is not kept: {stats}"
    assert dead_letters(amqp_uri, wait=0) == []
    let_the_dead_letters_accept(amqp_uri, rabbit_manager, vhost, policy["definition"])
    assert_dead_lettered_once(dead_letters(amqp_uri, wait=5), event_id)


def test_queues_of_an_older_release_dead_letter_at_least_once_under_the_definitions_policy(
        rabbit_config, rabbit_manager):
    amqp_uri, vhost = rabbit_config["AMQP_URI"], rabbit_config["vhost"]
    declare_as_an_older_release(amqp_uri)
    assert at_most_once(rabbit_config, rabbit_manager) == {queue.name for queue in CONSUMER_QUEUES}
    # The upgrade: the broker imports this release's definitions (its boot), then the services declare.
    import_definitions(rabbit_manager, vhost)
    assert rabbit_manager.get_queue(vhost, QUEUE)["arguments"] == CONSUMER_QUEUE_ARGUMENTS, \
        "a definitions import changes no existing queue: the policy must do it"
    with Connection(amqp_uri) as connection:
        assert declare_topology(connection) == ()   # the same arguments as this release's
        assert declare_topology(connection) == ()   # and again
    policy = queue_stats(rabbit_manager, vhost, lambda stats: stats.get("policy") == DEAD_LETTER_POLICY_NAME)
    assert policy.get("effective_policy_definition") == dead_letter_policy(vhost)["definition"], policy
    assert at_most_once(rabbit_config, rabbit_manager) == set()

    event_id = reject_while_the_dead_letters_refuse(amqp_uri)

    assert dead_letters(amqp_uri, wait=1) == []
    let_the_dead_letters_accept(amqp_uri, rabbit_manager, vhost, dead_letter_policy(vhost)["definition"])
    assert_dead_lettered_once(dead_letters(amqp_uri, wait=5), event_id)


def test_control_without_the_strategy_the_dead_letter_is_lost(rabbit_config, rabbit_manager):
    """At most once, as a queue of an older release is on a broker without the policy: the event is gone."""
    amqp_uri, vhost = rabbit_config["AMQP_URI"], rabbit_config["vhost"]
    declare_as_an_older_release(amqp_uri)
    assert ROUTING_CASE_SUBMITTED.name in at_most_once(rabbit_config, rabbit_manager)

    reject_while_the_dead_letters_refuse(amqp_uri)

    let_the_dead_letters_accept(amqp_uri, rabbit_manager, vhost, {})
    # The same nudge delivers a kept dead letter within a second (the tests above): three are plenty.
    assert dead_letters(amqp_uri, wait=3) == []
    with Connection(amqp_uri) as connection:
        assert connection.channel().basic_get(QUEUE, no_ack=True) is None
    # The two counters arrive in separate refreshes of the management API: wait for both.
    stats = queue_stats(
        rabbit_manager, vhost, lambda stats: None not in (stats.get("messages"), stats.get("messages_dlx"))
    )
    assert (stats.get("messages"), stats.get("messages_dlx")) == (0, 0), stats
