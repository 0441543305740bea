"""Bus helpers for tests: publish raw messages, read a queue, follow events with the example subscriber."""

from __future__ import annotations

import json
import time

import eventlet
from kombu import Connection, Producer

from examples import department_subscriber  # the runnable example is the code under test
from shared.bus import user_of_uri
from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.topology import DEAD_LETTER_QUEUE_NAME, declare_topology, events_exchange


def publish_raw(amqp_uri: str, body, routing_key: str, content_type: str = CLOUDEVENTS_CONTENT_TYPE, *,
                declare: bool = True, signed: bool = True) -> None:
    """Publish as the URI's user, with ``user_id`` set to it as the relay does (``signed=False``: without)."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        if declare:
            declare_topology(connection)
        producer = Producer(connection.channel(), exchange=events_exchange, auto_declare=False)
        payload = body if isinstance(body, str | bytes) else json.dumps(body)
        properties = {"user_id": user_of_uri(amqp_uri)} if signed else {}
        producer.publish(payload, routing_key=routing_key, content_type=content_type, content_encoding="utf-8",
                         delivery_mode=2, retry=False, **properties)


def drain_queue(amqp_uri: str, queue_name: str, *, expect: int, timeout: float = 10.0) -> list:
    """Get messages from a queue until ``expect`` arrived or the timeout passed."""
    messages = []
    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        while len(messages) < expect and time.monotonic() < deadline:
            message = channel.basic_get(queue_name, no_ack=True)
            if message is None:
                eventlet.sleep(0.05)
                continue
            messages.append(message)
    return messages


def dead_letters(amqp_uri: str, expect: int, timeout: float = 15.0) -> list:
    return drain_queue(amqp_uri, DEAD_LETTER_QUEUE_NAME, expect=expect, timeout=timeout)


class EventFollower:
    """Runs the example department subscriber in a greenthread and collects what it receives."""

    def __init__(self, amqp_uri: str, queue_name: str, *patterns: str):
        self.events: list[dict] = []
        self.arrival_times: list[float] = []
        ready = eventlet.Event()

        def on_event(event):
            self.events.append(event)
            self.arrival_times.append(time.monotonic())

        self._thread = eventlet.spawn(department_subscriber.subscribe, amqp_uri, queue_name, patterns, on_event,
                                      timeout=60, ready=lambda: ready.send(True))
        ready.wait()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            eventlet.sleep(0.01)
        return self.events

    def settle(self, seconds: float = 0.5) -> list[dict]:
        """Wait a little longer, so an event that should not arrive has its chance to."""
        eventlet.sleep(seconds)
        return self.events

    def stop(self):
        self._thread.kill()


def close_connections_of(rabbit_manager, vhost: str, timeout: float = 20.0) -> int:
    """Close every connection of the vhost through the management API (once they are listed there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connections = [c for c in rabbit_manager.get_connections() if c.get("vhost") == vhost]
        if connections:
            for connection in connections:
                rabbit_manager.delete_connection(connection["name"])
            return len(connections)
        eventlet.sleep(0.25)
    raise AssertionError(f"no connection of vhost {vhost} appeared in the management API")
