"""`make bench-replay`: replaying 1,000,000 events of the event log, target 20,000 events/s (docs/replay.md).

How it measures:

1. **Load** (once; the stream is kept between runs, in the broker vhost ``sanji-bench-replay``): 1,000,000
   CloudEvents of the project's own shapes (the notification service's sample events of every kind, each with a
   fresh id, subject and time, 600-900 bytes of JSON) into one district partition, ``sanji.event-log-320113000000``
   (a stream declared as shared/event_log.py declares it). Loaded with the stream protocol (rstream), batches of
   1,000 pre-encoded AMQP 1.0 messages, every publish confirmed; the load rate is printed. A stream that holds
   fewer events than asked (an interrupted load) is deleted and loaded again.
2. **Replay**, in the same run, each path in a fresh process of its own, one after the other, all events from
   ``first``, each event's JSON decoded into a dict:
   a. the stream protocol: an rstream consumer with examples/replay_consumer.py's decoding (the department path);
   b. AMQP 0-9-1: ``read_event_log`` itself (kombu/py-amqp stream consumer, prefetch 2000), the subscriptions
      service's path, here without eventlet;
   c. the same under eventlet (monkey-patched, as the subscriptions service runs it).
   The clock runs from the subscription to the last event. For each path: events/s, the ratio to the 20,000/s
   target, the client's CPU seconds and the broker's (from /proc, when this user may read it: the whole node's,
   so other work on the same broker counts too and it is an upper bound), and from them,
   labelled as an estimate, the rate an otherwise idle machine would reach (client and broker each on a core).

The machine is shared and noisy: compare the paths of one run side by side. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
TARGET_PER_SECOND = 20_000
DEFAULT_EVENTS = 1_000_000
VHOST = "sanji-bench-replay"
DISTRICT = "320113000000"
STREAM = "sanji.event-log-" + DISTRICT
MANAGEMENT = os.environ.get("SANJI_BENCH_MANAGEMENT_URL", "http://127.0.0.1:15672/api")
AUTH = (os.environ.get("SANJI_BENCH_BROKER_USER", "guest"), os.environ.get("SANJI_BENCH_BROKER_PASSWORD", "guest"))
HOST = "127.0.0.1"
STREAM_PORT = 5552
AMQP_URI = f"amqp://{AUTH[0]}:{AUTH[1]}@{HOST}:5672/{urllib.parse.quote(VHOST, safe='')}"
BATCH = 1000
ID_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


# ── load ───────────────────────────────────────────────────────────────────────────────────────────────


def templates() -> list[dict]:
    """CloudEvents of the project's shapes, 600-900 bytes each."""
    from services.notification.samples import sample_events
    from shared.bus import EVENT_OWNERS
    from shared.events import CloudEvent, source_of

    moment = datetime(2026, 12, 1, tzinfo=UTC)
    chosen = []
    for payload in sample_events():
        owner = sorted(EVENT_OWNERS[payload.event_type])[0]
        event = CloudEvent.wrap(payload, source=source_of(owner), time=moment).model_dump(mode="json")
        if 600 <= len(json.dumps(event, ensure_ascii=False).encode()) <= 900:
            chosen.append(event)
    return chosen


def encoded_messages(count: int):
    """AMQP 1.0 messages as the broker stores a relay's publish: properties (message id, content type), then
    the CloudEvent as one data section. The properties are encoded once per template (rstream's encoder), with
    the message id patched in."""
    from rstream import AMQPMessage, Properties

    shapes = templates()
    prefixes = [bytes(AMQPMessage(body=b"", properties=Properties(
        message_id=ID_PLACEHOLDER, content_type="application/cloudevents+json", content_encoding="utf-8")))
        .rsplit(b"\x00Su", 1)[0] for _ in shapes]
    placeholder = ID_PLACEHOLDER.encode()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for index in range(count):
        shape = index % len(shapes)
        event = dict(shapes[shape])
        event_id = str(uuid.uuid4())
        event["id"] = event_id
        event["time"] = (start + timedelta(seconds=index * 2)).isoformat()
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        yield (prefixes[shape].replace(placeholder, event_id.encode()) + b"\x00Su\xb0"
               + len(body).to_bytes(4, "big") + body), len(body)


