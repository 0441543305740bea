"""Escalation's events through the notification service on the real broker and database: 督办 warnings and
breaches, an escalation arriving, 吹哨 call-ins (inbox and signed department webhook), and the 办不成事 window
(the specialist's inbox, the resident's receipt and outcome by SMS and email, through intake's contact RPC)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from nameko.testing.services import replace_dependencies

from services.notification.service import NotificationService
from shared.events import (
    CloudEvent,
    ItemDeadlineWarningV1,
    ItemEscalatedV1,
    ItemRoutedV1,
    ItemSupervisionEscalatedV1,
    ReportAssignedV1,
    ReportClosedV1,
    ReportFiledV1,
    ReportOverdueV1,
    WhistleAcknowledgedV1,
    WhistleCalledV1,
    WhistleEscalatedV1,
)
from shared.workdays import SHANGHAI
from tests.support import notification_db as db
from tests.support.cases import MAIGAOQIAO_STAFF, XINHE_KIOSK
from tests.support.db import count_rows
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE, envelope, fake_intake, sample
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures, found by name
    clock,
    http,
    no_contact_data_in_logs,
    receiver,
    smtp,
)
from tests.support.notification_harness import one_more_sweep, publish, sweep_until

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
SECRET = "whsec_" + base64.b64encode(b"qixia-police-webhook-secret-0002").decode()  # 32 bytes of key
CASE = sample(ReportFiledV1.event_type, 0).case_id
STREET, DISTRICT = "320113003000", "320113000000"
NO_CASE_REPORT = "00000000-0000-4000-8000-0000000000aa"
QIXIA_STAFF = {"Authorization": "Bearer dev-staff-qixia"}
QIXIA_POLICE = {"Authorization": "Bearer dev-dept-qixia-police"}
SPECIALIST_MAIGAOQIAO = {"Authorization": "Bearer dev-specialist-maigaoqiao"}
SPECIALIST_QIXIA = {"Authorization": "Bearer dev-specialist-qixia"}


@pytest.fixture
def notification(container_factory, make_service_config, http, smtp, tmp_path, receiver, web_config_port, clock):
    intake = container_factory(fake_intake({CASE: {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}}),
                               make_service_config("intake"))
    intake.start()
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(f"""
webhooks:
  - name: qixia-police
    url: "{http.url('/hooks/qixia-police')}"
    secrets: ["{SECRET}"]
    department: police
    scope: "{DISTRICT}"
