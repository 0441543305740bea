"""The subscriptions service on the real broker (with the production bus users and permissions) and database:
a police stream never receives a housing event nor another district's, a district department cannot subscribe
above or beside its district, bad input writes nothing, and a webhook that fails then recovers gets every event
once per id, signed (verified with ``standardwebhooks`` by the example receiver), with the failed attempts in the
failure view and the disclosures per case."""

from __future__ import annotations

import threading

import eventlet
import pytest
import requests
from amqp.exceptions import AccessRefused
from kombu import Connection
from nameko.testing.utils import find_free_port
from standardwebhooks import Webhook

from examples import subscription_stream_consumer, subscription_webhook_receiver
from services.subscriptions.service import SubscriptionsService
from shared.clock import new_id
from tests.support.db import count_rows
from tests.support.subscriptions import item_event, publish, wait_until

pytestmark = pytest.mark.integration

QIXIA, XUANWU = "320113000000", "320102000000"
MAIGAOQIAO, XINHE = "320113003000", "320113003021"
POLICE = {"Authorization": "Bearer dev-dept-qixia-police"}
HOUSING = {"Authorization": "Bearer dev-dept-qixia-housing"}
STAFF_QIXIA = {"Authorization": "Bearer dev-staff-qixia"}
KIOSK = {"Authorization": "Bearer dev-kiosk-xinhe"}
TABLES = ("subscriptions_subscriptions", "subscriptions_secrets")


@pytest.fixture
def service(container_factory, make_service_config, scoped_bus):
    port = find_free_port()
    prefix = scoped_bus.desks["dept-qixia-police"].user.removesuffix("dept-qixia-police")
    config = scoped_bus.service_config(
        make_service_config, "subscriptions", web_port=port, SANJI_SUBSCRIPTIONS_SWEEP_SECONDS=0.1,
        SANJI_SUBSCRIPTIONS_RETRY_BASE_SECONDS=0.05, SANJI_SUBSCRIPTIONS_RETRY_CAP_SECONDS=0.3,
        SANJI_SUBSCRIPTIONS_WEBHOOK_TIMEOUT=2, SANJI_SUBSCRIPTIONS_BROKER_USER_PREFIX=prefix)
    container = container_factory(SubscriptionsService, config)
    container.start()
    return f"http://127.0.0.1:{port}", config


def test_a_police_stream_gets_its_own_district_police_events_only(service, scoped_bus, database_url):
    url, _ = service
    created = requests.post(f"{url}/v1/subscriptions", headers=POLICE, json={"sink": {"type": "queue"}})
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["scope"] == {"kind": "department", "department": "police", "unit_code": QIXIA,
                                     "unit_prefix": "320113", "district_code": QIXIA}
    stream = subscription["sink"]["stream"]
    assert stream.startswith(scoped_bus.desks["dept-qixia-police"].user + ".sub-")
    assert "secret" not in subscription or subscription["secret"] is None

    wanted = item_event("police")
    for event in (item_event("housing"), item_event("police", district=XUANWU, unit="320102002000"),
                  wanted, item_event("civil")):
        publish(scoped_bus, event)

    received = []
    police_uri = scoped_bus.department_uri("dept-qixia-police")
    thread = eventlet.spawn(subscription_stream_consumer.consume, police_uri, stream,
                            lambda event, offset: received.append((event, offset)), offset="first", timeout=6)
    assert wait_until(lambda: received, timeout=10), ("the police stream received nothing", count_rows(
        database_url, "subscriptions_deliveries", "subscriptions_events", "processed_messages"))
    thread.wait()
    assert [event["id"] for event, _ in received] == [wanted[2]]
    assert received[0][0]["data"]["department_code"] == "police"

    # The department may read its stream, never delete or fill it: only the subscriptions service may.
    with Connection(police_uri) as connection, pytest.raises(AccessRefused):
        connection.channel().queue_delete(stream)

    # Deleting the subscription deletes the stream.
    assert requests.delete(f"{url}/v1/subscriptions/{subscription['id']}", headers=POLICE).status_code == 200
    assert requests.get(f"{url}/v1/subscriptions/{subscription['id']}", headers=POLICE).status_code == 404
    with Connection(scoped_bus.base_uri) as connection:
        from amqp.exceptions import NotFound

        with pytest.raises(NotFound):
            connection.channel().queue_declare(stream, passive=True)


