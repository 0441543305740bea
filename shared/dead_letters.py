"""Operator tools for the dead-letter queue: see what could not be handled, and replay it after a fix.

A replayed message goes back to the queue it died in (through the default exchange), not to the
topic exchange, so only the consumer that failed sees it again; the others already handled it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection, Producer

from shared.bus import DEAD_LETTER_QUEUE_HEADER, DEAD_LETTER_REASON_HEADER
from shared.topology import DEAD_LETTER_QUEUE_NAME


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    event_id: str | None
    event_type: str | None
    queue: str | None           # the queue it died in
    reason: str | None          # rejected, delivery_limit, expired, or a consumer's own (sender_does_not_own_type …)
    routing_key: str | None
    death_count: int

    def as_row(self) -> dict:
        return self.__dict__


def _describe(message) -> DeadLetter:
    headers = message.headers or {}
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths else {}
    try:
        envelope = json.loads(message.body)
        event_id, event_type = envelope.get("id"), envelope.get("type")
    except (ValueError, AttributeError):
        event_id = event_type = None
    routing_keys = first.get("routing-keys") or [message.delivery_info.get("routing_key")]
    return DeadLetter(message_id=message.properties.get("message_id"), event_id=event_id, event_type=event_type,
                      queue=(first.get("queue") or headers.get("x-first-death-queue")
                             or headers.get(DEAD_LETTER_QUEUE_HEADER)),
                      reason=(headers.get(DEAD_LETTER_REASON_HEADER) or first.get("reason")
                              or headers.get("x-first-death-reason")),
                      routing_key=routing_keys[0], death_count=int(first.get("count", 1)))


def _untrusted(message) -> bool:
    """Dead-lettered because its sender may not send it: a forgery is never replayed."""
    return bool((message.headers or {}).get(DEAD_LETTER_REASON_HEADER))


def list_dead_letters(amqp_uri: str, limit: int = 1000) -> list[DeadLetter]:
    """Look without taking: every message is returned to the queue (in order) after reading."""
    found = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for _ in range(limit):
            message = channel.basic_get(DEAD_LETTER_QUEUE_NAME, no_ack=False)
            if message is None:
                break
            found.append(_describe(message))
        channel.close()  # unacknowledged messages go back to the queue
    return found


def replay_dead_letters(amqp_uri: str, *, event_ids: set[str] | None = None, queue: str | None = None,
                        limit: int = 1000) -> int:
    """Send matching dead letters back to the queue they died in; returns how many were replayed."""
    replayed = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        producer = Producer(connection.channel())
        for _ in range(limit):
            message = channel.basic_get(DEAD_LETTER_QUEUE_NAME, no_ack=False)
            if message is None:
                break
            letter = _describe(message)
            wanted = ((event_ids is None or letter.event_id in event_ids)
                      and (queue is None or letter.queue == queue) and letter.queue and not _untrusted(message))
            if not wanted:
                continue  # left unacknowledged: back to the queue when the channel closes
            # The original sender stays the sender: consumers check it. Setting another user's user_id needs
            # an operator account with RabbitMQ's `impersonator` tag (docs/security.md); in development the
            # one shared user sent everything, so the user_id is its own.
            producer.publish(message.body, exchange="", routing_key=letter.queue,
                             content_type=message.properties.get("content_type"),
                             content_encoding=message.properties.get("content_encoding"),
                             delivery_mode=2, message_id=letter.message_id,
                             user_id=message.properties.get("user_id"),
                             headers={"x-sanji-replayed": True})
            channel.basic_ack(message.delivery_tag)
            replayed += 1
        channel.close()
    return replayed
