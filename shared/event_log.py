"""The replayable event log: every published event, kept for a retention period in a super stream partitioned
by district, and read back from a time or an offset (docs/replay.md).

**Topology.** The super stream ``sanji.event-log`` is RabbitMQ's plain AMQP shape of one: a direct exchange
with the argument ``x-super-stream: true`` and one stream per district, ``sanji.event-log-<district code>``
(``x-queue-type: stream``, ``x-max-age`` from ``SANJI_EVENT_LOG_MAX_AGE``), bound to it with the district code
as routing key and the binding argument ``x-stream-partition-order``. Stream clients that know super streams
(rstream's ``SuperStreamConsumer``, RabbitMQ 3.11+ tooling) find the partitions through it.

Each partition is also bound to ``sanji.events``, so every event the relays publish lands in its district's
partition with no change to the relay:

- Every routing key but the ``case.*`` ones carries the district third (``item.<verb>.<district>.…``,
  ``whistle.…``, ``report.…``, ``rating.…``, ``rectification.…``, ``appeal.…``, ``supervision-order.…``,
  ``escalation.ordered.<district>``): one pattern ``*.*.<district>.#`` per district.
- ``case.<verb>.<community>`` names the community, not its district, and a topic pattern cannot match a prefix of
  a word. So each partition is also bound with ``case.*.<community>`` for every community of its district in the
  catalogue. Intake refuses a case of a community the catalogue does not know, so every case event has one. A
  community added to the catalogue needs its binding: ``declare_topology`` adds it on the next start (as the
  broker's administrator), and ``sanji write-docs``/``sanji bus definitions`` write it into the definitions.

No event type's key lacks a district (``tests/unit/test_event_log.py`` checks every type), so there is no
partition for district-less events.

**Reading.** ``read_event_log`` reads partitions over AMQP 0-9-1 (kombu, so it runs under eventlet): a stream
consumer per partition with ``x-stream-offset`` and a prefetch, from a time or from offsets, to the end of the
log as it was when the read began. Department systems read through the broker with the stream protocol and
server-side offsets, on their own subscription streams (``examples/replay_consumer.py``); the raw log is read
by the subscriptions service's broker user alone (``shared/bus.py``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import structlog

from shared.topology import EVENTS_EXCHANGE_NAME

log = structlog.get_logger(__name__)

SUPER_STREAM_NAME = "sanji.event-log"
PARTITION_PREFIX = SUPER_STREAM_NAME + "-"
DEFAULT_MAX_AGE = "30D"
# RabbitMQ's x-max-age: a whole number and a unit (years, months, days, hours, minutes, seconds).
MAX_AGE_PATTERN = r"^[1-9][0-9]*(Y|M|D|h|m|s)$"
# The broker's header on every message a stream consumer receives.
OFFSET_HEADER = "x-stream-offset"

# A time offset attaches at a chunk (a batch of messages written together), and a service's clock may run a
# little ahead of the broker's, so a read from a time starts this much earlier and keeps only the events whose
# own CloudEvents ``time`` is at or after it.
TIME_MARGIN = timedelta(minutes=5)
# Stream consumers must acknowledge, and the prefetch is their credit: enough to keep the broker streaming.
DEFAULT_PREFETCH = 2000
# How long a read waits for more when no partition has delivered anything and no new event has been appended:
# the end of a quiet log (a busy one ends exactly, at the first event appended after the read began).
DEFAULT_IDLE_SECONDS = 2.0


def partition_name(district_code: str) -> str:
    return PARTITION_PREFIX + district_code


def district_of_partition(name: str) -> str:
    return name.removeprefix(PARTITION_PREFIX)


def check_max_age(value: str) -> str:
    if not re.fullmatch(MAX_AGE_PATTERN, value):
        raise ValueError("expected a retention such as 30D, 720h or 1Y (a number and one of Y M D h m s)")
    return value


@dataclass(frozen=True)
class Partition:
    """One district's stream of the log."""

    district_code: str
    community_codes: tuple[str, ...]
    order: int  # x-stream-partition-order: its place among the super stream's partitions

    @property
    def name(self) -> str:
        return partition_name(self.district_code)

    def event_binding_keys(self) -> tuple[str, ...]:
        """Its topic patterns on ``sanji.events``: the district third, and the ``case.*`` keys of its communities."""
        return (f"*.*.{self.district_code}.#",) + tuple(f"case.*.{code}" for code in self.community_codes)