@pytest.mark.parametrize(("filters", "status", "reason"), [
    ([{"exact": {"district": XUANWU}}], 403, "outside_mandate"),               # another district
    ([{"prefix": {"unit": "3201"}}], 403, "outside_mandate"),                  # above its district: all Nanjing
    ([{"exact": {"department": "housing"}}], 403, "outside_mandate"),          # another department
    ([{"any": [{"exact": {"unit": MAIGAOQIAO}}, {"exact": {"unit": "320102002000"}}]}], 403, "outside_mandate"),
    ([{"exact": {"type": "cn.sanji.case.submitted.v1"}}], 403, "outside_mandate"),  # carries no department
    ([{"exact": {"type": "cn.sanji.item.teleported.v1"}}], 400, "unknown_event_type"),
    ([{"prefix": {"type": "cn.sanji.parcel."}}], 400, "unknown_event_type"),
    ([{"exact": {"type": "a", "unit": "b"}}], 400, "invalid_filter"),
    ([{"sql": "type = 'x'"}], 400, "invalid_filter"),
    ([{"exact": {"colour": "red"}}], 400, "invalid_filter"),
])
def test_filters_outside_the_mandate_or_malformed_are_refused_and_nothing_is_written(
        service, database_url, filters, status, reason):
    url, _ = service
    answer = requests.post(f"{url}/v1/subscriptions", headers=POLICE,
                           json={"sink": {"type": "queue"}, "filters": filters})
    assert (answer.status_code, answer.json()["reason"]) == (status, reason), answer.text
    assert count_rows(database_url, *TABLES) == {table: 0 for table in TABLES}