def management(method: str, path: str, **kwargs):
    return requests.request(method, f"{MANAGEMENT}/{path}", auth=AUTH, timeout=30, **kwargs)


def stream_length() -> int | None:
    response = management("GET", f"queues/{urllib.parse.quote(VHOST, safe='')}/{STREAM}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return int(response.json().get("messages") or 0)


def prepare_vhost() -> None:
    vhost = urllib.parse.quote(VHOST, safe="")
    management("PUT", f"vhosts/{vhost}").raise_for_status()
    management("PUT", f"permissions/{vhost}/{AUTH[0]}",
               json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()


def declare_stream() -> None:
    from kombu import Connection

    from shared.catalogue import SHIPPED_CATALOGUE_DIR, load_catalogue
    from shared.event_log import EventLogLayout

    layout = EventLogLayout.from_catalogue(load_catalogue(SHIPPED_CATALOGUE_DIR))
    with Connection(AMQP_URI) as connection:
        channel = connection.channel()
        channel.queue_declare(STREAM, durable=True, auto_delete=False, arguments=layout.queue_arguments())


async def load(count: int) -> dict:
    from rstream import Producer

    producer = Producer(HOST, STREAM_PORT, vhost=VHOST, username=AUTH[0], password=AUTH[1])
    await producer.start()
    confirmed = 0
    sizes = 0
    all_confirmed = asyncio.Event()

    def on_confirm(status) -> None:
        nonlocal confirmed
        confirmed += 1
        if confirmed >= count:
            all_confirmed.set()

    started = time.perf_counter()
    batch: list[bytes] = []
    try:
        for message, size in encoded_messages(count):
            batch.append(message)
            sizes += size
            if len(batch) == BATCH:
                await producer.send_batch(STREAM, batch, on_publish_confirm=on_confirm)
                batch = []
        if batch:
            await producer.send_batch(STREAM, batch, on_publish_confirm=on_confirm)
        await asyncio.wait_for(all_confirmed.wait(), timeout=600)
    finally:
        await producer.close()
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": round(seconds, 2), "per_second": round(count / seconds),
            "mean_event_bytes": round(sizes / count)}


# ── replay: each path in a process of its own ─────────────────────────────────────────────────────────


async def replay_stream_protocol(count: int) -> int:
    from rstream import Consumer, ConsumerOffsetSpecification, OffsetType

    from examples.replay_consumer import event_of

    consumer = Consumer(HOST, STREAM_PORT, vhost=VHOST, username=AUTH[0], password=AUTH[1])
    await consumer.start()
    seen = 0
    done = asyncio.Event()

    async def on_message(data: bytes, context) -> None:
        nonlocal seen
        event_of(data)
        seen += 1
        if seen >= count:
            done.set()

    try:
        await consumer.subscribe(STREAM, on_message, offset_specification=ConsumerOffsetSpecification(
            OffsetType.FIRST), initial_credit=20)
        await done.wait()
    finally:
        await consumer.close()
    return seen


def replay_amqp(count: int) -> int:
    from kombu import Connection

    from shared.event_log import read_event_log

    seen = 0
    with Connection(AMQP_URI) as connection:
        for _entry in read_event_log(connection, districts=[DISTRICT]):
            seen += 1
            if seen >= count:
                break
    return seen


def run_path(path: str, count: int) -> dict:
    """In this (child) process: replay ``count`` events by one path; the clock and CPU of this process only."""
    if path == "amqp-eventlet":
        import eventlet

        eventlet.monkey_patch()
    cpu, started = time.process_time(), time.perf_counter()
    if path == "stream":
        seen = asyncio.run(replay_stream_protocol(count))
    else:
        seen = replay_amqp(count)
    seconds = time.perf_counter() - started
    return {"events": seen, "seconds": round(seconds, 2), "per_second": round(seen / seconds),
            "client_cpu_seconds": round(time.process_time() - cpu, 2)}


def broker_cpu_seconds() -> float | None:
    """The RabbitMQ node's CPU time so far (utime + stime), when this machine runs it and we may read it."""
    try:
        # The node that listens for AMQP (another beam.smp may be a CLI tool or another node).
        listening = subprocess.run(["ss", "-ltnpH", "sport = :5672"], capture_output=True, text=True,
                                   timeout=5).stdout
        pids = sorted(set(re.findall(r'"beam\.smp",pid=(\d+)', listening)))
        if len(pids) != 1:
            return None
        fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def measure(path: str, count: int) -> dict:
    broker_before = broker_cpu_seconds()
    result = subprocess.run([sys.executable, "-m", "bench.replay", "--child", path, "--events", str(count)],
                            cwd=REPO, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"the {path} replay failed:\n{result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    broker_after = broker_cpu_seconds()
    if broker_before is not None and broker_after is not None:
        figures["broker_cpu_seconds"] = round(broker_after - broker_before, 2)
    figures["ratio_to_target"] = round(figures["per_second"] / TARGET_PER_SECOND, 2)
    figures["client_cpu_us_per_event"] = round(figures["client_cpu_seconds"] / count * 1e6, 1)
    if "broker_cpu_seconds" in figures:
        figures["broker_cpu_us_per_event"] = round(figures["broker_cpu_seconds"] / count * 1e6, 1)
        # What the CPU time says an otherwise idle machine would do, the client and the broker each on one of its
        # two cores: an estimate beside the measured rate, not a measurement.
        busiest = max(figures["client_cpu_seconds"], figures["broker_cpu_seconds"])
        figures["idle_machine_estimate_per_second"] = round(count / busiest) if busiest else None
    return figures


PATHS = {
    "stream": "stream protocol (rstream consumer, examples/replay_consumer.py decoding, credit 20 chunks)",
    "amqp": "AMQP 0-9-1 read_event_log (kombu/py-amqp stream consumer, prefetch 2000), plain threads",
    "amqp-eventlet": "AMQP 0-9-1 read_event_log under eventlet (as the subscriptions service runs it)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="replay throughput of the event log")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--paths", default="stream,amqp,amqp-eventlet", help="comma-separated: " + ", ".join(PATHS))
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_path(args.child, args.events)))
        return 0

    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it goes, also into a file
    print(__doc__.split("How it measures:")[1].strip())
    print()
    prepare_vhost()
    present = stream_length()
    if present is not None and present < args.events:
        print(f"the stream holds {present} events, fewer than {args.events}: loading it again")
        management("DELETE", f"queues/{urllib.parse.quote(VHOST, safe='')}/{STREAM}").raise_for_status()
        present = None
    if present is None:
        declare_stream()
        loaded = asyncio.run(load(args.events))
        print(f"load: {loaded['events']:,} events ({loaded['mean_event_bytes']} bytes of JSON on average) in "
              f"{loaded['seconds']} s = {loaded['per_second']:,} events/s (stream protocol, batches of {BATCH}, "
              "confirmed)")
    else:
        loaded = {"reused": True, "events_in_stream": present}
        print(f"load: reused the stream of {present:,} events in vhost {VHOST} (delete it to load again)")

    results = {}
    for path in [name.strip() for name in args.paths.split(",") if name.strip()]:
        figures = measure(path, args.events)
        results[path] = figures
        meets = "meets" if figures["per_second"] >= TARGET_PER_SECOND else "MISSES"
        print(f"replay {path:14s} {figures['events']:>9,} events in {figures['seconds']:>7} s = "
              f"{figures['per_second']:>7,} events/s, {figures['ratio_to_target']:.2f}x the 20,000/s target "
              f"({meets} it)  [{PATHS[path]}]")
        estimate = figures.get("idle_machine_estimate_per_second")
        print(f"       {'':14s} CPU per event: client {figures['client_cpu_us_per_event']} us, broker "
              f"{figures.get('broker_cpu_us_per_event', 'n/a')} us; on an idle machine (client and broker on a core "
              f"each) that would be about {f'{estimate:,}' if estimate else 'n/a'} events/s (an estimate, not "
              "measured)")
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"machine: {os.cpu_count()} cores, load average {load_average:.1f} at the end (other work shares them)")
    print(json.dumps({"benchmark": "replay", "target_per_second": TARGET_PER_SECOND, "events": args.events,
                      "load": loaded, "replay": results, "load_average": load_average,
                      "meets_target": {path: figures["per_second"] >= TARGET_PER_SECOND
                                       for path, figures in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
