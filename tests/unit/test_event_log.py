"""The event log's layout (shared/event_log.py): one partition per district of the catalogue, and every event
type's routing key caught by exactly its district's partition (the broker's own routing is checked in
tests/integration/test_event_log_broker.py)."""

from __future__ import annotations

import re

import pytest

from shared.catalogue import SHIPPED_CATALOGUE_DIR, Level, load_catalogue
from shared.config import Settings, SettingsInvalid
from shared.event_log import EventLogLayout, UnknownPartition, configured_layout, topic_matches
from shared.events import PAYLOAD_TYPES
from tests.support.event_samples import every_payload


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(SHIPPED_CATALOGUE_DIR)


def test_one_partition_per_district_of_the_catalogue(catalogue):
    layout = EventLogLayout.from_catalogue(catalogue)
    districts = sorted(code for code, unit in catalogue.units.items() if unit.level is Level.DISTRICT)
    assert [p.district_code for p in layout.partitions] == districts
    assert [p.name for p in layout.partitions] == [f"sanji.event-log-{code}" for code in districts]
    assert [p.order for p in layout.partitions] == list(range(len(districts)))
    assert layout.queue_arguments() == {"x-queue-type": "stream", "x-max-age": "30D"}


def test_every_event_type_of_every_community_lands_in_its_own_districts_partition_only(catalogue):
    layout = EventLogLayout.from_catalogue(catalogue)
    communities = [code for code, unit in catalogue.units.items() if unit.level is Level.COMMUNITY]
    assert communities
    for community in communities:
        district = catalogue.unit_at(community, Level.DISTRICT).code
        payloads = every_payload(district_code=district, community_code=community)
        assert {type(p).event_type for p in payloads} == set(PAYLOAD_TYPES)
        for payload in payloads:
            partition = layout.partition_of(payload.routing_key())
            assert partition is not None, f"{payload.routing_key()} lands in no partition"
            assert partition.district_code == district, payload.routing_key()


def test_every_routing_key_carries_the_district_third_or_the_community():
    """What the bindings rely on: no event type's key lacks a place from which its district follows."""
    for payload_type in PAYLOAD_TYPES.values():
        words = payload_type.routing_key_template.split(".")
        assert words[2] in ("{district_code}", "{community_code}"), payload_type.routing_key_template
        if words[2] == "{community_code}":
            assert words[0] == "case" and len(words) == 3, payload_type.routing_key_template


def test_a_key_of_an_unknown_community_or_district_lands_nowhere(catalogue):
    layout = EventLogLayout.from_catalogue(catalogue)
    assert layout.partition_of("case.submitted.999999001001") is None
    assert layout.partition_of("item.routed.999999000000.community.999999001001.police") is None
    with pytest.raises(UnknownPartition):
        layout.partition("999999000000")
    assert layout.partition("sanji.event-log-320113000000").district_code == "320113000000"


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("*.*.320113000000.#", "escalation.ordered.320113000000", True),
    ("*.*.320113000000.#", "item.routed.320113000000.street.320113003000.police", True),
    ("*.*.320113000000.#", "case.submitted.320113003021", False),
    ("case.*.320113003021", "case.submitted.320113003021", True),
    ("case.*.320113003021", "case.submitted.320113003021.x", False),
    ("#", "a.b", True), ("a.#.b", "a.b", True), ("a.*", "a", False),
])
def test_topic_matching_is_amqps(pattern, key, matches):
    assert topic_matches(pattern, key) is matches


def test_the_retention_setting_reaches_the_layout_and_a_bad_one_is_refused_in_one_line():
    settings = Settings.read({"SANJI_EVENT_LOG_MAX_AGE": "7D"})
    assert configured_layout(settings).queue_arguments()["x-max-age"] == "7D"
    assert Settings.read({}).event_log_max_age == "30D"
    for bad in ("30 days", "0D", "7d", "D", "-1D"):
        with pytest.raises(SettingsInvalid) as refused:
            Settings.read({"SANJI_EVENT_LOG_MAX_AGE": bad})
        assert re.match(r"SANJI_EVENT_LOG_MAX_AGE: expected a retention", str(refused.value)), bad


def test_the_definitions_let_only_the_logs_reader_read_it():
    """No department user, and no service but the subscriptions service, may read a district's raw log."""
    from shared import bus

    definitions = bus.full_definitions()
    partitions = [queue["name"] for queue in definitions["queues"] if queue["name"].startswith("sanji.event-log-")]
    assert len(partitions) == 4
    readers = {permission["user"] for permission in definitions["permissions"]
               if any(re.fullmatch(permission["read"], name) for name in partitions)}
    assert readers == {bus.default_user(reader) for reader in bus.EVENT_LOG_READERS}
    # And nobody may configure (declare, delete, bind) or write to them: the topology is the administrator's.
    for permission in definitions["permissions"]:
        for name in partitions:
            assert not re.fullmatch(permission["configure"], name), (permission["user"], name)
            assert not re.fullmatch(permission["write"], name), (permission["user"], name)
