"""The evaluation service follows the working-day calendar's revisions, over the real broker and database.

- A rectification opened on Monday 28 December 2026 is due five working days later, in January 2027, whose
  arrangement is not loaded yet: its due time (and its escalation time, and a 督办单 about it) is provisional, and
  the API and ``rectification.opened.v2`` say so. The 2027 arrangement is then installed, making Saturday 2 January
  a working day: the revision (run twice, on two replicas) moves the stored times once, publishes one
  ``rectification.due-date-revised``, and the owning unit's inbox gets one message; the overdue sweep goes by the
  revised due time.
- Routing's ``item.deadline-revised`` moves the promised deadline the resolution rate is measured against, and
  neither a redelivery nor a late event from before the revision brings the old deadline back.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook, entrypoint_waiter
from nameko.testing.utils import find_free_port

from services.evaluation.service import EvaluationService
from services.notification.service import NotificationService
from shared.clock import FrozenClock, new_id
from shared.events import (
    CaseCompletedV1,
    CloudEvent,
    ItemDeadlineRevisedV1,
    ItemOutcome,
    ItemResolvedV1,
    ItemRoutedV1,
)
from shared.nameko_ext import ClockProvider
from shared.workdays import SHANGHAI
from tests.support import notification_db
from tests.support.bus import EventFollower, publish_raw
from tests.support.calendar_files import calendar_file, load_2027_arrangement  # noqa: F401 - fixture
from tests.support.escalation_harness import query
from tests.support.routing_harness import STAFF
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

XINHE, DISTRICT = "320113003021", "320113000000"
OPENED_AT = datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)
WORKED_SATURDAY = date(2027, 1, 2)
RATER_PHONE = "13812345678"


def on_clock(clock):
    return type("EvaluationOnFrozenClock", (EvaluationService,), {"clock": ClockProvider(clock)})


@pytest.fixture
def clock():
    return FrozenClock(OPENED_AT)


@pytest.fixture
def system(container_factory, make_service_config, calendar_file, clock, tmp_path):
    overrides = dict(SANJI_CALENDAR_OVERRIDES=str(calendar_file), SANJI_EVALUATION_SWEEP_SECONDS=3600)
    port = find_free_port()
    evaluation = container_factory(on_clock(clock), make_service_config("evaluation", web_port=port, **overrides))
    replica = container_factory(on_clock(clock), make_service_config(
        "evaluation", WEB_SERVER_ADDRESS="127.0.0.1:0", **overrides))
    notification = container_factory(NotificationService, make_service_config(
        "notification", WEB_SERVER_ADDRESS="127.0.0.1:0", SANJI_NOTIFICATION_QUIET_HOURS="off",
        SANJI_NOTIFICATION_SWEEP_SECONDS=0.05, SANJI_VAR_DIR=str(tmp_path / "var"),
        SANJI_CALENDAR_OVERRIDES=str(calendar_file)))
    for container in (notification, evaluation):
        container.start()
    # The replica is started by the test that needs it, once the events it would compete for are handled.
    return dict(evaluation=evaluation, replica=replica, notification=notification, url=f"http://127.0.0.1:{port}")


def _item(item_id: str, case_id: str) -> dict:
    return dict(item_id=item_id, case_id=case_id, case_number="SJ-1", matter_code="birth-registration-proof",
                department_code="health", level="community", unit_code=XINHE, district_code=DISTRICT,
                community_code=XINHE)


def deliver(container, amqp: str, payload, *, event_id: str | None = None) -> str:
    time = payload.model_dump().get("occurred_at") or payload.model_dump().get("completed_at")
    event = CloudEvent.wrap(payload, source="/sanji/routing", time=time, event_id=event_id)
    results = []
    with entrypoint_waiter(container, "on_event", callback=lambda _c, result, _e: results.append(result) or True):
        publish_raw(amqp, event.model_dump_json(), payload.routing_key())
    return results[0]


def run(container, entrypoint: str):
    with entrypoint_hook(container, entrypoint) as call:
        return call()


def local(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(SHANGHAI)


def test_a_provisional_rectification_and_its_order_are_revised_once_and_the_unit_is_told_once(
        system, rabbit_config, database_url, calendar_file, clock):
    amqp, base = rabbit_config["AMQP_URI"], system["url"]
    everything = EventFollower(amqp, "audit.evaluation-revision", "rectification.#")
    case_id, item_id = new_id(), new_id()
    start = OPENED_AT - timedelta(days=3)
    deliver(system["evaluation"], amqp, ItemRoutedV1(
        **_item(item_id, case_id), status="queued", occurred_at=start, legal_deadline=start + timedelta(days=20),
        promised_deadline=start + timedelta(days=10), deadline_provisional=False, catalogue_version="v"))
    deliver(system["evaluation"], amqp, ItemResolvedV1(
        **_item(item_id, case_id), status="resolved", occurred_at=start + timedelta(hours=2), actor="s",
        result="ok", delivery={"method": "pickup", "place": "窗口"}))
    deliver(system["evaluation"], amqp, CaseCompletedV1(
        case_id=case_id, case_number="SJ-1", community_code=XINHE, delivery=None,
        outcomes=(ItemOutcome(item_id=item_id, matter_code="birth-registration-proof", status="resolved"),),
        completed_at=OPENED_AT - timedelta(hours=1)))

    # A 不满意 at the kiosk on 28 December opens a rectification: 5 working days, into the unloaded 2027.
    rated = requests.post(f"{base}/v1/cases/{case_id}/ratings", headers={**STAFF["kiosk"],
                          "Content-Type": "application/json"},
                          data=json.dumps({"item_id": item_id, "level": "不满意", "rater_phone": RATER_PHONE}))
    assert rated.status_code == 201, rated.text
    rectification_id = rated.json()["rectification_id"]
    url = f"{base}/v1/rectifications/{rectification_id}"
    before = requests.get(url, headers=STAFF["xinhe"]).json()
    assert local(before["deadline"]) == datetime(2027, 1, 5, 17, 30, tzinfo=SHANGHAI)
    assert before["deadline_provisional"] is True and before["escalate_at_provisional"] is True
    assert local(before["escalate_at"]) == datetime(2027, 1, 7, 17, 30, tzinfo=SHANGHAI)
    # The street's 督办单 about it, due in 5 working days: provisional too.
    order = requests.post(f"{base}/v1/supervision-orders", headers={**STAFF["maigaoqiao"],
                          "Content-Type": "application/json"}, data=json.dumps(
        {"subject_type": "rectification", "subject_id": rectification_id, "target_unit_code": XINHE,
         "what": "请说明整改进展", "due_in_working_days": 5}))
    assert order.status_code == 201, order.text
    assert order.json()["due_at_provisional"] is True
    assert local(order.json()["due_at"]).date() == date(2027, 1, 5)

    # The owning unit was told, provisionally (from rectification.opened.v2; v1 tells no one).
    wait_until(lambda: notification_db.deliveries(database_url, kind="rectification_opened"),
               what="the unit told of the rectification")
    [opened] = notification_db.deliveries(database_url, kind="rectification_opened")
    assert opened["recipient"] == f"unit:{XINHE}:health" and "（暂定）" in opened["subject"]

    # Nothing to revise while 2027 is not loaded.
    assert run(system["evaluation"], "revise_due_dates")["revised"] == 0

    system["replica"].start()
    load_2027_arrangement(calendar_file, WORKED_SATURDAY)
    first = run(system["evaluation"], "revise_due_dates")
    again = run(system["evaluation"], "revise_due_dates")
    replica = run(system["replica"], "revise_due_dates")
    assert (first["revised"], first["dates_changed"], first["orders_revised"]) == (1, 1, 1)
    assert again is None or (again["revised"], again["orders_revised"]) == (0, 0)  # no calendar change since
    assert (replica["revised"], replica["orders_revised"]) == (0, 0)  # the other replica finds nothing left

    after = requests.get(url, headers=STAFF["xinhe"]).json()
    assert local(after["deadline"]) == datetime(2027, 1, 4, 17, 30, tzinfo=SHANGHAI)  # the worked Saturday counts
    assert local(after["escalate_at"]) == datetime(2027, 1, 6, 17, 30, tzinfo=SHANGHAI)
    assert after["deadline_provisional"] is False and after["escalate_at_provisional"] is False
    [listed] = requests.get(f"{base}/v1/supervision-orders", headers=STAFF["maigaoqiao"]).json()["orders"]
    assert local(listed["due_at"]) == datetime(2027, 1, 4, 17, 30, tzinfo=SHANGHAI)
    assert listed["due_at_provisional"] is False

    # One event, codes and ids only; one inbox message for the owning unit.
    wait_until(lambda: notification_db.deliveries(database_url, kind="rectification_due_revised"),
               what="the unit told of the revised due time")
    events = everything.settle(1.0)
    everything.stop()
    revised = [e for e in events if e["type"] == "cn.sanji.rectification.due-date-revised.v1"]
    assert len(revised) == 1
    assert revised[0]["data"]["rectification_id"] == rectification_id
    assert local(revised[0]["data"]["previous_deadline"]).date() == date(2027, 1, 5)
    assert revised[0]["data"]["deadline_provisional"] is False
    opened_v2 = [e for e in events if e["type"] == "cn.sanji.rectification.opened.v2"]
    assert len(opened_v2) == 1 and opened_v2[0]["data"]["deadline_provisional"] is True
    assert RATER_PHONE not in json.dumps(events, ensure_ascii=False)
    [told] = notification_db.deliveries(database_url, kind="rectification_due_revised")
    assert told["recipient"] == f"unit:{XINHE}:health" and told["channel"] == "inbox"
    assert "由2027年1月5日 17:30更正为2027年1月4日 17:30" in told["body"]
    assert [m["kind"] for m in notification_db.inbox(database_url)].count("rectification_due_revised") == 1

    # The overdue sweep goes by the revised due time: past 4 January 17:30 (before the provisional 5th) it warns.
    clock.advance(seconds=(datetime(2027, 1, 4, 18, 0, tzinfo=SHANGHAI) - clock.now()).total_seconds())
    assert run(system["evaluation"], "sweep_rectifications") == {"warning": 1, "escalated": 0}
    assert requests.get(url, headers=STAFF["xinhe"]).json()["state"] == "warned"
    # And a revision pass after all this still finds nothing: one event, one message.
    assert (run(system["replica"], "revise_due_dates") or {"revised": 0})["revised"] == 0
    assert len(notification_db.deliveries(database_url, kind="rectification_due_revised")) == 1
    assert query(database_url, "SELECT count(*) FROM outbox_messages WHERE event_type = "
                               "'cn.sanji.rectification.due-date-revised.v1'")[0][0] == 1


def test_a_revised_promised_deadline_reaches_the_rates_and_a_stale_event_does_not_undo_it(
        system, rabbit_config, database_url):
    amqp, base = rabbit_config["AMQP_URI"], system["url"]
    evaluation = system["evaluation"]
    case_id, item_id = new_id(), new_id()
    routed_at = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
    provisional = datetime(2027, 1, 11, 17, 30, tzinfo=SHANGHAI)   # counted without 2027's 调休
    revised_to = datetime(2027, 1, 9, 17, 30, tzinfo=SHANGHAI)     # a worked Saturday counts
    routed = ItemRoutedV1(**_item(item_id, case_id), status="queued", occurred_at=routed_at,
                          legal_deadline=provisional + timedelta(days=3), promised_deadline=provisional,
                          deadline_provisional=True, catalogue_version="v")
    assert deliver(evaluation, amqp, routed, event_id="routed-1") == routed.event_type
    # Resolved on Sunday 10 January: in time by the provisional deadline, late by the revised one.
    resolved = ItemResolvedV1(**_item(item_id, case_id), status="resolved", actor="s", result="ok",
                              occurred_at=datetime(2027, 1, 10, 10, 0, tzinfo=SHANGHAI),
                              delivery={"method": "pickup", "place": "窗口"})
    deliver(evaluation, amqp, resolved)

    def stored() -> tuple[datetime, int]:
        [(deadline, in_time)] = query(database_url, "SELECT promised_deadline, concluded_in_time FROM "
                                                    "evaluation_items WHERE item_id = :i", i=item_id)
        if isinstance(deadline, str):
            deadline = datetime.fromisoformat(deadline)
        if deadline.tzinfo is None:  # SQLite: naive UTC
            deadline = deadline.replace(tzinfo=UTC)
        return deadline, in_time

    def rates() -> dict:
        response = requests.get(f"{base}/v1/rates", params={"period": "2027-01", "district": DISTRICT},
                                headers=STAFF["qixia"])
        assert response.status_code == 200, response.text
        [row] = [row for row in response.json()["rows"] if row["key"] == XINHE]
        return {key: row[key] for key in ("due", "concluded_in_time", "resolution_rate")}

    assert stored() == (provisional, 1)
    assert rates() == {"due": 1, "concluded_in_time": 1, "resolution_rate": 1.0}

    revision = ItemDeadlineRevisedV1(
        **_item(item_id, case_id), status="resolved", occurred_at=datetime(2026, 12, 20, 9, 0, tzinfo=SHANGHAI),
        legal_deadline=revised_to + timedelta(days=3), promised_deadline=revised_to, deadline_provisional=False,
        previous_legal_deadline=provisional + timedelta(days=3), previous_promised_deadline=provisional,
        revised_at=datetime(2026, 12, 20, 9, 0, tzinfo=SHANGHAI))
    assert deliver(evaluation, amqp, revision, event_id="revised-1") == revision.event_type
    assert stored() == (revised_to, 0)
    assert rates() == {"due": 1, "concluded_in_time": 0, "resolution_rate": 0.0}

    # The same revision again, the routing event replayed late (a new delivery of an old fact), and an older
    # revision arriving after the newer one: none brings the provisional deadline back.
    assert deliver(evaluation, amqp, revision, event_id="revised-1") == "duplicate"
    assert deliver(evaluation, amqp, routed, event_id="routed-replayed") == routed.event_type
    older = revision.model_copy(update={"occurred_at": datetime(2026, 12, 15, 9, 0, tzinfo=SHANGHAI),
                                        "promised_deadline": provisional})
    assert deliver(evaluation, amqp, older, event_id="revised-0") == revision.event_type
    assert stored() == (revised_to, 0)
    assert rates() == {"due": 1, "concluded_in_time": 0, "resolution_rate": 0.0}
