"""The bus's ownership table and the permissions derived from it (shared/bus.py), without a broker.
The broker itself enforcing them is tests/integration/test_bus_security.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.notification.samples import sample_events
from shared import bus
from shared.clock import FrozenClock
from shared.events import PAYLOAD_TYPES, CloudEvent, source_of
from shared.outbox import NotAnOwner, UnitOfWork

USERS = {service: bus.default_user(service) for service in bus.SERVICES}
AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_every_event_type_has_an_owner_and_notification_owns_none():
    assert set(bus.EVENT_OWNERS) == set(PAYLOAD_TYPES)
    assert all(bus.EVENT_OWNERS[event_type] for event_type in PAYLOAD_TYPES)
    assert bus.OWNED_EVENTS["notification"] == ()
    assert bus.EVENT_OWNERS["cn.sanji.item.rejected.v1"] == {"routing"}
    assert bus.EVENT_OWNERS["cn.sanji.report.filed.v1"] == {"intake", "escalation"}


def test_each_service_may_publish_exactly_the_routing_keys_of_the_types_it_owns():
    for event in sample_events():
        key = event.routing_key()
        for service in bus.SERVICES:
            allowed = re.fullmatch(bus.publish_pattern(service), key) is not None
            assert allowed == bus.owns(service, event.event_type), (service, event.event_type, key)
    for service in bus.SERVICES:  # never a wildcard
        assert not re.fullmatch(bus.publish_pattern(service), "item.#")
        assert not re.fullmatch(bus.publish_pattern(service), "item.rejected.*.*.*.*")


def test_a_department_may_bind_only_its_own_department_in_its_own_jurisdiction():
    district = bus.DepartmentDesk(user="dept-qixia-police", department="police", unit_code="320113000000")
    street = bus.DepartmentDesk(user="dept-maigaoqiao-housing", department="housing", unit_code="320113003000")
    ok = lambda desk, key: re.fullmatch(desk.read_pattern(), key) is not None  # noqa: E731
    assert ok(district, "item.*.320113000000.*.*.police")
    assert ok(district, "whistle.called.320113000000.street.320113003000.police")
    assert not ok(district, "item.*.320113000000.*.*.housing")
    assert not ok(district, "item.*.320102000000.*.*.police")
    assert not ok(district, "item.#.police") and not ok(district, "#")
    assert not ok(district, "case.submitted.320113003021")
    assert ok(street, "item.*.320113000000.*.320113003021.housing")
    assert ok(street, "item.*.320113000000.*.320113003000.housing")
    assert not ok(street, "item.*.320113000000.*.*.housing")
    assert not ok(street, "item.*.320113000000.*.320113004000.housing")
    assert re.fullmatch(district.permissions()["configure"], "dept-qixia-police.items")
    assert not re.fullmatch(district.permissions()["configure"], "notification.events")
    assert not re.fullmatch(district.permissions()["write"], "sanji.events")
    # Its subscription streams: read, and write (the stream protocol stores offsets so), never configure.
    stream = "dept-qixia-police.sub-0123456789ab"
    assert re.fullmatch(district.permissions()["write"], stream)
    assert not re.fullmatch(district.permissions()["configure"], stream)
    assert not re.fullmatch(district.permissions()["write"], "dept-qixia-housing.sub-0123456789ab")


@pytest.mark.parametrize(("user_id", "source", "refusal"), [
    ("sanji-routing", "/sanji/routing", None),
    (None, "/sanji/routing", "sender_unidentified"),
    ("dept-qixia-police", "/sanji/routing", "sender_not_a_service"),
    ("sanji-escalation", "/sanji/escalation", "sender_does_not_own_type"),
    ("sanji-routing", "/sanji/intake", "source_mismatch"),
])
def test_a_consumer_trusts_an_event_only_from_its_owner(user_id, source, refusal):
    event = CloudEvent(id="e-1", source=source, type="cn.sanji.item.rejected.v1", time=AT, data={})
    assert bus.sender_refusal(user_id, event, USERS) == refusal


def test_with_one_shared_development_user_the_source_must_still_be_an_owners():
    shared = {service: "guest" for service in bus.SERVICES}
    event = CloudEvent(id="e-1", source="/sanji/routing", type="cn.sanji.case.submitted.v1", time=AT, data={})
    assert bus.sender_refusal("guest", event, shared) == "source_mismatch"
    assert bus.sender_refusal("guest", event.model_copy(update={"source": "/sanji/intake"}), shared) is None


def test_only_notification_may_ask_intake_for_a_contact():
    assert bus.rpc_caller_refusal("sanji-notification", "intake.applicant_contact", USERS) is None
    assert bus.rpc_caller_refusal("sanji-routing", "intake.applicant_contact", USERS) == "caller_not_allowed"
    assert bus.rpc_caller_refusal(None, "intake.applicant_contact", USERS) == "caller_unidentified"


def test_a_service_cannot_even_record_an_event_it_does_not_own():
    class Session:
        def add(self, row):
            raise AssertionError("nothing may be written")

    uow = UnitOfWork(lambda: Session(), source=source_of("intake"), clock=FrozenClock(AT))
    uow.session = Session()
    rejected = next(event for event in sample_events() if event.event_type == "cn.sanji.item.rejected.v1")
    with pytest.raises(NotAnOwner):
        uow.publish(rejected)


def test_the_definitions_give_no_service_an_administrators_rights():
    definitions = bus.bus_definitions()
    assert all(user["tags"] == [] and user["password_hash"] == "" for user in definitions["users"])
    for permission in definitions["permissions"]:
        assert ".*" not in (permission["configure"], permission["write"], permission["read"])