def test_narrower_filters_and_supervisors_are_accepted_and_others_refused(service, database_url):
    url, _ = service
    narrower = [{"exact": {"district": QIXIA}}, {"prefix": {"unit": "320113003"}},
                {"prefix": {"type": "cn.sanji.item."}}, {"not": {"exact": {"unit": "320102002000"}}}]
    answer = requests.post(f"{url}/v1/subscriptions", headers=POLICE,
                           json={"sink": {"type": "queue"}, "filters": narrower})
    assert answer.status_code == 201, answer.text
    # District staff: read-only over the jurisdiction, every department; a webhook (staff have no broker user).
    supervisor = requests.post(f"{url}/v1/subscriptions", headers=STAFF_QIXIA,
                               json={"sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}})
    assert supervisor.status_code == 201, supervisor.text
    assert supervisor.json()["scope"]["department"] is None and supervisor.json()["secret"].startswith("whsec_")
    refused = requests.post(f"{url}/v1/subscriptions", headers=STAFF_QIXIA, json={"sink": {"type": "queue"}})
    assert (refused.status_code, refused.json()["reason"]) == (422, "queue_sink_unavailable")
    kiosk = requests.post(f"{url}/v1/subscriptions", headers=KIOSK, json={"sink": {"type": "queue"}})
    assert (kiosk.status_code, kiosk.json()["reason"]) == (403, "subscriber_forbidden")
    for bad_url in ("http://example.org/hook", "ftp://127.0.0.1/x", "https://user:pw@127.0.0.1/x",
                    "https://no-such-host.invalid/hook"):
        answer = requests.post(f"{url}/v1/subscriptions", headers=HOUSING,
                               json={"sink": {"type": "webhook", "url": bad_url}})
        assert answer.status_code == 422 and answer.json()["reason"] in ("invalid_webhook_url", "webhook_unreachable")
    assert count_rows(database_url, "subscriptions_subscriptions") == {"subscriptions_subscriptions": 2}
    # Each sees its own only.
    assert len(requests.get(f"{url}/v1/subscriptions", headers=POLICE).json()["subscriptions"]) == 1
    assert requests.get(f"{url}/v1/subscriptions/{answer.json().get('id', 'x')}", headers=POLICE).status_code == 404
    other = requests.get(f"{url}/v1/subscriptions/{supervisor.json()['id']}", headers=POLICE)
    assert other.status_code == 404


def test_a_webhook_that_fails_then_recovers_gets_every_event_once_per_id_signed(service, scoped_bus,
                                                                                 database_url):
    url, _ = service
    failing = threading.Event()
    failing.set()
    handled, answers = [], []

    def on_event(event):
        if failing.is_set():
            raise RuntimeError("the department's system is down")
        handled.append(event)

    class RecordingReceiver(subscription_webhook_receiver.Receiver):
        def receive(self, headers, body):
            status = super().receive(headers, body)
            answers.append((status, {k.lower(): v for k, v in headers.items()}.get("webhook-id")))
            return status

    receiver = RecordingReceiver([], on_event)
    port = find_free_port()
    server = subscription_webhook_receiver.serve(receiver, port=port)
    server_thread = eventlet.spawn(server.serve_forever)
    try:
        created = requests.post(f"{url}/v1/subscriptions", headers=HOUSING, json={
            "sink": {"type": "webhook", "url": f"http://127.0.0.1:{port}/sanji"},
            "filters": [{"prefix": {"type": "cn.sanji.item."}}], "description": "住建 follows its items"})
        assert created.status_code == 201, created.text
        subscription = created.json()
        # The receiver verifies with the secret shown once (standardwebhooks); until now it would refuse all.
        receiver.webhooks = [Webhook(subscription["secret"])]

        case_id = new_id()
        events = [item_event("housing", case_id=case_id) for _ in range(3)]
        publish(scoped_bus, item_event("police", case_id=case_id))      # not housing's: never sent
        for event in events:
            publish(scoped_bus, event)
        wanted = {event[2] for event in events}

        def failing_view():
            page = requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries", headers=HOUSING).json()
            retried = [d for d in page["deliveries"] if d["status"] == "retrying" and d["attempts"] >= 2]
            return page if len(retried) == 3 else None

        page = wait_until(failing_view)
        assert page, "the failed attempts never showed in the failure view"
        assert {d["event_id"] for d in page["deliveries"]} == wanted
        for delivery in page["deliveries"]:
            assert delivery["last_status_code"] == 500 and delivery["last_error"] == "HTTP 500"
            assert len(delivery["failed_attempts"]) >= 2
            assert all(a["status_code"] == 500 for a in delivery["failed_attempts"])

        failing.clear()   # the department's system is back
        assert wait_until(lambda: len(handled) >= 3), "not every event arrived after the receiver recovered"
        eventlet.sleep(1.0)   # a duplicate would have its chance
        assert sorted(event["id"] for event in handled) == sorted(wanted)   # each once, housing only
        assert all(event["data"]["department_code"] == "housing" for event in handled)
        assert all(status == 200 for status, _ in answers[-3:])
        succeeded = [message_id for status, message_id in answers if status == 200]
        assert sorted(succeeded) == sorted(wanted)          # each id answered 2xx exactly once
        assert all(status in (200, 500) for status, _ in answers)   # every request verified (never 401)

        delivered = requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries?status=delivered",
                                 headers=HOUSING).json()
        assert delivered["counts"]["delivered"] == 3 and delivered["counts"]["retrying"] == 0
        assert all(d["failed_attempts"] for d in delivered["deliveries"])

        # Who was told about the case: the district's staff see 住建's three deliveries; police sees none of its own.
        report = wait_until(lambda: (r := requests.get(f"{url}/v1/disclosures", params={"case_id": case_id},
                                                       headers=STAFF_QIXIA).json())["disclosures"] and r)
        assert {row["event_id"] for row in report["disclosures"]} == wanted
        assert {row["subscriber"] for row in report["disclosures"]} == {"dept-qixia-housing"}
        police = requests.get(f"{url}/v1/disclosures", params={"case_id": case_id}, headers=POLICE).json()
        assert police["disclosures"] == []
        exported = requests.get(f"{url}/v1/disclosures", params={"case_id": case_id, "format": "csv"},
                                headers=HOUSING)
        assert exported.headers["Content-Type"].startswith("text/csv")
        lines = exported.text.strip().splitlines()
        assert lines[0].startswith("case_id,disclosed_at,subscriber") and len(lines) == 4

        # Self-service redelivery of one event: the same webhook-id again, which the receiver dedupes.
        again = requests.post(f"{url}/v1/subscriptions/{subscription['id']}/redeliver", headers=HOUSING,
                              json={"event_ids": [events[0][2], "no-such-event"]})
        assert again.json() == {"subscription_id": subscription["id"], "redelivered": 1,
                                "unknown_event_ids": ["no-such-event"]}
        assert wait_until(lambda: [a for a in answers if a == (200, events[0][2])][1:])
        eventlet.sleep(0.5)
        assert len(handled) == 3
    finally:
        server.shutdown()
        server_thread.kill()



def test_the_event_catalogue_is_served_whole_and_by_type(service):
    """Issue 18: GET /v1/event-types lists every type with its schema, filter attributes and an example, from the
    same models that validate the events; one type by any of its spellings; an unknown one is a 404 with a reason."""
    import json

    import jsonschema

    from shared.config import REPO_ROOT
    from shared.events import PAYLOAD_TYPES

    base, _ = service
    listing = requests.get(f"{base}/v1/event-types", timeout=10)
    assert listing.status_code == 200
    entries = listing.json()["event_types"]
    assert {entry["type"] for entry in entries} == set(PAYLOAD_TYPES)
    committed = json.loads((REPO_ROOT / "docs" / "event-types.json").read_text(encoding="utf-8"))
    assert entries == committed

    spellings = ("cn.sanji.item.routed.v1", "item.routed.v1", "item.routed")
    answers = [requests.get(f"{base}/v1/event-types/{spelling}", timeout=10) for spelling in spellings]
    assert [a.status_code for a in answers] == [200, 200, 200]
    routed = answers[0].json()
    assert all(a.json() == routed for a in answers)
    assert routed["type"] == "cn.sanji.item.routed.v1" and "department" in routed["filter_attributes"]
    jsonschema.validate(routed["example"]["data"], routed["schema"])

    unknown = requests.get(f"{base}/v1/event-types/item.teleported", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["reason"] == "unknown_event_type"
