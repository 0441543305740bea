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
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable

from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Queue, binding

# Passive: the exchange is Sanji's. A department's broker user may bind its own queues to it (only with
# keys of its own department and jurisdiction) but not declare it, and never publish.
EXCHANGE = Exchange("sanji.events", type="topic", durable=True, passive=True)


def department_queue(name: str, patterns: Iterable[str]) -> Queue:
    return Queue(name, bindings=[binding(EXCHANGE, routing_key=pattern) for pattern in patterns],
                 durable=True, queue_arguments={"x-queue-type": "quorum"})


def subscribe(amqp_uri: str, queue_name: str, patterns: Iterable[str], on_event: Callable[[dict], None], *,
              max_messages: int | None = None, timeout: float | None = None,
              ready: Callable[[], None] | None = None) -> int:
    """Consume events until ``max_messages`` arrived or ``timeout`` seconds passed; returns the count."""
    received = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    with Connection(amqp_uri) as connection:
        queue = department_queue(queue_name, patterns)

        def handle(body, message):
            nonlocal received
            # Decode the bytes ourselves: no serializer registration needed for the CloudEvents type.
            on_event(json.loads(message.body))
            message.ack()
            received += 1

        with connection.Consumer(queue, callbacks=[handle], accept=None, no_ack=False) as consumer:
            consumer.qos(prefetch_count=50)
            if ready is not None:
                ready()
            while max_messages is None or received < max_messages:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    connection.drain_events(timeout=min(1.0, remaining) if remaining else 1.0)
                except TimeoutError:
                    continue
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
    except AccessRefused as exc:  # a binding outside the department's own keys, a queue not named after it
        print(f"department_subscriber: the broker refused: {exc.reply_text}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"department_subscriber: cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
