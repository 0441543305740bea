"""The routing consumer on the real broker and database: idempotent, and poison goes to the dead letters."""

from __future__ import annotations

from datetime import UTC, datetime

import eventlet
import pytest
from nameko.testing.services import entrypoint_waiter

from services.routing import handlers
from services.routing.item_actions import WorkRules
from services.routing.service import RoutingService
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.db import session_factory, shared_engine
from shared.events import CaseSubmittedV1, CloudEvent
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar
from tests.support.bus import dead_letters, publish_raw
from tests.support.cases import XINHE_COMMUNITY
from tests.support.db import count_rows

pytestmark = pytest.mark.integration

SUBMITTED_AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def case_submitted(matter_codes=("residence-permit", "employment-registration"), case_id="case-0001"):
    payload = CaseSubmittedV1(case_id=case_id, case_number="SJ20261130-CASE0001", community_code=XINHE_COMMUNITY,
                              catalogue_version="test", bundle_code=None, matter_codes=matter_codes,
                              channel="kiosk", applicant_masked_name="刘**", submitted_at=SUBMITTED_AT)
    return CloudEvent.wrap(payload, source="/sanji/intake", time=SUBMITTED_AT), payload.routing_key()


@pytest.fixture
def routing(container_factory, make_service_config):
    container = container_factory(RoutingService, make_service_config("routing"))
    container.start()
    return container


def test_the_handler_twice_given_one_event_routes_once(database_url, shipped_catalogue_dir):
    rules = WorkRules(load_catalogue(shipped_catalogue_dir),
                         WorkdayCalendar.from_file(shipped_catalogue_dir.parent.parent / "config" /
                                                   "calendar-overrides.yaml"))
    factory = session_factory(shared_engine(database_url))
    event, _ = case_submitted()

    def unit_of_work():
        return UnitOfWork(factory, source="/sanji/routing", clock=FrozenClock(SUBMITTED_AT))

    assert handlers.route_submitted_case(event, unit_of_work=unit_of_work(), rules=rules) == 2
    assert handlers.route_submitted_case(event, unit_of_work=unit_of_work(), rules=rules) == 0
    assert count_rows(database_url, "routing_items", "outbox_messages") == {"routing_items": 2,
                                                                            "outbox_messages": 2}


def test_a_redelivered_event_produces_no_second_item(routing, rabbit_config, database_url):
    event, routing_key = case_submitted()
    body = event.model_dump_json()

    with entrypoint_waiter(routing, "on_case_submitted"):
        publish_raw(rabbit_config["AMQP_URI"], body, routing_key)
    with entrypoint_waiter(routing, "on_case_submitted"):
        publish_raw(rabbit_config["AMQP_URI"], body, routing_key)

    assert count_rows(database_url, "routing_items", "processed_messages") == {"routing_items": 2,
                                                                               "processed_messages": 1}


def test_poison_messages_are_dead_lettered_and_the_queue_keeps_flowing(routing, rabbit_config, database_url):
    amqp = rabbit_config["AMQP_URI"]
    not_an_envelope = '{"hello": "world"}'
    unknown_matter, routing_key = case_submitted(matter_codes=("no-such-matter",), case_id="case-poison")

    publish_raw(amqp, not_an_envelope, routing_key)
    publish_raw(amqp, "\x00\x01 not json", routing_key, content_type="application/octet-stream")
    with entrypoint_waiter(routing, "on_case_submitted"):
        publish_raw(amqp, unknown_matter.model_dump_json(), routing_key)

    assert len(dead_letters(amqp, expect=3)) == 3

    good, _ = case_submitted(case_id="case-good")
    with entrypoint_waiter(routing, "on_case_submitted"):
        publish_raw(amqp, good.model_dump_json(), routing_key)
    assert count_rows(database_url, "routing_items")["routing_items"] == 2


def test_a_message_that_keeps_failing_is_dead_lettered_after_five_attempts(routing, rabbit_config, monkeypatch,
                                                                           database_url):
    attempts = []

    def always_failing(event, **_):
        attempts.append(event.id)
        raise RuntimeError("a bug that fails every time (simulated)")

    monkeypatch.setattr(handlers, "route_submitted_case", always_failing)
    event, routing_key = case_submitted()
    publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)

    dead = dead_letters(rabbit_config["AMQP_URI"], expect=1, timeout=20)

    assert len(dead) == 1
    assert CloudEvent.model_validate_json(dead[0].body).id == event.id
    assert len(attempts) == 5
    assert count_rows(database_url, "routing_items")["routing_items"] == 0


def test_a_database_outage_is_waited_out_without_using_up_the_delivery_budget(routing, rabbit_config, monkeypatch,
                                                                            database_url):
    from sqlalchemy.exc import OperationalError

    real_handler = handlers.route_submitted_case
    calls = []

    def unreachable_then_back(event, **kwargs):
        calls.append(event.id)
        if len(calls) <= 6:  # more failures than the delivery limit allows redeliveries
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database restarting (simulated)"))
        return real_handler(event, **kwargs)

    monkeypatch.setattr(handlers, "route_submitted_case", unreachable_then_back)
    monkeypatch.setattr("shared.nameko_ext.EventConsumer.OUTAGE_RETRIES", 10)
    monkeypatch.setattr("shared.nameko_ext.eventlet.spawn_after",
                        lambda delay, fn, *args: eventlet.spawn(fn, *args))  # no waiting in a test
    event, routing_key = case_submitted()
    with entrypoint_waiter(routing, "on_case_submitted", timeout=20,
                           callback=lambda worker_ctx, result, exc_info: exc_info is None):
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)

    assert len(calls) == 7
    assert count_rows(database_url, "routing_items")["routing_items"] == 2
    assert dead_letters(rabbit_config["AMQP_URI"], expect=1, timeout=1) == []


def test_an_operator_lists_dead_letters_and_replays_them_after_a_fix(routing, rabbit_config, monkeypatch,
                                                                    database_url):
    from shared.dead_letters import list_dead_letters, replay_dead_letters

    amqp = rabbit_config["AMQP_URI"]
    real_handler = handlers.route_submitted_case
    monkeypatch.setattr(handlers, "route_submitted_case",
                        lambda event, **kwargs: (_ for _ in ()).throw(RuntimeError("bug (simulated)")))
    event, routing_key = case_submitted()
    publish_raw(amqp, event.model_dump_json(), routing_key)
    assert len(dead_letters_after(amqp, event.id)) == 1

    listed = list_dead_letters(amqp)
    assert [(d.event_id, d.queue, d.reason) for d in listed] == [(event.id, "routing.case-submitted", "delivery_limit")]
    assert list_dead_letters(amqp) == listed  # listing takes nothing away

    monkeypatch.setattr(handlers, "route_submitted_case", real_handler)  # the fix is deployed
    with entrypoint_waiter(routing, "on_case_submitted"):
        assert replay_dead_letters(amqp, event_ids={event.id}) == 1

    assert count_rows(database_url, "routing_items")["routing_items"] == 2
    assert list_dead_letters(amqp) == []


def dead_letters_after(amqp, event_id, timeout=20.0):
    """Wait until the event is in the dead-letter queue (without taking it)."""
    import time

    from shared.dead_letters import list_dead_letters

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in list_dead_letters(amqp) if d.event_id == event_id]
        if found:
            return found
        eventlet.sleep(0.1)
    return []
