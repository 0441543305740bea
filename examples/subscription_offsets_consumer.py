#!/usr/bin/env python3
"""A department system consuming its Sanji subscription's stream with the RabbitMQ stream protocol (rstream,
asyncio), its offset stored ON THE BROKER under a consumer name, and deduping on the CloudEvent id.

Create a queue subscription (README, "A stream in five minutes"); the answer names the stream
(``sink.stream``) and the broker user that may read it. Then, with the stream protocol on port 5552:

    .venv/bin/python examples/subscription_offsets_consumer.py --stream dept-qixia-police.sub-1a2b3c4d5e6f \\
        --name police-cases --user dept-qixia-police --password dev-bus-qixia-police --seen-file police.seen

- It resumes right after the last offset it stored under ``--name`` (the broker keeps it, in the stream itself),
  so after downtime it gets exactly the events it missed; a first run starts from ``--since`` or the first event
  kept. The reading and the offset store are ``examples/replay_consumer.py``'s.
- Delivery is at least once, and a replay (``POST /v1/subscriptions/{id}/replay``) appends the replayed events
  to the stream **again, with the same CloudEvent id**: the consumer dedupes on ``id``. It remembers the last
  ``--remember`` ids it handled (in ``--seen-file`` between runs) and skips an id it has seen.

It prints one JSON line per event handled, ``{"offset": …, "event": {…}}``, and at the end how many it handled
and how many duplicates it skipped (stderr). ``--idle-exit N`` stops after N seconds without a message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

try:  # run as a script (examples/ on the path) or imported as examples.subscription_offsets_consumer
    import replay_consumer
except ImportError:  # pragma: no cover - the import path of the test suite
    from examples import replay_consumer

DEFAULT_REMEMBER = 100_000


class SeenIds:
    """The ids handled most recently (a bounded memory, oldest forgotten first), kept in a file between runs."""

    def __init__(self, path: Path | None, remember: int = DEFAULT_REMEMBER):
        self.path, self.remember = path, remember
        self.ids: OrderedDict[str, None] = OrderedDict()
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line:
                    self.ids[line] = None

    def first_time(self, event_id: str) -> bool:
        if event_id in self.ids:
            return False
        self.ids[event_id] = None
        while len(self.ids) > self.remember:
            self.ids.popitem(last=False)
        return True

    def save(self) -> None:
        if self.path is not None:
            temporary = self.path.with_suffix(self.path.suffix + ".tmp")
            temporary.write_text("".join(f"{event_id}\n" for event_id in self.ids), encoding="utf-8")
            temporary.replace(self.path)


async def consume(*, stream: str, name: str, on_event: Callable[[int, dict], None], seen: SeenIds,
                  host: str = "127.0.0.1", port: int = 5552, vhost: str = "/", user: str, password: str,
                  since: datetime | None = None, idle_exit: float | None = None) -> tuple[int, int]:
    """Consume from the stored offset; ``on_event`` for each id not seen before. (handled, duplicates)."""
    counts = {"handled": 0, "duplicates": 0}

    def deduped(offset: int, event: dict) -> None:
        if not seen.first_time(str(event.get("id"))):
            counts["duplicates"] += 1
            return
        on_event(offset, event)
        counts["handled"] += 1

    try:
        # The offset is stored after each event handled is in ``seen`` (store_every=1 keeps the window of
        # at-least-once small; a busy consumer stores every few hundred).
        await replay_consumer.replay(host=host, port=port, vhost=vhost, user=user, password=password,
                                     stream=stream, name=name, on_event=deduped, since=since, idle_exit=idle_exit,
                                     store_every=1)
    finally:
        seen.save()
    return counts["handled"], counts["duplicates"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", required=True, help="your subscription's stream (sink.stream)")
    parser.add_argument("--name", required=True, help="consumer name: the broker keeps its offset under it")
    parser.add_argument("--since", type=datetime.fromisoformat, help="first run only: from this time (ISO 8601)")
    parser.add_argument("--seen-file", type=Path, help="where the ids already handled are kept between runs")
    parser.add_argument("--remember", type=int, default=DEFAULT_REMEMBER, help="how many recent ids to remember")
    parser.add_argument("--host", default=os.environ.get("SANJI_STREAM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANJI_STREAM_PORT", "5552")))
    parser.add_argument("--vhost", default=os.environ.get("SANJI_STREAM_VHOST", "/"))
    parser.add_argument("--user", required=True, help="your department's broker user")
    parser.add_argument("--password", default=os.environ.get("SANJI_STREAM_PASSWORD", ""))
    parser.add_argument("--idle-exit", type=float, help="stop after this many seconds without a message")
    args = parser.parse_args(argv)

    def on_event(offset: int, event: dict) -> None:
        print(json.dumps({"offset": offset, "event": event}, ensure_ascii=False), flush=True)

    try:
        handled, duplicates = asyncio.run(consume(
            stream=args.stream, name=args.name, on_event=on_event, seen=SeenIds(args.seen_file, args.remember),
            host=args.host, port=args.port, vhost=args.vhost, user=args.user, password=args.password,
            since=args.since, idle_exit=args.idle_exit))
    except KeyboardInterrupt:
        return 130
    except replay_consumer.ServerError as exc:   # access refused: only your own subscription streams
        print(f"the broker refused: {exc}", file=sys.stderr)
        return 1
    print(f"handled {handled} events, skipped {duplicates} duplicates", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