""", encoding="utf-8")
    config = make_service_config(
        "notification", web_port=web_config_port,
        SANJI_NOTIFICATION_SMS_URL=http.url("/sms"), SANJI_NOTIFICATION_SMS_API_KEY="test-gateway-key",
        SANJI_NOTIFICATION_SMTP_HOST=smtp.host, SANJI_NOTIFICATION_SMTP_PORT=smtp.port,
        SANJI_NOTIFICATION_WEBHOOKS_FILE=str(hooks), SANJI_NOTIFICATION_SWEEP_SECONDS=0.05,
        SANJI_NOTIFICATION_SEND_TIMEOUT_SECONDS=3, SANJI_VAR_DIR=str(tmp_path / "var"))
    container = container_factory(NotificationService, config)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


def nothing_pending(database_url):
    return lambda: not db.deliveries(database_url, status="pending")


def escalation_events() -> list[tuple[CloudEvent, str]]:
    """Each new event type once, in the order the services would publish them (a report's filing before its
    closing), plus a report about no case and an acknowledgement (which tells no one)."""
    no_case = dict(report_id=NO_CASE_REPORT, report_number="BC20261201-NOCASE01")
    payloads = [
        (sample(ItemDeadlineWarningV1.event_type), "/sanji/escalation"),
        (sample(ItemEscalatedV1.event_type), "/sanji/routing"),
        (sample(ItemRoutedV1.event_type, 3), "/sanji/routing"),  # the escalation's route_reason=escalated
        (sample(ItemSupervisionEscalatedV1.event_type), "/sanji/escalation"),
        (sample(WhistleCalledV1.event_type), "/sanji/escalation"),
        (WhistleAcknowledgedV1(**sample(WhistleCalledV1.event_type).model_dump(exclude={"ack_due_at"}),
                               acknowledged_by="dept-qixia-police"), "/sanji/escalation"),
        (sample(WhistleEscalatedV1.event_type), "/sanji/escalation"),
        (sample(ReportFiledV1.event_type, 0), "/sanji/intake"),
        (sample(ReportFiledV1.event_type, 1, **no_case), "/sanji/escalation"),
        (sample(ReportAssignedV1.event_type), "/sanji/escalation"),
        (sample(ReportClosedV1.event_type, 0), "/sanji/escalation"),
        (sample(ReportClosedV1.event_type, 1, **no_case), "/sanji/escalation"),
        (sample(ReportOverdueV1.event_type), "/sanji/escalation"),
    ]
    return [envelope(payload, DAY, source=source) for payload, source in payloads]


EXPECTED = {
    ("deadline_warning", f"unit:{STREET}:police", "inbox"),
    ("staff_item_escalated", f"unit:{STREET}:police", "inbox"),
    ("item_routed", f"resident:{CASE}", "sms"),
    ("item_routed", f"resident:{CASE}", "email"),
    ("department_new_item", "webhook:qixia-police", "webhook"),
    ("supervision_escalated", f"unit:{DISTRICT}:police", "inbox"),
    ("whistle_called", f"unit:{STREET}:police", "inbox"),
    ("department_whistle_called", "webhook:qixia-police", "webhook"),
    ("whistle_escalated", f"unit:{DISTRICT}:police", "inbox"),
    ("report_receipt", f"resident:{CASE}", "sms"),
    ("report_receipt", f"resident:{CASE}", "email"),
    ("report_assigned", "specialist:specialist-maigaoqiao", "inbox"),
    ("report_closed", f"resident:{CASE}", "sms"),
    ("report_closed", f"resident:{CASE}", "email"),
    ("report_overdue", f"unit:{DISTRICT}:None", "inbox"),
}


def inbox_kinds(web_session, headers, **query) -> list[str]:
    response = web_session.get("/v1/inbox", headers=headers, params=query)
    assert response.status_code == 200, response.text
    return sorted(message["kind"] for message in response.json()["messages"])


def test_every_escalation_event_reaches_its_people_once_and_a_redelivery_sends_nothing(
        notification, rabbit_config, database_url, http, smtp, receiver, web_session):
    events = escalation_events()
    for event, routing_key in events:
        publish(notification, rabbit_config["AMQP_URI"], event, routing_key)
    sweep_until(notification, nothing_pending(database_url))

    rows = db.deliveries(database_url)
    assert len(rows) == len(EXPECTED)
    assert {(row["kind"], row["recipient"], row["channel"]) for row in rows} == EXPECTED
    assert {row["status"] for row in rows} == {"sent"}
    assert all(row["urgent"] for row in rows if "whistle_called" in row["kind"])
    # The closing of a report names no case: the case was remembered from the report's filing.
    assert {row["case_id"] for row in rows if row["kind"] in ("report_receipt", "report_closed")} == {CASE}

    # The resident: the escalation once (from item.routed), the report's receipt and its outcome.
    texts = {row["id"]: row["body"] for row in rows}
    sms = [request.json() for request in http.to("/sms")]
    assert sorted(db.one(database_url, id=body["client_ref"])["kind"] for body in sms) == [
        "item_routed", "report_closed", "report_receipt"]
    assert all(body["to"] == RESIDENT_PHONE and body["text"] == texts[body["client_ref"]] for body in sms)
    closed_sms = next(body["text"] for body in sms if "已办结" in body["text"])
    assert "BC20261201-SAMPLE01" in closed_sms and "问题已解决" in closed_sms
    emails = smtp.messages()
    assert len(emails) == 3 and {message["To"] for message in emails} == {RESIDENT_EMAIL}

    # The department system: the 吹哨 call-in with its limit, and the escalated item, both signed.
    assert receiver.refused == [] and len(receiver.accepted) == 2
    documents = [json.loads(body) for body in receiver.accepted]
    call = next(document for document in documents if document["kind"] == "department_whistle_called")
    assert call["event"]["type"] == WhistleCalledV1.event_type and "2026年12月1日 10:30前报到" in call["text"]
    assert {document["kind"] for document in documents} == {"department_whistle_called", "department_new_item"}

    # The inboxes, each in its caller's jurisdiction.
    assert inbox_kinds(web_session, MAIGAOQIAO_STAFF) == ["deadline_warning", "staff_item_escalated",
                                                          "whistle_called"]
    assert inbox_kinds(web_session, QIXIA_STAFF) == ["deadline_warning", "report_overdue", "staff_item_escalated",
                                                     "supervision_escalated", "whistle_called", "whistle_escalated"]
    assert inbox_kinds(web_session, QIXIA_STAFF, unit=STREET) == inbox_kinds(web_session, MAIGAOQIAO_STAFF)
    assert inbox_kinds(web_session, QIXIA_POLICE) == ["deadline_warning", "staff_item_escalated",
                                                      "supervision_escalated", "whistle_called", "whistle_escalated"]
    assert inbox_kinds(web_session, SPECIALIST_MAIGAOQIAO) == ["report_assigned"]
    assert inbox_kinds(web_session, SPECIALIST_QIXIA) == []  # assigned to someone else
    assert web_session.get("/v1/inbox", headers=XINHE_KIOSK).json()["reason"] == "staff_only"
    assert web_session.get("/v1/inbox", headers=SPECIALIST_MAIGAOQIAO,
                           params={"unit": DISTRICT}).json()["reason"] == "unit_forbidden"
    call_message = next(message for message in web_session.get("/v1/inbox", headers=QIXIA_POLICE).json()["messages"]
                        if message["kind"] == "whistle_called")
    assert call_message["case_id"] == CASE and call_message["unit_code"] == STREET

    # The case's delivery log shows the report's messages too.
    log = web_session.get(f"/v1/deliveries?case_id={CASE}", headers=MAIGAOQIAO_STAFF).json()
    assert {"report_receipt", "report_closed", "whistle_called"} <= {entry["kind"] for entry in log["deliveries"]}

    # Every event again, as a redelivery: nothing new is planned or sent.
    before = count_rows(database_url, "notification_deliveries", "notification_inbox", "notification_attempts",
                        "processed_messages", "notification_report_cases")
    assert before["notification_report_cases"] == 1 and before["processed_messages"] == len(events)
    for event, routing_key in events:
        publish(notification, rabbit_config["AMQP_URI"], event, routing_key)
    one_more_sweep(notification)
    assert count_rows(database_url, *before) == before
    assert len(http.to("/sms")) == 3 and len(smtp.messages()) == 3 and len(receiver.accepted) == 2


def test_a_whistle_call_at_night_goes_out_at_once(notification, rabbit_config, database_url, receiver, clock):
    clock.advance(hours=13)
    assert clock.now() == NIGHT
    publish(notification, rabbit_config["AMQP_URI"],
            *envelope(sample(WhistleCalledV1.event_type), NIGHT, source="/sanji/escalation"))
    sweep_until(notification, nothing_pending(database_url))
    rows = db.deliveries(database_url)
    assert {(row["kind"], row["status"], row["hold_reason"], row["urgent"]) for row in rows} == {
        ("whistle_called", "sent", None, True), ("department_whistle_called", "sent", None, True)}
    assert len(receiver.accepted) == 1
