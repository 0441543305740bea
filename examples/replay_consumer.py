#!/usr/bin/env python3
"""A department system replaying its events through the broker with the RabbitMQ stream protocol (rstream,
asyncio): it resumes where it stopped, from an offset the broker keeps for it under a consumer name.

A department consumes the stream of one of its subscriptions (``<its broker user>.sub-<id>``, holding only the
events of its own scope; the subscriptions service creates it), never the raw district log (``sanji.event-log-
<district>``), which only the subscriptions service's user may read (docs/replay.md). The stream protocol
listens on port 5552 (the ``rabbitmq_stream`` plugin).

    .venv/bin/python examples/replay_consumer.py --stream dept-qixia-police.sub-0123456789ab \\
        --name police-replica-1 --user dept-qixia-police --password dev-bus-qixia-police

- First run: from ``--since`` (an ISO time: the broker attaches at the chunk written at that time, and events
  whose CloudEvents ``time`` is earlier are skipped here), else from the first event kept.
- Every ``--store-every`` events and on the way out the offset of the last event handled is stored on the broker
  under ``--name``; the next run starts right after it, whatever ``--since`` says. After an hour down it gets
  exactly the events it missed.
- Events arrive at least once (a crash between handling and storing replays a few): dedupe on ``source`` + ``id``.

It prints one JSON line per event, ``{"offset": …, "event": {…}}``; ``--idle-exit N`` stops after N seconds
without an event (for scripts and tests), otherwise it follows the stream until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from rstream import Consumer, ConsumerOffsetSpecification, MessageContext, OffsetNotFound, OffsetType, ServerError

DEFAULT_STORE_EVERY = 1000


def amqp_body(data: bytes) -> bytes:
    """The body of a message as the broker stores it in a stream (AMQP 1.0 sections: header, annotations,
    properties, application properties, then the body's data sections).

    rstream's ``amqp_decoder`` decodes every section into Python objects; a replay needs only the body, and
    skipping the other sections by their encoded sizes is several times cheaper. A message that is not AMQP 1.0
    (a raw stream-protocol publish) is its own body.
    """
    view = memoryview(data)
    if not data or data[0] != 0x00:
        return bytes(data)
    position, end, body = 0, len(data), []
    while position < end:
        if view[position] != 0x00:
            raise ValueError(f"not an AMQP 1.0 section at byte {position}")
        code, position = _descriptor(view, position + 1)
        if code in (0x75, 0x77):  # data (one binary), or amqp-value holding a binary or a string
            start, length = _binary(view, position)
            body.append(view[start:start + length])
            position = start + length
        else:
            position = _skip(view, position)
        if position > end:
            raise ValueError("a truncated AMQP 1.0 message")
    return b"".join(body)


_FIXED = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}


def _descriptor(view: memoryview, position: int) -> tuple[int | None, int]:
    constructor = view[position]
    if constructor == 0x53:  # smallulong: the section codes RabbitMQ writes
        return view[position + 1], position + 2
    if constructor == 0x80:
        return int.from_bytes(view[position + 1:position + 9], "big"), position + 9
    return None, _skip(view, position)  # a symbolic descriptor: not a section this reads


def _binary(view: memoryview, position: int) -> tuple[int, int]:
    constructor = view[position]
    if constructor in (0xa0, 0xa1, 0xa3):
        return position + 2, view[position + 1]
    if constructor in (0xb0, 0xb1, 0xb3):
        return position + 5, int.from_bytes(view[position + 1:position + 5], "big")
    raise ValueError(f"a body of type 0x{constructor:02x} is not bytes")


def _skip(view: memoryview, position: int) -> int:
    """The position after the encoded value at ``position``."""
    constructor = view[position]
    if constructor == 0x00:  # described: a descriptor, then the value
        return _skip(view, _skip(view, position + 1))
    category = constructor >> 4
    if category in _FIXED:
        return position + 1 + _FIXED[category]
    if category in (0xa, 0xc, 0xe):  # one-byte size
        return position + 2 + view[position + 1]
    if category in (0xb, 0xd, 0xf):  # four-byte size
        return position + 5 + int.from_bytes(view[position + 1:position + 5], "big")
    raise ValueError(f"unknown AMQP 1.0 constructor 0x{constructor:02x}")


def event_of(data: bytes) -> dict:
    return json.loads(amqp_body(data))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def start_offset(consumer: Consumer, stream: str, name: str,
                       since: datetime | None) -> tuple[ConsumerOffsetSpecification, str]:
    """Right after the offset stored under ``name``; else from ``since``; else from the first event kept."""
    try:
        stored = await consumer.query_offset(stream, name)
        return ConsumerOffsetSpecification(OffsetType.OFFSET, stored + 1), f"stored offset {stored}"
    except OffsetNotFound:
        pass
    if since is not None:
        milliseconds = int(_aware(since).timestamp() * 1000)
        return ConsumerOffsetSpecification(OffsetType.TIMESTAMP, milliseconds), f"time {since.isoformat()}"
    return ConsumerOffsetSpecification(OffsetType.FIRST), "the first event kept"


async def replay(*, host: str, port: int, vhost: str, user: str, password: str, stream: str, name: str,
                 on_event: Callable[[int, dict], None], since: datetime | None = None,
                 idle_exit: float | None = None, store_every: int = DEFAULT_STORE_EVERY,
                 load_balancer_mode: bool = False) -> int:
    """Consume ``stream`` as ``name`` from where it stopped, calling ``on_event(offset, event)``; returns how many
    events were handled. The last handled offset is stored every ``store_every`` events and on the way out."""
    since = _aware(since) if since else None
    consumer = Consumer(host, port, vhost=vhost, username=user, password=password,
                        load_balancer_mode=load_balancer_mode, connection_name=f"sanji-replay-{name}")
    await consumer.start()
    handled, last_offset, stored_offset = 0, None, None
    activity = asyncio.Event()

    async def store(offset: int) -> None:
        nonlocal stored_offset
        await consumer.store_offset(stream, name, offset)
        stored_offset = offset

    async def on_message(data: bytes, context: MessageContext) -> None:
        nonlocal handled, last_offset
        activity.set()
        event = event_of(data)
        if since is not None and _event_time(event) is not None and _event_time(event) < since:
            return  # the chunk attached at began a little before it
        on_event(context.offset, event)
        handled += 1
        last_offset = context.offset
        if handled % store_every == 0:
            await store(context.offset)

    try:
        offset_specification, described = await start_offset(consumer, stream, name, since)
        print(f"replaying {stream} as {name!r} from {described}", file=sys.stderr)
        # No decoder: the callback gets the stored bytes and takes the body itself (amqp_body).
        await consumer.subscribe(stream, on_message, offset_specification=offset_specification,
                                 subscriber_name=name, initial_credit=20)
        while True:
            activity.clear()
            try:
                await asyncio.wait_for(activity.wait(), timeout=idle_exit)
            except TimeoutError:
                break
    finally:
        if last_offset is not None and last_offset != stored_offset:  # also when interrupted
            await store(last_offset)
            await _until_stored(consumer, stream, name, last_offset)
        await consumer.close()
    return handled


async def _until_stored(consumer: Consumer, stream: str, name: str, offset: int, seconds: float = 5.0) -> None:
    """The protocol's store has no answer: ask until the broker reports it, so a restart right after resumes
    after this offset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        try:
            if await consumer.query_offset(stream, name) >= offset:
                return
        except OffsetNotFound:
            pass
        await asyncio.sleep(0.05)


def _event_time(event: dict) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(event["time"]))
    except (KeyError, TypeError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", required=True, help="the stream to replay (your subscription's)")
    parser.add_argument("--name", required=True, help="consumer name: the broker keeps its offset under it")
    parser.add_argument("--since", type=datetime.fromisoformat, help="first run only: from this time (ISO 8601)")
    parser.add_argument("--host", default=os.environ.get("SANJI_STREAM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANJI_STREAM_PORT", "5552")))
    parser.add_argument("--vhost", default=os.environ.get("SANJI_STREAM_VHOST", "/"))
    parser.add_argument("--user", default=os.environ.get("SANJI_STREAM_USER", "guest"))
    parser.add_argument("--password", default=os.environ.get("SANJI_STREAM_PASSWORD", "guest"))
    parser.add_argument("--idle-exit", type=float, help="stop after this many seconds without an event")
    parser.add_argument("--store-every", type=int, default=DEFAULT_STORE_EVERY)
    parser.add_argument("--load-balancer-mode", action="store_true",
                        help="behind a load balancer or NAT: connect to --host even when the broker advertises "
                             "another address")
    args = parser.parse_args(argv)

    def on_event(offset: int, event: dict) -> None:
        print(json.dumps({"offset": offset, "event": event}, ensure_ascii=False), flush=True)

    try:
        handled = asyncio.run(replay(host=args.host, port=args.port, vhost=args.vhost, user=args.user,
                                     password=args.password, stream=args.stream, name=args.name, on_event=on_event,
                                     since=args.since, idle_exit=args.idle_exit, store_every=args.store_every,
                                     load_balancer_mode=args.load_balancer_mode))
    except KeyboardInterrupt:
        return 130
    except ServerError as exc:  # e.g. access refused: a department may read only its own subscription streams
        print(f"the broker refused: {exc}", file=sys.stderr)
        return 1
    print(f"handled {handled} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
