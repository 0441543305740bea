"""The evaluation service's events through the notification service on the real broker and database: a
rectification opened, overdue, escalated (inboxes of the owning unit and the level above), closed (the resident's
SMS with the result and its coded reason, the phone asked of intake by case id), an appeal decided, a 督办单 issued
and answered. Each message once, whatever the redeliveries; no contact data in any log line."""

from __future__ import annotations

from datetime import datetime

import pytest
from nameko.testing.services import replace_dependencies

from services.notification.service import NotificationService
from shared.events import (
    AppealDecidedV1,
    RectificationClosedV1,
    RectificationClosedV2,
    RectificationOpenedV1,
    RectificationOpenedV2,
    RectificationOverdueV1,
    SupervisionOrderAnsweredV1,
    SupervisionOrderIssuedV1,
)
from shared.workdays import SHANGHAI
from tests.support import notification_db as db
from tests.support.cases import MAIGAOQIAO_STAFF
from tests.support.db import count_rows
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE, envelope, fake_intake, sample
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures, found by name
    clock,
    http,
    no_contact_data_in_logs,
    smtp,
)
from tests.support.notification_harness import one_more_sweep, publish, sweep_until

pytestmark = pytest.mark.integration

V2_ONLY = {"reason_code", "case_number", "community_code"}  # what rectification.closed.v1 lacks
OPENED_V2_ONLY = {"deadline_provisional", "escalate_at", "escalate_at_provisional"}  # what opened.v1 lacks

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
EVALUATION = "/sanji/evaluation"
CASE = sample(RectificationClosedV2.event_type).case_id
COMMUNITY, STREET = "320113003021", "320113003000"
XINHE_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}


@pytest.fixture
def notification(container_factory, make_service_config, http, smtp, tmp_path, web_config_port, clock):
    intake = container_factory(fake_intake({CASE: {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}}),
                               make_service_config("intake"))
    intake.start()
    config = make_service_config(
        "notification", web_port=web_config_port,
        SANJI_NOTIFICATION_SMS_URL=http.url("/sms"), SANJI_NOTIFICATION_SMS_API_KEY="test-gateway-key",
        SANJI_NOTIFICATION_SMTP_HOST=smtp.host, SANJI_NOTIFICATION_SMTP_PORT=smtp.port,
        SANJI_NOTIFICATION_SWEEP_SECONDS=0.05, SANJI_NOTIFICATION_SEND_TIMEOUT_SECONDS=3,
        SANJI_VAR_DIR=str(tmp_path / "var"))
    container = container_factory(NotificationService, config)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


def nothing_pending(database_url):
    return lambda: not db.deliveries(database_url, status="pending")


def evaluation_events(at: datetime):
    """What the evaluation service publishes over one rectification's life, an appeal and a 督办单: opening and
    closing in both versions side by side (v1 tells no one; v2 has the provisional flag, the coded reason)."""
    closed = sample(RectificationClosedV2.event_type, 2)  # 无法整改, beyond_authority
    opened = sample(RectificationOpenedV2.event_type)
    payloads = [
        RectificationOpenedV1.model_validate(opened.model_dump(exclude=OPENED_V2_ONLY)),
        opened,
        sample(RectificationOverdueV1.event_type, 0),
        sample(RectificationOverdueV1.event_type, 1),
        RectificationClosedV1.model_validate(closed.model_dump(exclude=V2_ONLY)),
        closed,
        sample(AppealDecidedV1.event_type, 1),
        sample(SupervisionOrderIssuedV1.event_type),
        sample(SupervisionOrderAnsweredV1.event_type, 1),
    ]
    return [envelope(payload, at, source=EVALUATION) for payload in payloads]


EXPECTED = {
    ("rectification_opened", f"unit:{COMMUNITY}:police", "inbox"),
    ("rectification_overdue", f"unit:{COMMUNITY}:police", "inbox"),
    ("rectification_escalated", f"unit:{STREET}:police", "inbox"),
    ("rectification_closed", f"resident:{CASE}", "sms"),
    ("appeal_decided", f"unit:{COMMUNITY}:police", "inbox"),
    ("supervision_order_issued", f"unit:{COMMUNITY}:police", "inbox"),
    ("supervision_order_answered", f"unit:{STREET}:police", "inbox"),
}


