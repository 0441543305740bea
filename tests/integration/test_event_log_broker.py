"""The event log on the real broker (shared/event_log.py, docs/replay.md), each test in its own vhost.

Events are published to ``sanji.events`` exactly as the relay publishes them (persistent, confirmed, the
CloudEvent as the body), and read back with ``read_event_log`` (AMQP stream consumers) or with the
stream-protocol example (examples/replay_consumer.py, run as a department system would run it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Producer

from shared.catalogue import SHIPPED_CATALOGUE_DIR, Level, load_catalogue
from shared.config import REPO_ROOT
from shared.event_log import EventLogLayout, UnknownPartition, partition_name, read_event_log
from shared.events import CLOUDEVENTS_CONTENT_TYPE, CloudEvent, EventPayload, source_of
from shared.topology import declare_topology, ensure_topology, events_exchange
from tests.support.event_samples import MOMENT, every_payload, sample_payload

pytestmark = pytest.mark.integration

QIXIA, XUANWU = "320113000000", "320102000000"
XINHE, MEIYUAN = "320113003021", "320102002001"  # a community of each


@pytest.fixture
def layout():
    return EventLogLayout.from_catalogue(load_catalogue(SHIPPED_CATALOGUE_DIR))


@pytest.fixture
def broker(rabbit_config, layout):
    """The test vhost with the whole topology, the event log included, as the administrator declares it."""
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        declare_topology(connection, event_log=layout)
    return rabbit_config["AMQP_URI"]


def cloud_event(payload: EventPayload, time=MOMENT) -> dict:
    return CloudEvent.wrap(payload, source=source_of("routing"), time=time).model_dump(mode="json")


def publish(uri: str, events: list[tuple[str, dict]]) -> None:
    """As the relay does: persistent, one confirm per event, the CloudEvent as the body."""
    with Connection(uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=events_exchange, auto_declare=False)
        for routing_key, event in events:
            producer.publish(json.dumps(event, ensure_ascii=False), routing_key=routing_key,
                             content_type=CLOUDEVENTS_CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2,
                             message_id=event["id"], retry=False)


def keyed(payload: EventPayload, time=MOMENT) -> tuple[str, dict]:
    return payload.routing_key(), cloud_event(payload, time)


def item_event(district: str, community: str, time) -> tuple[str, dict]:
    from shared.events import ItemClaimedV1

    return keyed(sample_payload(ItemClaimedV1, district_code=district, community_code=community), time)


def read_all(uri: str, districts, **kwargs) -> list:
    with Connection(uri) as connection:
        return list(read_event_log(connection, districts=districts, idle_seconds=1.0, **kwargs))


def ids(entries) -> list[str]:
    return [entry.event["id"] for entry in entries]


def test_every_event_type_lands_in_its_districts_partition(broker, layout):
    published = {district: [keyed(payload) for payload in every_payload(district_code=district,
                                                                        community_code=community)]
                 for district, community in ((QIXIA, XINHE), (XUANWU, MEIYUAN))}
    publish(broker, published[QIXIA] + published[XUANWU])

    for district, events in published.items():
        entries = read_all(broker, [district])
        assert {entry.partition for entry in entries} == {partition_name(district)}
        assert ids(entries) == [event["id"] for _, event in events]  # all of them, once, in publishing order
        assert [entry.offset for entry in entries] == list(range(len(events)))
    # The other two districts' partitions hold nothing.
    others = [p.district_code for p in layout.partitions if p.district_code not in published]
    assert others and read_all(broker, others) == []


def test_every_community_of_the_catalogue_routes_its_case_events_to_its_district(broker):
    from shared.events import CaseSubmittedV1

    catalogue = load_catalogue(SHIPPED_CATALOGUE_DIR)
    expected: dict[str, list[str]] = {}
    events = []
    for code, unit in catalogue.units.items():
        if unit.level is Level.COMMUNITY:
            district = catalogue.unit_at(code, Level.DISTRICT).code
            routing_key, event = keyed(sample_payload(CaseSubmittedV1, district_code=district, community_code=code))
            events.append((routing_key, event))
            expected.setdefault(partition_name(district), []).append(event["id"])
    publish(broker, events)
    entries = read_all(broker, [district.removeprefix("sanji.event-log-") for district in expected])
    got: dict[str, list[str]] = {}
    for entry in entries:
        got.setdefault(entry.partition, []).append(entry.event["id"])
    assert got == expected


def test_replay_from_a_time_returns_exactly_the_events_at_or_after_it_across_partitions(broker):
    """CloudEvents times an hour either side of ``since``, published out of time order (an outbox can hold an
    event back): the broker attaches at a chunk, the reader keeps exactly those at or after ``since``."""
    since = MOMENT
    offsets_minutes = [-60, 30, -1, 0, 45, -30, 59, -59, 1, 0, -5, 20]
    events = []
    for index, minutes in enumerate(offsets_minutes):
        district, community = ((QIXIA, XINHE), (XUANWU, MEIYUAN))[index % 2]
        events.append(item_event(district, community, since + timedelta(minutes=minutes)))
    publish(broker, events)

    entries = read_all(broker, [QIXIA, XUANWU], since=since)
    expected = [event["id"] for (_, event), minutes in zip(events, offsets_minutes, strict=True) if minutes >= 0]
    assert sorted(ids(entries)) == sorted(expected)
    for district in (QIXIA, XUANWU):  # in log order within each partition
        in_partition = [entry.offset for entry in entries if entry.partition == partition_name(district)]
        assert in_partition == sorted(in_partition)

    # And with an end: [since, since + 30 min).
    bounded = read_all(broker, [QIXIA, XUANWU], since=since, until=since + timedelta(minutes=30))
    assert sorted(ids(bounded)) == sorted(event["id"] for (_, event), minutes in
                                          zip(events, offsets_minutes, strict=True) if 0 <= minutes < 30)


def test_a_consumer_down_for_an_hour_replays_from_its_offsets_exactly_what_it_missed(broker):
    before = [item_event(QIXIA, XINHE, MOMENT + timedelta(minutes=i)) for i in range(5)] \
        + [item_event(XUANWU, MEIYUAN, MOMENT + timedelta(minutes=i)) for i in range(3)]
    publish(broker, before)
    seen = read_all(broker, [QIXIA])  # its scope: 栖霞区 only
    assert ids(seen) == [event["id"] for _, event in before[:5]]
    resume = {seen[-1].partition: seen[-1].offset + 1}

    # Down for an hour: the city goes on, in both districts.
    missed = [item_event(QIXIA, XINHE, MOMENT + timedelta(hours=1, minutes=i)) for i in range(4)]
    publish(broker, missed + [item_event(XUANWU, MEIYUAN, MOMENT + timedelta(hours=1))])

    replayed = read_all(broker, [QIXIA], from_offsets=resume)
    assert ids(replayed) == [event["id"] for _, event in missed]  # no gap, nothing twice, nothing of 玄武区
    assert [entry.offset for entry in replayed] == [5, 6, 7, 8]
    # Offsets may name the district as well as the partition; past the end there is nothing.
    assert read_all(broker, [QIXIA], from_offsets={QIXIA: 9}) == []
    assert ids(read_all(broker, [QIXIA], from_offsets={QIXIA: 7})) == [event["id"] for _, event in missed[2:]]


def test_a_read_ends_at_the_end_of_the_log_as_it_was_when_it_began(broker):
    """While a relay keeps appending, the read still ends: at the first event appended after it began."""
    publish(broker, [item_event(QIXIA, XINHE, MOMENT) for _ in range(50)])
    stop = threading.Event()

    def keep_publishing():
        while not stop.is_set():
            publish(broker, [item_event(QIXIA, XINHE, MOMENT) for _ in range(5)])

    writer = threading.Thread(target=keep_publishing, daemon=True)
    started = time.monotonic()
    try:
        with Connection(broker) as connection:
            entries = read_event_log(connection, districts=[QIXIA], idle_seconds=30.0)
            first = next(entries)
            writer.start()
            rest = list(entries)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert time.monotonic() - started < 30, "the read waited for idleness instead of ending at the appended event"
    offsets = [first.offset] + [entry.offset for entry in rest]
    assert offsets == list(range(len(offsets))) and len(offsets) >= 50


def test_unknown_districts_are_refused(broker):
    with Connection(broker) as connection, pytest.raises(UnknownPartition):
        list(read_event_log(connection, districts=["999999000000"]))


def test_the_retention_setting_reaches_the_streams_arguments(rabbit_config, rabbit_manager, monkeypatch):
    monkeypatch.setenv("SANJI_EVENT_LOG_MAX_AGE", "12h")
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        ensure_topology(connection)  # as every service does on start, from the settings
    queues = {queue["name"]: queue for queue in rabbit_manager._get("queues", rabbit_config["vhost"])}
    partitions = [name for name in queues if name.startswith("sanji.event-log-")]
    assert len(partitions) == 4
    for name in partitions:
        assert queues[name]["type"] == "stream"
        assert queues[name]["arguments"] == {"x-queue-type": "stream", "x-max-age": "12h"}
    exchange = next(e for e in rabbit_manager._get("exchanges", rabbit_config["vhost"])
                    if e["name"] == "sanji.event-log")
    assert exchange["type"] == "direct" and exchange["arguments"] == {"x-super-stream": True}
    bindings = [b for b in rabbit_manager._get("bindings", rabbit_config["vhost"]) if b["source"] == "sanji.event-log"]
    assert sorted((b["routing_key"], b["arguments"]["x-stream-partition-order"]) for b in bindings) == [
        (name.removeprefix("sanji.event-log-"), order) for order, name in enumerate(sorted(partitions))]


# ── the stream protocol and the broker users ─────────────────────────────────────────────────────────


def run_example(vhost: str, stream: str, name: str, *extra: str, user: str = "guest",
                password: str = "guest") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "replay_consumer.py"), "--stream", stream, "--name", name,
         "--vhost", vhost, "--user", user, "--password", password, "--idle-exit", "2", *extra],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def printed(result: subprocess.CompletedProcess) -> list[tuple[int, str]]:
    assert result.returncode == 0, result.stderr
    return [(line["offset"], line["event"]["id"]) for line in map(json.loads, result.stdout.splitlines())]


def test_a_stream_protocol_consumer_resumes_from_its_server_stored_offset(broker, rabbit_config):
    vhost, stream = rabbit_config["vhost"], partition_name(QIXIA)
    first = [item_event(QIXIA, XINHE, MOMENT + timedelta(minutes=i)) for i in range(6)]
    publish(broker, first)
    assert printed(run_example(vhost, stream, "police-1")) == [(i, event["id"]) for i, (_, event) in
                                                               enumerate(first)]

    # It stops; the log goes on; it starts again under the same name and gets exactly what it missed. (Offsets
    # rise but need not be consecutive: the broker keeps a stored offset in the stream itself.)
    missed = [item_event(QIXIA, XINHE, MOMENT + timedelta(hours=1, minutes=i)) for i in range(4)]
    publish(broker, missed)
    resumed = printed(run_example(vhost, stream, "police-1"))
    assert [event_id for _, event_id in resumed] == [event["id"] for _, event in missed]
    assert resumed[0][0] > 5 and [offset for offset, _ in resumed] == sorted({offset for offset, _ in resumed})
    # Nothing new: nothing again. Another name has its own offset, from a time on its first run.
    assert printed(run_example(vhost, stream, "police-1")) == []
    since = (MOMENT + timedelta(hours=1, minutes=2)).isoformat()
    assert [event_id for _, event_id in printed(run_example(vhost, stream, "police-2", "--since", since))] == [
        event["id"] for _, event in missed[2:]]


def test_a_department_user_is_refused_on_the_log_and_the_subscriptions_user_reads_it(scoped_bus, rabbit_config):
    from shared import bus

    publish(rabbit_config["AMQP_URI"], [item_event(QIXIA, XINHE, MOMENT)])
    police = scoped_bus.desks["dept-qixia-police"]
    stream = partition_name(QIXIA)
    # Over AMQP: no consuming, not even its own department's district.
    with Connection(scoped_bus.department_uri("dept-qixia-police")) as connection:
        channel = connection.channel()
        channel.basic_qos(0, 10, False)
        with pytest.raises(AccessRefused):
            channel.basic_consume(stream, callback=lambda message: None, arguments={"x-stream-offset": "first"})
    # Over the stream protocol.
    result = run_example(rabbit_config["vhost"], stream, "sneaky", user=police.user,
                         password=scoped_bus.passwords[police.user])
    assert result.returncode != 0 and result.stdout == ""
    assert "refused" in result.stderr.lower()
    # The services that publish and consume events are refused as well; only the log's reader reads it.
    with Connection(scoped_bus.service_uri("routing")) as connection, pytest.raises(AccessRefused):
        channel = connection.channel()
        channel.basic_qos(0, 10, False)
        channel.basic_consume(stream, callback=lambda message: None, arguments={"x-stream-offset": "first"})
    (reader,) = bus.EVENT_LOG_READERS
    entries = read_all(scoped_bus.service_uri(reader), [QIXIA])
    assert len(entries) == 1 and entries[0].partition == stream
