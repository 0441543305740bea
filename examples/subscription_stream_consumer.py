#!/usr/bin/env python3
"""A department system reading its Sanji subscription's stream with a plain AMQP client (kombu).

Create a queue subscription (README, "How a department follows its items"); the answer names the stream
(``sink.stream``, e.g. ``dept-qixia-police.sub-1a2b3c4d5e6f``) and the broker user that may read it (the
department's own). Then:

    .venv/bin/python examples/subscription_stream_consumer.py --stream dept-qixia-police.sub-1a2b3c4d5e6f \\
        --amqp-uri amqp://dept-qixia-police:dev-bus-qixia-police@127.0.0.1:5672/ --offset first

The stream holds only the events of the subscription's scope and filters, for the retention period (30 days by
default), whether or not they were read: start from ``first``, ``last``, ``next``, an offset (a number) or a time
(``--offset 2026-12-01T08:00:00+08:00``), as often as needed (a catch-up after downtime is a restart from the last
offset you stored). AMQP 0-9-1 needs a prefetch and manual acknowledgements on a stream. The department user may
only read it: Sanji's subscriptions service declares it, fills it and deletes it with the subscription.

Each message body is a CloudEvents 1.0 JSON envelope; its ``x-stream-offset`` header is the offset to store.
Delivery is at least once: dedupe on the CloudEvent ``id``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime

from kombu import Connection, Queue


def offset_argument(text: str):
    """first, last, next, a number, or an ISO time (sent as an AMQP timestamp)."""
    if text in ("first", "last", "next"):
        return text
    if text.isdigit():
        return int(text)
    return datetime.fromisoformat(text)


def consume(amqp_uri: str, stream: str, on_event: Callable[[dict, int | None], None], *, offset="first",
            max_messages: int | None = None, timeout: float | None = None, prefetch: int = 100,
            ready: Callable[[], None] | None = None) -> int:
    """Read the stream from ``offset`` until ``max_messages`` arrived or ``timeout`` seconds passed."""
    received = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    with Connection(amqp_uri) as connection:
        # no_declare: the stream is Sanji's; the department's user may read it, not declare it.
        queue = Queue(stream, no_declare=True, consumer_arguments={"x-stream-offset": offset})

        def handle(body, message):
            nonlocal received
            on_event(json.loads(message.body), (message.headers or {}).get("x-stream-offset"))
            message.ack()
            received += 1

        # The prefetch is required on a stream, and must be set before the consume: prefetch_count does both.
        with connection.Consumer(queue, callbacks=[handle], accept=None, no_ack=False, prefetch_count=prefetch):
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


def print_event(event: dict, offset: int | None) -> None:
    data = event.get("data") or {}
    print(json.dumps({"offset": offset, "id": event.get("id"), "type": event.get("type"),
                      "case": data.get("case_number"), "matter": data.get("matter_code"), "unit": data.get("unit_code"),
                      "status": data.get("status")}, ensure_ascii=False), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-uri", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--offset", default="first", type=offset_argument)
    parser.add_argument("--max-messages", type=int)
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args()
    try:
        consume(args.amqp_uri, args.stream, print_event, offset=args.offset, max_messages=args.max_messages,
                timeout=args.timeout, ready=lambda: print(f"reading {args.stream}", file=sys.stderr))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"subscription_stream_consumer: cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