def inbox_kinds(web_session, headers, **query) -> list[str]:
    response = web_session.get("/v1/inbox", headers=headers, params=query)
    assert response.status_code == 200, response.text
    return sorted(message["kind"] for message in response.json()["messages"])


def test_every_evaluation_event_reaches_its_people_once_and_a_redelivery_sends_nothing(
        notification, rabbit_config, database_url, http, smtp, web_session):
    events = evaluation_events(DAY)
    for event, routing_key in events:
        publish(notification, rabbit_config["AMQP_URI"], event, routing_key)
    sweep_until(notification, nothing_pending(database_url))

    rows = db.deliveries(database_url)
    assert {(row["kind"], row["recipient"], row["channel"]) for row in rows} == EXPECTED
    assert len(rows) == len(EXPECTED) and {row["status"] for row in rows} == {"sent"}

    # The resident: one SMS, to the case's phone (asked of intake), with the result and its reason; no email.
    [sms] = [request.json() for request in http.to("/sms")]
    closing = db.one(database_url, kind="rectification_closed")
    assert sms["to"] == RESIDENT_PHONE and sms["client_ref"] == closing["id"] and sms["text"] == closing["body"]
    assert "结果：无法整改" in sms["text"] and "理由：超出本单位职权范围" in sms["text"]
    assert "SJ20261201-SAMPLE01" in sms["text"]
    assert closing["case_id"] == CASE and closing["address_hint"] == "139****4321"
    assert smtp.messages() == []

    # The inboxes: the community's own, and the street's (its own and the units below it).
    assert inbox_kinds(web_session, XINHE_STAFF) == ["appeal_decided", "rectification_opened",
                                                     "rectification_overdue", "supervision_order_issued"]
    street_only = [message["kind"] for message in web_session.get("/v1/inbox", headers=MAIGAOQIAO_STAFF).json()[
        "messages"] if message["unit_code"] == STREET]
    assert sorted(street_only) == ["rectification_escalated", "supervision_order_answered"]
    opened = next(message for message in web_session.get("/v1/inbox", headers=XINHE_STAFF).json()["messages"]
                  if message["kind"] == "rectification_opened")
    assert "2026年12月8日 17:30前" in opened["subject"] and opened["item_id"] == sample(
        RectificationOpenedV2.event_type).item_id

    # The case's delivery log shows the resident's SMS to staff of the case's line.
    log = web_session.get(f"/v1/deliveries?case_id={CASE}", headers=MAIGAOQIAO_STAFF).json()
    assert "rectification_closed" in {entry["kind"] for entry in log["deliveries"]}

    # Every event again, as a redelivery: nothing new is planned or sent.
    before = count_rows(database_url, "notification_deliveries", "notification_inbox", "notification_attempts",
                        "processed_messages")
    assert before["processed_messages"] == len(events)
    for event, routing_key in events:
        publish(notification, rabbit_config["AMQP_URI"], event, routing_key)
    one_more_sweep(notification)
    assert count_rows(database_url, *before) == before
    assert len(http.to("/sms")) == 1


def test_the_residents_sms_waits_for_the_morning_and_a_findings_closing_tells_no_resident(
        notification, rabbit_config, database_url, http, clock):
    clock.advance(hours=13)  # 23:00
    finding = sample(RectificationClosedV2.event_type, origin="finding", item_id=None, case_id=None, matter_code=None,
                     case_number=None, community_code=None, department_code="any")
    for payload in (sample(RectificationClosedV2.event_type), finding, sample(RectificationOpenedV2.event_type)):
        publish(notification, rabbit_config["AMQP_URI"], *envelope(payload, clock.now(), source=EVALUATION))
    one_more_sweep(notification)

    rows = {row["kind"]: row for row in db.deliveries(database_url)}
    assert set(rows) == {"rectification_closed", "rectification_opened"}
    assert (rows["rectification_closed"]["status"], rows["rectification_closed"]["hold_reason"]) == (
        "pending", "quiet_hours")
    assert rows["rectification_opened"]["status"] == "sent"  # the inbox is not held
    assert http.to("/sms") == []

    clock.advance(hours=9)  # 08:00 the next morning
    sweep_until(notification, nothing_pending(database_url))
    assert [request.json()["to"] for request in http.to("/sms")] == [RESIDENT_PHONE]
