"""The subscriptions service's paths round 1 left untested, on the real broker and both databases: secret rotation
(the old secret signs during the grace period, not after), pause and resume, automatic disabling of an endpoint
that keeps failing and its re-enabling, the admin's disclosure audit, a stream read from a time, and the
service's own metrics."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import eventlet
import pytest
import requests
from nameko.testing.utils import find_free_port

from examples import subscription_stream_consumer
from shared.auth import issue_person_assertion
from shared.clock import new_id
from tests.support.subscriptions import (
    ASSERTION_KEY,
    HOUSING,
    POLICE,
    XUANWU,
    RecordingReceiver,
    item_event,
    publish,
    start_service,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    receiver = RecordingReceiver()
    yield receiver
    receiver.close()


def person(*, unit: str, roles=()) -> dict:
    token = issue_person_assertion(ASSERTION_KEY, username="zhao.min", name="赵敏", unit_code=unit, kind="staff",
                                   department=None, roles=roles, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def subscription_of(url, headers, subscription_id) -> dict:
    return requests.get(f"{url}/v1/subscriptions/{subscription_id}", headers=headers, timeout=10).json()


def test_a_rotated_secret_signs_beside_the_new_one_during_the_grace_period_only(
        container_factory, make_service_config, scoped_bus, receiver):
    url, _ = start_service(container_factory, make_service_config, scoped_bus,
                           SANJI_SUBSCRIPTIONS_SECRET_GRACE_SECONDS=3)
    created = requests.post(f"{url}/v1/subscriptions", headers=HOUSING,
                            json={"sink": {"type": "webhook", "url": receiver.url}}).json()
    old = created["secret"]
    receiver.trust(old)
    rotated = requests.post(f"{url}/v1/subscriptions/{created['id']}/secrets", headers=HOUSING, timeout=10)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old and rotated.json()["previous_valid_until"]
    rotated_at = time.monotonic()

    # During the grace period a receiver that still knows only the old secret verifies the request.
    case_id = new_id()
    during = item_event("housing", case_id=case_id)
    publish(scoped_bus, during)
    assert wait_until(lambda: (200, during[2]) in receiver.answers), receiver.answers
    assert time.monotonic() - rotated_at < 3, "the grace period ended before the event was sent: too slow a machine"

    # After it, only the new secret signs: the old one no longer verifies (401, retried), the new one does.
    eventlet.sleep(max(0.0, 3.2 - (time.monotonic() - rotated_at)))
    after = item_event("housing", case_id=case_id)
    publish(scoped_bus, after)
    assert wait_until(lambda: (401, after[2]) in receiver.answers), receiver.answers
    assert (200, after[2]) not in receiver.answers
    receiver.trust(new)
    assert wait_until(lambda: (200, after[2]) in receiver.answers), receiver.answers
    assert [event["id"] for event in receiver.handled] == [during[2], after[2]]

    # The audit of the case: an admin sees every row wherever they act; staff of another district see none.
    def admin_view():   # written when the 2xx is recorded, just after the receiver answered
        report = requests.get(f"{url}/v1/disclosures", params={"case_id": case_id}, timeout=10,
                              headers=person(unit=XUANWU, roles=("admin",))).json()
        return report if len(report["disclosures"]) == 2 else None
    admin = wait_until(admin_view)
    assert admin, "the admin does not see both disclosures"
    assert sorted(row["event_id"] for row in admin["disclosures"]) == sorted([during[2], after[2]])
    assert {row["subscriber"] for row in admin["disclosures"]} == {"dept-qixia-housing"}
    elsewhere = requests.get(f"{url}/v1/disclosures", params={"case_id": case_id}, timeout=10,
                             headers=person(unit=XUANWU)).json()
    assert elsewhere["disclosures"] == []
    refused = requests.get(f"{url}/v1/disclosures", params={"case_id": case_id}, timeout=10,
                           headers={"Authorization": "Bearer dev-kiosk-xinhe"})
    assert (refused.status_code, refused.json()["reason"]) == (403, "disclosure_forbidden")


def test_pause_resume_and_an_endpoint_disabled_after_failing_then_re_enabled(
        container_factory, make_service_config, scoped_bus, receiver):
    metrics_port = find_free_port()
    url, _ = start_service(container_factory, make_service_config, scoped_bus,
                           SANJI_SUBSCRIPTIONS_DISABLE_SECONDS=1.0, SANJI_DB_PROBE_SECONDS=0,
                           SANJI_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}")
    created = requests.post(f"{url}/v1/subscriptions", headers=HOUSING,
                            json={"sink": {"type": "webhook", "url": receiver.url}}).json()
    receiver.trust(created["secret"])
    subscription = created["id"]

    def patch(body):
        answer = requests.patch(f"{url}/v1/subscriptions/{subscription}", headers=HOUSING, json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # Paused: it keeps collecting, sends nothing; resumed: what waited goes out.
    assert patch({"status": "paused"})["status"] == "paused"
    waiting = item_event("housing")
    publish(scoped_bus, waiting)
    assert wait_until(lambda: requests.get(f"{url}/v1/subscriptions/{subscription}/deliveries", headers=HOUSING)
                      .json()["counts"]["pending"] == 1)
    eventlet.sleep(1.0)
    assert receiver.answers == []
    assert patch({"status": "active"})["status"] == "active"
    assert wait_until(lambda: [event["id"] for event in receiver.handled] == [waiting[2]])

    # Down: every attempt fails; after SANJI_SUBSCRIPTIONS_DISABLE_SECONDS (1 s here, a day by default) of failures
    # the endpoint is disabled, with the reason, and nothing more is sent to it.
    receiver.down.set()
    failing = item_event("housing")
    publish(scoped_bus, failing)
    disabled = wait_until(lambda: (view := subscription_of(url, HOUSING, subscription))["status"] == "disabled"
                          and view, timeout=20)
    assert disabled, subscription_of(url, HOUSING, subscription)
    assert "every attempt failed since" in disabled["status_reason"] and disabled["failing_since"]
    eventlet.sleep(0.5)
    sent_while_disabled = len(receiver.answers)
    later = item_event("housing")
    publish(scoped_bus, later)
    assert wait_until(lambda: requests.get(f"{url}/v1/subscriptions/{subscription}/deliveries", headers=HOUSING)
                      .json()["counts"]["pending"] == 1)
    eventlet.sleep(1.0)
    assert len(receiver.answers) == sent_while_disabled   # disabled: nothing is tried

    # The service's own metrics show it: failed attempts, a disabled endpoint, the backlog.
    metrics = scrape(metrics_port)
    assert metrics[("sanji_subscriptions_webhook_results_total", (("outcome", "delivered"),))] == 1
    assert metrics[("sanji_subscriptions_webhook_results_total", (("outcome", "failed"),))] >= 2
    assert metrics[("sanji_subscriptions_webhook_results_total", (("outcome", "disabled"),))] == 1
    assert metrics[("sanji_subscriptions_deliveries", (("sink", "webhook"), ("status", "delivered")))] == 1
    assert metrics[("sanji_subscriptions_deliveries", (("sink", "webhook"), ("status", "retrying")))] == 1
    assert metrics[("sanji_subscriptions_deliveries", (("sink", "webhook"), ("status", "pending")))] == 1
    assert metrics[("sanji_subscriptions_backlog", (("sink", "webhook"),))] == 0   # disabled: not due
    assert metrics[("sanji_subscriptions_replays", (("status", "running"),))] == 0

    # Back up and re-enabled by its owner: what waited is due at once, each id handled once.
    receiver.down.clear()
    view = patch({"status": "active"})
    assert view["status"] == "active" and view["status_reason"] is None and view["failing_since"] is None
    assert wait_until(lambda: sorted(event["id"] for event in receiver.handled)
                      == sorted([waiting[2], failing[2], later[2]]))
    counts = wait_until(lambda: (c := requests.get(f"{url}/v1/subscriptions/{subscription}/deliveries",
                                                   headers=HOUSING).json()["counts"])["delivered"] == 3 and c)
    assert counts == {"pending": 0, "retrying": 0, "delivered": 3, "given_up": 0}
    metrics = wait_until(lambda: (m := scrape(metrics_port))[
        ("sanji_subscriptions_deliveries", (("sink", "webhook"), ("status", "delivered")))] == 3 and m)
    assert metrics[("sanji_subscriptions_webhook_results_total", (("outcome", "delivered"),))] == 3
    assert metrics[("sanji_subscriptions_backlog_oldest_seconds", (("sink", "webhook"),))] == 0


def scrape(port: int) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_a_stream_sink_is_read_from_a_time(container_factory, make_service_config, scoped_bus):
    """The department reads its stream from a timestamp offset (AMQP 0-9-1, examples/subscription_stream_consumer):
    what was appended from that second on, nothing before."""
    metrics_port = find_free_port()
    url, _ = start_service(container_factory, make_service_config, scoped_bus, SANJI_DB_PROBE_SECONDS=0,
                           SANJI_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}")
    created = requests.post(f"{url}/v1/subscriptions", headers=POLICE, json={"sink": {"type": "queue"}}).json()
    stream = created["sink"]["stream"]

    def delivered():
        return requests.get(f"{url}/v1/subscriptions/{created['id']}/deliveries?status=delivered",
                            headers=POLICE).json()["counts"]["delivered"]

    before = [item_event("police") for _ in range(3)]
    publish(scoped_bus, *before)
    assert wait_until(lambda: delivered() == 3)
    # AMQP timestamps are whole seconds: start from the next second, and append the rest after it.
    boundary = math.ceil(time.time()) + 1
    eventlet.sleep(boundary - time.time() + 0.3)
    after = [item_event("police") for _ in range(4)]
    publish(scoped_bus, *after, item_event("housing"))
    assert wait_until(lambda: delivered() == 7)
    received = []
    subscription_stream_consumer.consume(scoped_bus.department_uri("dept-qixia-police"), stream,
                                         lambda event, offset: received.append((event["id"], offset)),
                                         offset=datetime.fromtimestamp(boundary, UTC), timeout=4)
    assert [event_id for event_id, _ in received] == [event[2] for event in after]
    assert [offset for _, offset in received] == [3, 4, 5, 6]
    assert scrape(metrics_port)[("sanji_subscriptions_stream_published_total", ())] == 7
