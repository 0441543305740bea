#!/usr/bin/env python3
"""A department system following its items on the Sanji bus with a plain AMQP client (kombu, not nameko).

Every item event is published to the topic exchange ``sanji.events`` with the routing key

    item.<verb>.<district code>.<level>.<unit code>.<department>

so one binding pattern selects exactly what a department or a unit owns:

    item.*.320113000000.*.*.police        栖霞区 公安: its items at every level of the district
    item.*.*.street.320113003000.*        迈皋桥街道: everything at the street's own desks
    item.routed.#                         a dashboard: every routed item of the city

(A department system's own broker user binds only the first kind, for its own department and units; the
wider patterns are for the city's internal consumers, each with a user of its own.)

Run it beside `make run`:

    .venv/bin/python examples/department_subscriber.py --queue dept-qixia-police.items \\
        --amqp-uri amqp://dept-qixia-police:dev-bus-qixia-police@127.0.0.1:5672/ \\
        --bind 'item.*.320113000000.*.*.police'

A department system connects as its own broker user (config/dev-bus-users.yaml in development). It may
declare queues named after itself, bind them to its own department's keys in its own jurisdiction, and
read them; it may not publish, and the broker refuses any other binding (docs/security.md).

The queue is durable and named by the department, so events published while the department system is
down wait for it. Each body is a CloudEvents 1.0 JSON envelope (content type
application/cloudevents+json); ``data`` holds codes and ids, never personal data. Events can arrive
twice (the bus delivers at least once): dedupe on ``source`` + ``id``.

Once it consumes, a lost connection (the broker restarting, a network fault, the broker cancelling the consumer
when the queue's leader moves) is not the end: the subscriber connects again, after 1, 2, 4 … up to 30 seconds,
declares its queue again and goes on from what the queue kept, and an event whose ack was lost with the
connection comes again (the dedupe above). A refusal is final: a binding or queue outside the department's own
(access refused), a wrong user or virtual host; so is a broker it could not reach at the start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable

from amqp.exceptions import AccessRefused, IrrecoverableConnectionError, RecoverableConnectionError
from kombu import Connection, Exchange, Queue, binding
from kombu.exceptions import OperationalError

# Passive: the exchange is Sanji's. A department's broker user may bind its own queues to it (only with
# keys of its own department and jurisdiction) but not declare it, and never publish.
EXCHANGE = Exchange("sanji.events", type="topic", durable=True, passive=True)


def department_queue(name: str, patterns: Iterable[str]) -> Queue:
    return Queue(name, bindings=[binding(EXCHANGE, routing_key=pattern) for pattern in patterns],
                 durable=True, queue_arguments={"x-queue-type": "quorum"})


# A connection lost (a socket error; the broker closing it, or cancelling the consumer; kombu's OperationalError when
# connecting fails) is tried again. The broker's refusals (IrrecoverableConnectionError, AccessRefused) are not:
# trying again would only be refused again.
LOST_CONNECTION = (OSError, RecoverableConnectionError, OperationalError)
RECONNECT_CAP_SECONDS = 30.0


def subscribe(amqp_uri: str, queue_name: str, patterns: Iterable[str], on_event: Callable[[dict], None], *,
              max_messages: int | None = None, timeout: float | None = None,
              ready: Callable[[], None] | None = None) -> int:
    """Consume events until ``max_messages`` arrived or ``timeout`` seconds passed; returns the count. ``ready`` is
    called once, when the first consumer is in place. A connection lost after that is made again (module
    docstring); one that never got going raises, as a refusal does."""
    received = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    pause, consumed_once = 1.0, False
    while max_messages is None or received < max_messages:
        try:
            received += _consume(amqp_uri, department_queue(queue_name, patterns), on_event, deadline,
                                 None if max_messages is None else max_messages - received,
                                 None if consumed_once else ready)
            break
        except _Lost as lost:
            received += lost.received
            if not (consumed_once or lost.consuming):
                raise lost.__cause__ from None   # never got going: a wrong address or a broker down, say so at once
            if lost.consuming:
                consumed_once, pause = True, 1.0     # it had worked: start the backoff again
            if deadline is not None and time.monotonic() + pause >= deadline:
                break
            print(f"department_subscriber: connection lost ({type(lost.__cause__).__name__}); again in {pause:g}s",
                  file=sys.stderr)
            time.sleep(pause)
            pause = min(pause * 2, RECONNECT_CAP_SECONDS)
    return received


class _Lost(Exception):
    def __init__(self, received: int, consuming: bool):
        super().__init__("connection lost")
        self.received, self.consuming = received, consuming


def _consume(amqp_uri: str, queue: Queue, on_event: Callable[[dict], None], deadline: float | None,
             wanted: int | None, ready: Callable[[], None] | None) -> int:
    """One connection's worth of consuming; raises _Lost (with what it received) when the connection is lost."""
    received, consuming = 0, False
    try:
        with Connection(amqp_uri) as connection:

            def handle(body, message):
                nonlocal received
                # Decode the bytes ourselves: no serializer registration needed for the CloudEvents type.
                on_event(json.loads(message.body))
                message.ack()
                received += 1

            with connection.Consumer(queue, callbacks=[handle], accept=None, no_ack=False) as consumer:
                consumer.qos(prefetch_count=50)
                consuming = True
                if ready is not None:
                    ready()
                while wanted is None or received < wanted:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    try:
                        connection.drain_events(timeout=min(1.0, remaining) if remaining else 1.0)
                    except TimeoutError:
                        continue
    except LOST_CONNECTION as exc:
        raise _Lost(received, consuming) from exc
    return received


def print_event(event: dict) -> None:
    data = event["data"]
    print(json.dumps({"type": event["type"], "case": data.get("case_number"), "matter": data.get("matter_code"),
                      "level": data.get("level"), "unit": data.get("unit_code"),
                      "department": data.get("department_code"), "status": data.get("status"),
                      "promised_deadline": data.get("promised_deadline")}, ensure_ascii=False), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--queue", required=True,
                        help="durable queue named after the department user, e.g. dept-qixia-police.items")
    parser.add_argument("--bind", action="append", required=True, help="topic pattern; repeatable")
    parser.add_argument("--max-messages", type=int)
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args()
    try:
        subscribe(args.amqp_uri, args.queue, args.bind, print_event, max_messages=args.max_messages,
                  timeout=args.timeout, ready=lambda: print(f"listening on {args.queue}", file=sys.stderr))
    except KeyboardInterrupt:
        return 0
    except (AccessRefused, IrrecoverableConnectionError) as exc:
        # a wrong user or password, a binding outside the department's own keys, a queue not named after it, no
        # such virtual host
        print(f"department_subscriber: the broker refused: {exc.reply_text}", file=sys.stderr)
        return 1
    except LOST_CONNECTION as exc:   # at the start: once it consumed, a lost connection is made again
        print(f"department_subscriber: cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
