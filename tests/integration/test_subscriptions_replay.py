"""Replay from the event log through the subscriptions API (issue 18), on the real broker and both databases.

The events are published to ``sanji.events`` as routing publishes them, so each lands both in the service's queue
(the live path) and in its district's partition of the event log (``shared/event_log.py``); their CloudEvent
times are set an hour and more in the past (the city's clock, not the broker's), as after an hour of downtime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from shared.auth import issue_person_assertion
from shared.clock import new_id
from tests.support.db import count_rows
from tests.support.subscriptions import (
    ASSERTION_KEY,
    HOUSING,
    MAIGAOQIAO,
    POLICE,
    QIXIA,
    XUANWU,
    RecordingReceiver,
    item_event,
    publish,
    start_service,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def service(container_factory, make_service_config, scoped_bus):
    # Deliveries to a receiver that is down are given up within a second (a day in production), so what the
    # receiver missed is lost to the live path; the log keeps three hours here (30 days by default).
    return start_service(container_factory, make_service_config, scoped_bus,
                         SANJI_SUBSCRIPTIONS_GIVE_UP_SECONDS=0.5, SANJI_EVENT_LOG_MAX_AGE="3h")


@pytest.fixture
def receiver():
    receiver = RecordingReceiver()
    yield receiver
    receiver.close()


def replay(url, subscription_id, headers, body):
    return requests.post(f"{url}/v1/subscriptions/{subscription_id}/replay", headers=headers, json=body, timeout=10)


def finished(url, subscription_id, replay_id, headers):
    def done():
        view = requests.get(f"{url}/v1/subscriptions/{subscription_id}/replays/{replay_id}", headers=headers,
                            timeout=10).json()
        return view if view["status"] in ("done", "failed") else None
    return wait_until(done, timeout=30)


def test_a_webhook_consumer_down_for_an_hour_replays_exactly_what_it_missed(service, scoped_bus, receiver,
                                                                            database_url):
    url, _ = service
    now = datetime.now(UTC).replace(microsecond=0)
    created = requests.post(f"{url}/v1/subscriptions", headers=HOUSING, json={
        "sink": {"type": "webhook", "url": receiver.url}, "filters": [{"prefix": {"type": "cn.sanji.item."}}]})
    assert created.status_code == 201, created.text
    subscription = created.json()
    receiver.trust(subscription["secret"])

    def delivered_count():
        return requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries?status=delivered",
                            headers=HOUSING).json()["counts"]["delivered"]

    def in_scope(minutes_ago):
        return item_event("housing", time=now - timedelta(minutes=minutes_ago))

    def outside_scope(minutes_ago):   # the same district's police, and another district's housing
        moment = now - timedelta(minutes=minutes_ago)
        return [item_event("police", time=moment),
                item_event("housing", district=XUANWU, unit="320102002000", time=moment)]

    # Up: an hour and a half ago and before.
    before = [in_scope(minutes) for minutes in (100, 90, 75)]
    publish(scoped_bus, *before, *outside_scope(80))
    assert wait_until(lambda: len(receiver.handled) == 3), receiver.answers

    # Down for the hour: Sanji retries, then gives up (given_up after 0.5 s here, a day in production).
    receiver.down.set()
    missed = [in_scope(minutes) for minutes in (60, 45, 30, 15, 2)]
    publish(scoped_bus, *missed, *outside_scope(40), *outside_scope(10))

    def given_up():
        page = requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries?status=given_up",
                            headers=HOUSING).json()
        return page["total"] == len(missed)
    assert wait_until(given_up, timeout=30), "the deliveries of the hour down were never given up"

    # Back, and the city goes on.
    receiver.down.clear()
    after = [in_scope(1), in_scope(0)]
    publish(scoped_bus, *after, *outside_scope(0))
    assert wait_until(lambda: len(receiver.handled) == 5)
    # ... and Sanji has recorded them delivered: the sender writes its results just after the receiver's 200, and
    # a replay asked in between leaves a delivery it finds still on its way as it is (it was just sent)
    assert wait_until(lambda: delivered_count() == 5), delivered_count()
    handled_before_replay = {event["id"] for event in receiver.handled}
    assert handled_before_replay == {event[2] for event in before + after}
    requests_before_replay = len(receiver.answers)

    # Replay from the moment it went down.
    asked = replay(url, subscription["id"], HOUSING, {"from_time": (now - timedelta(minutes=60)).isoformat()})
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] in ("queued", "running", "done")
    view = finished(url, subscription["id"], asked.json()["id"], HOUSING)
    assert view and view["status"] == "done", view
    # Every event of the district's partition from then on was read; the housing items of the hour and after
    # (and nothing else: not police's, not the case's other events) were queued again.
    assert view["events_matched"] == len(missed) + len(after)
    assert view["events_read"] == view["events_matched"] + 3   # police at -40, -10 and -0 min
    assert list(view["positions"]) == [f"sanji.event-log-{QIXIA}"]

    wanted = {event[2] for event in before + missed + after}
    assert wait_until(lambda: {event["id"] for event in receiver.handled} == wanted, timeout=20), \
        (len(receiver.handled), receiver.answers[requests_before_replay:])

    def replayed_answers():
        return [message_id for status, message_id in receiver.answers[requests_before_replay:] if status == 200]

    # the replayed copies of what it already had (those after the hour) may come after the ones it missed: wait
    # for as many as the replay queued, then give a late duplicate or a stray event its chance
    wait_until(lambda: len(replayed_answers()) >= len(missed + after), timeout=20)
    wait_until(lambda: False, timeout=1.0)
    replayed = replayed_answers()
    # Exactly what it missed and what came after (the same webhook-id, so the receiver dedupes those it had),
    # each once; nothing from before the hour, nothing outside its scope.
    assert sorted(replayed) == sorted(event[2] for event in missed + after)
    handled_ids = [event["id"] for event in receiver.handled]
    assert sorted(handled_ids) == sorted(wanted)      # each handled once after dedupe
    assert all(event["data"]["department_code"] == "housing" and event["data"]["district_code"] == QIXIA
               for event in receiver.handled)
    # the results of the replay's sends are written just after the receiver's answers
    assert wait_until(lambda: delivered_count() == len(wanted)), delivered_count()
    page = requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries?status=delivered",
                        headers=HOUSING).json()
    assert page["counts"]["given_up"] == 0 and page["counts"]["delivered"] == len(wanted)
    assert count_rows(database_url, "subscriptions_replays") == {"subscriptions_replays": 1}


def _assertion(*, kind="staff", unit=MAIGAOQIAO, department=None, username="wang.li"):
    token = issue_person_assertion(ASSERTION_KEY, username=username, name="王力", unit_code=unit, kind=kind,
                                   department=department, roles=(), now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def test_the_mandate_is_checked_again_at_replay_time_and_bad_windows_are_refused(service, database_url):
    """A supervisor of 迈皋桥街道 subscribes; later the same person acts for another street, or is no longer a
    supervisor: the replay is refused, whatever the subscription says. Bad windows are refused; nothing is written."""
    url, _ = service
    now = datetime.now(UTC)
    created = requests.post(f"{url}/v1/subscriptions", headers=_assertion(),
                            json={"sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}})
    assert created.status_code == 201, created.text
    subscription_id = created.json()["id"]
    start = {"from_time": (now - timedelta(minutes=30)).isoformat()}

    moved = replay(url, subscription_id, _assertion(unit="320113002000"), start)       # 马群街道 now
    assert (moved.status_code, moved.json()["reason"]) == (403, "mandate_changed"), moved.text
    assert moved.json()["subscription_scope"]["unit_prefix"] == "320113003"
    narrowed = replay(url, subscription_id, _assertion(unit="320113003021"), start)    # a community's staff
    assert (narrowed.status_code, narrowed.json()["reason"]) == (403, "subscriber_forbidden"), narrowed.text
    revoked = replay(url, subscription_id, _assertion(kind="specialist"), start)       # no longer a supervisor
    assert (revoked.status_code, revoked.json()["reason"]) == (403, "subscriber_forbidden"), revoked.text
    department = replay(url, subscription_id, _assertion(kind="department", department="police"), start)
    assert (department.status_code, department.json()["reason"]) == (403, "mandate_changed"), department.text
    stranger = replay(url, subscription_id, POLICE, start)                              # not the owner
    assert stranger.status_code == 404
    expired = issue_person_assertion(ASSERTION_KEY, username="wang.li", name="王力", unit_code=MAIGAOQIAO,
                                     kind="staff", department=None, roles=(), now=now - timedelta(hours=1))
    assert replay(url, subscription_id, {"Authorization": f"Bearer {expired}"}, start).status_code == 401

    for body, status, reason in [
        ({"from_time": (now + timedelta(minutes=5)).isoformat()}, 422, "replay_out_of_range"),   # the future
        ({"from_time": (now - timedelta(hours=4)).isoformat()}, 422, "replay_out_of_range"),     # beyond 3h kept
        ({"from_time": "2026-12-01T08:00:00"}, 422, "validation_failed"),                        # no time zone
        ({"from_time": "yesterday"}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"from_time": start["from_time"], "until": (now - timedelta(hours=1)).isoformat()}, 422,
         "validation_failed"),
        ({"from_offsets": {f"sanji.event-log-{XUANWU}": 0}}, 403, "outside_mandate"),            # another district
        ({"from_offsets": {QIXIA: -1}}, 422, "validation_failed"),
        ({"from_time": start["from_time"], "colour": "red"}, 422, "validation_failed"),
    ]:
        answer = replay(url, subscription_id, _assertion(), body)
        assert (answer.status_code, answer.json()["reason"]) == (status, reason), (body, answer.text)
        assert "Traceback" not in answer.text
    garbled = requests.post(f"{url}/v1/subscriptions/{subscription_id}/replay", data=b"{not json", timeout=10,
                            headers={**_assertion(), "Content-Type": "application/json"})
    assert garbled.status_code == 400 and garbled.json()["reason"] == "malformed_json"
    assert count_rows(database_url, "subscriptions_replays") == {"subscriptions_replays": 0}

    # The same person, now district staff (a mandate that still covers the street), may replay; a second replay
    # while it runs is refused; an unknown replay id is a 404.
    wider = _assertion(unit=QIXIA)
    accepted = replay(url, subscription_id, wider, start)
    assert accepted.status_code == 202, accepted.text
    again = replay(url, subscription_id, wider, start)   # the first reads until its quiet log is 2 s idle
    assert (again.status_code, again.json()["reason"]) == (409, "replay_in_progress"), again.text
    assert finished(url, subscription_id, accepted.json()["id"], wider)["status"] == "done"
    assert requests.get(f"{url}/v1/subscriptions/{subscription_id}/replays/{new_id()}", headers=wider,
                        timeout=10).status_code == 404
    assert requests.get(f"{url}/v1/subscriptions/{subscription_id}/replays/{accepted.json()['id']}",
                        headers=POLICE, timeout=10).status_code == 404