@dataclass(frozen=True)
class EventLogLayout:
    """The partitions (from the catalogue's districts) and their retention."""

    partitions: tuple[Partition, ...]
    max_age: str = DEFAULT_MAX_AGE

    def __post_init__(self):
        check_max_age(self.max_age)

    @classmethod
    def from_catalogue(cls, catalogue, max_age: str = DEFAULT_MAX_AGE) -> EventLogLayout:
        from shared.catalogue import Level

        districts = sorted(code for code, unit in catalogue.units.items() if unit.level is Level.DISTRICT)
        communities: dict[str, list[str]] = {code: [] for code in districts}
        for code, unit in catalogue.units.items():
            if unit.level is Level.COMMUNITY:
                communities[catalogue.unit_at(code, Level.DISTRICT).code].append(code)
        return cls(tuple(Partition(code, tuple(sorted(communities[code])), order)
                         for order, code in enumerate(districts)), max_age)

    def queue_arguments(self) -> dict:
        return {"x-queue-type": "stream", "x-max-age": self.max_age}

    def partition(self, district_or_partition: str) -> Partition:
        district = district_of_partition(district_or_partition)
        for partition in self.partitions:
            if partition.district_code == district:
                return partition
        raise UnknownPartition(district_or_partition)

    def partition_of(self, routing_key: str) -> Partition | None:
        """The partition an event published with this key lands in (what the broker's bindings do), or None."""
        matching = [p for p in self.partitions if any(topic_matches(key, routing_key) for key in
                                                       p.event_binding_keys())]
        if len(matching) > 1:
            raise AssertionError(f"{routing_key} would land in {len(matching)} partitions")
        return matching[0] if matching else None


class UnknownPartition(LookupError):
    def __init__(self, name: str):
        super().__init__(f"the event log has no partition for {name!r}")
        self.name = name


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` one word, ``#`` zero or more words."""
    def match(pattern_words: list[str], key_words: list[str]) -> bool:
        if not pattern_words:
            return not key_words
        head, rest = pattern_words[0], pattern_words[1:]
        if head == "#":
            return any(match(rest, key_words[i:]) for i in range(len(key_words) + 1))
        return bool(key_words) and head in ("*", key_words[0]) and match(rest, key_words[1:])

    return match(pattern.split("."), routing_key.split("."))


@lru_cache(maxsize=8)
def _layout(catalogue_dir: str, max_age: str) -> EventLogLayout:
    from shared.catalogue import load_catalogue

    return EventLogLayout.from_catalogue(load_catalogue(Path(catalogue_dir)), max_age)


def configured_layout(settings=None) -> EventLogLayout:
    """The layout of this deployment: the districts of ``SANJI_CATALOGUE_DIR``, ``SANJI_EVENT_LOG_MAX_AGE``."""
    if settings is None:
        from shared.config import Settings

        settings = Settings.from_env()
    return _layout(str(settings.catalogue_dir), settings.event_log_max_age)


# ── declaring ─────────────────────────────────────────────────────────────────────────────────────────


def declare_event_log(channel, layout: EventLogLayout, *, new_partitions: Iterable[str] | None = None) -> None:
    """The super-stream exchange, one stream per district, and their bindings (idempotent).

    A partition is bound to the super-stream exchange only when it is new (``new_partitions``, see
    ``absent_partitions``; None: all). RabbitMQ tells bindings apart by their arguments' types as well as values:
    a definitions import (and RabbitMQ's own super-stream tooling) types ``x-stream-partition-order`` as a 64-bit
    ``long``, py-amqp sends a small integer as a 32-bit ``signedint``, so binding again would add a second binding
    beside the one the broker loaded. The bindings to ``sanji.events`` carry no arguments and are declared always
    (a community added to the catalogue gets its binding on the next start)."""
    new = None if new_partitions is None else set(new_partitions)
    channel.exchange_declare(SUPER_STREAM_NAME, "direct", durable=True, auto_delete=False,
                             arguments={"x-super-stream": True})
    for partition in layout.partitions:
        channel.queue_declare(partition.name, durable=True, exclusive=False, auto_delete=False,
                              arguments=layout.queue_arguments())
        if new is None or partition.name in new:
            channel.queue_bind(partition.name, SUPER_STREAM_NAME, partition.district_code,
                               arguments={"x-stream-partition-order": partition.order})
        for key in partition.event_binding_keys():
            channel.queue_bind(partition.name, EVENTS_EXCHANGE_NAME, key)


def absent_partitions(connection, layout: EventLogLayout) -> set[str]:
    """The partitions the broker does not have yet (a passive declare each, on a channel of its own: a missing
    queue closes the channel)."""
    from amqp.exceptions import NotFound

    absent = set()
    for partition in layout.partitions:
        channel = connection.channel()
        try:
            channel.queue_declare(partition.name, passive=True)
        except NotFound:
            absent.add(partition.name)
        finally:
            _close_quietly(channel)
    return absent


def event_log_definitions(layout: EventLogLayout, vhost: str = "/") -> dict:
    """The same objects in RabbitMQ's definitions format (merged into ``deploy/rabbitmq/definitions.json``)."""
    def bind(source: str, destination: str, key: str, arguments: dict | None = None) -> dict:
        return {"source": source, "vhost": vhost, "destination": destination, "destination_type": "queue",
                "routing_key": key, "arguments": dict(arguments or {})}

    return {
        "exchanges": [{"name": SUPER_STREAM_NAME, "vhost": vhost, "type": "direct", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {"x-super-stream": True}}],
        "queues": [{"name": p.name, "vhost": vhost, "durable": True, "auto_delete": False,
                    "arguments": layout.queue_arguments()} for p in layout.partitions],
        "bindings": [binding for p in layout.partitions for binding in
                     [bind(SUPER_STREAM_NAME, p.name, p.district_code, {"x-stream-partition-order": p.order})]
                     + [bind(EVENTS_EXCHANGE_NAME, p.name, key) for key in p.event_binding_keys()]],
    }


# ── reading ───────────────────────────────────────────────────────────────────────────────────────────


class LogEntry(NamedTuple):
    partition: str  # the partition's stream name, sanji.event-log-<district code>
    offset: int     # its offset in that stream: resume with from_offsets={partition: offset + 1}
    event: dict     # the CloudEvent as published


def read_event_log(connection, *, districts: Iterable[str], since: datetime | None = None,
                   from_offsets: Mapping[str, int] | None = None, until: datetime | None = None,
                   prefetch: int = DEFAULT_PREFETCH, idle_seconds: float = DEFAULT_IDLE_SECONDS,
                   ) -> Iterator[LogEntry]:
    """The events of the districts' partitions, in order within each partition (partitions interleave).

    - ``since``: from the first event whose CloudEvents ``time`` is at or after it. The broker attaches at a
      chunk a little before it (``TIME_MARGIN``); events before it are skipped here, so none is returned.
    - ``from_offsets``: ``{partition or district code: offset}``, from that offset (a partition not named starts
      at its first event). With ``since`` as well, events before ``since`` are still skipped.
    - Neither: from the first event kept.
    - ``until``: events whose ``time`` is at or after it are skipped. An event's ``time`` is when it happened,
      not when the broker appended it (an outbox may hold it back), so the read still goes to the end.

    The read ends at the end of the log as it was when it began: at the first offset appended after the read
    began, or, on a log nobody is writing to, when the broker has had nothing more to deliver for
    ``idle_seconds``. It reads over a connection of its own (``connection.clone()``), one channel and stream
    consumer per partition, so the caller's connection is left as it was; under eventlet it yields to other
    green threads while it waits. ``UnknownPartition`` for a district the log has no partition for.
    """
    wanted = list(dict.fromkeys(districts))
    since = _aware(since)
    until = _aware(until)
    offsets = {partition_name(district_of_partition(name)): offset for name, offset in (from_offsets or {}).items()}
    names = [partition_name(district_of_partition(district)) for district in wanted]
    unknown_offsets = set(offsets) - set(names)
    if unknown_offsets:
        raise ValueError(f"from_offsets names partitions not read: {sorted(unknown_offsets)}")
    if not names:
        return
    reader = _PartitionReads(connection.clone(), names, since=since, offsets=offsets, prefetch=prefetch)
    try:
        reader.attach()
        yield from reader.entries(since=since, until=until, idle_seconds=idle_seconds)
    finally:
        reader.close()


def _aware(moment: datetime | None) -> datetime | None:
    """A naive datetime is taken as UTC (SQLite hands them back so)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def event_time(event: dict) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(event["time"]))
    except (KeyError, TypeError, ValueError):
        return None


class _Partition:
    def __init__(self, name: str):
        self.name = name
        self.channel = None
        self.probe_channel = None
        self.consumer_tag: str | None = None
        self.end: int | None = None      # the first offset appended after the read began, once known
        self.position: int | None = None  # the next offset expected
        self.done = False
        self.unacked = 0


class _PartitionReads:
    """One stream consumer per partition, and a probe per partition that learns where the log ended."""

    def __init__(self, connection, names: list[str], *, since, offsets, prefetch: int):
        self.connection = connection
        self.partitions = {name: _Partition(name) for name in names}
        self.since = since
        self.offsets = offsets
        self.prefetch = max(int(prefetch), 2)
        self.ready: list[LogEntry] = []
        self.read_ahead: _ReadAhead | None = None

    def attach(self) -> None:
        from amqp.exceptions import NotFound

        self.connection.connect()
        transport = self.connection.connection  # the amqp.Connection
        self.read_ahead = _ReadAhead.install(transport.transport)
        # First the probes, at "next": the first message each gets is the first appended after this moment.
        for partition in self.partitions.values():
            channel = transport.channel()
            try:
                channel.queue_declare(partition.name, passive=True)
            except NotFound:
                raise UnknownPartition(partition.name) from None
            channel.basic_qos(0, 1, False)
            channel.basic_consume(partition.name, callback=lambda message, p=partition: self._on_probe(p, message),
                                  arguments={OFFSET_HEADER: "next"})
            partition.probe_channel = channel
        for partition in self.partitions.values():
            channel = transport.channel()
            channel.basic_qos(0, self.prefetch, False)
            if partition.name in self.offsets:
                start = int(self.offsets[partition.name])
                partition.position = start
            elif self.since is not None:
                start = self.since - TIME_MARGIN
            else:
                start = "first"
            partition.consumer_tag = channel.basic_consume(
                partition.name, callback=lambda message, p=partition: self._on_message(p, message),
                arguments={OFFSET_HEADER: start})
            partition.channel = channel

    def _on_probe(self, partition: _Partition, message) -> None:
        offset = message.properties.get("application_headers", {}).get(OFFSET_HEADER)
        if partition.end is None and offset is not None:
            partition.end = int(offset)
            if partition.position is not None and partition.position >= partition.end:
                self._finish(partition)

    def _on_message(self, partition: _Partition, message) -> None:
        if partition.done:
            return
        offset = int(message.properties["application_headers"][OFFSET_HEADER])
        partition.unacked += 1
        if partition.unacked >= self.prefetch // 2:
            partition.channel.basic_ack(message.delivery_tag, multiple=True)
            partition.unacked = 0
        if partition.end is not None and offset >= partition.end:
            self._finish(partition)
            return
        if partition.position is not None and offset < partition.position:
            return  # before the requested offset, in the chunk the broker attached at
        partition.position = offset + 1
        try:
            event = json.loads(message.body)
        except ValueError:
            log.warning("skipping an event log entry that is not JSON", partition=partition.name, offset=offset)
            return
        if not isinstance(event, dict):
            return
        self.ready.append(LogEntry(partition.name, offset, event))

    def _finish(self, partition: _Partition) -> None:
        partition.done = True
        for channel in (partition.channel, partition.probe_channel):
            _close_quietly(channel)
        partition.channel = partition.probe_channel = None

    def entries(self, *, since, until, idle_seconds: float) -> Iterator[LogEntry]:
        connection = self.connection.connection
        idle_since = time.monotonic()
        while True:
            if self.ready:
                batch, self.ready = self.ready, []
                for entry in batch:
                    if _within(entry, since, until):
                        yield entry
                continue
            if all(partition.done for partition in self.partitions.values()):
                return
            if self.read_ahead is not None and self.read_ahead.holds_a_frame():
                # Already read: no wait, so no socket timeout to set and reset around it.
                while self.read_ahead.holds_a_frame() and len(self.ready) < self.prefetch:
                    connection.blocking_read(None)
                idle_since = time.monotonic()
                continue
            try:
                connection.drain_events(timeout=min(idle_seconds, 0.5))
                idle_since = time.monotonic()
            except TimeoutError:
                if time.monotonic() - idle_since >= idle_seconds:
                    return  # caught up, and nothing appended since the read began

    def close(self) -> None:
        for partition in self.partitions.values():
            for channel in (partition.channel, partition.probe_channel):
                _close_quietly(channel)
        try:
            self.connection.release()
        except Exception:  # noqa: BLE001 - a connection the broker closed is closed
            pass


class _ReadAhead:
    """py-amqp reads each frame with a system call for its header, one for its payload and one for its end byte,
    exactly the bytes it needs: nine per message delivered. A replay receives hundreds of thousands of messages,
    so on the read's own connection the transport reads what the socket holds, up to 256 KB at a time, and hands
    frames out of that buffer. Only for py-amqp's plain TCP transport (amqps keeps its own reads)."""

    CHUNK = 256 * 1024

    def __init__(self, transport):
        self.transport = transport
        self.buffer = bytearray()
        self.position = 0

    @classmethod
    def install(cls, transport) -> _ReadAhead | None:
        from amqp.transport import TCPTransport

        if type(transport) is not TCPTransport or transport._read_buffer:
            return None
        read_ahead = cls(transport)
        transport._read = read_ahead.read  # read_frame looks it up on the instance at every frame
        return read_ahead

    def read(self, n: int, initial: bool = False, _errnos=None) -> bytes:
        transport = self.transport
        if transport._read_buffer:  # a frame read_frame gave back when a wait timed out half-way
            self.buffer = bytearray(transport._read_buffer) + self.buffer[self.position:]
            self.position = 0
            transport._read_buffer = b""
        while len(self.buffer) - self.position < n:
            if self.position:
                del self.buffer[:self.position]
                self.position = 0
            chunk = transport.sock.recv(max(self.CHUNK, n))
            if not chunk:
                raise OSError("Server unexpectedly closed connection")
            self.buffer += chunk
        start = self.position
        self.position += n
        return bytes(self.buffer[start:self.position])

    def holds_a_frame(self) -> bool:
        """A whole frame (7-byte header, payload, end byte) is buffered."""
        available = len(self.buffer) - self.position
        if available < 7 or self.transport._read_buffer:
            return False
        size = int.from_bytes(self.buffer[self.position + 3:self.position + 7], "big")
        return available >= size + 8


def _within(entry: LogEntry, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    moment = event_time(entry.event)
    if moment is None:
        return since is None  # no time: kept only when reading by offset alone
    return (since is None or moment >= since) and (until is None or moment < until)


def _close_quietly(channel) -> None:
    if channel is None:
        return
    try:
        channel.close()
    except Exception:  # noqa: BLE001 - a channel the broker closed is closed
        pass
