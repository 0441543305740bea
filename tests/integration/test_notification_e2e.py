"""End to end: a kiosk submits a case; intake, routing and notification run on the real broker; the
resident's receipt and progress reach a local SMS gateway and a real SMTP server, and no event or log line
carries the resident's phone, email, name or ID number."""

from __future__ import annotations

import json
import logging

import pytest

from services.intake.service import IntakeService
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from tests.support import notification_db as db
from tests.support.bus import EventFollower
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_KIOSK, migrant_bundle
from tests.support.notification_harness import assert_no_contact_data_logged, sweep_until
from tests.support.notification_servers import HttpStandIn, SmtpServer

pytestmark = pytest.mark.e2e

APPLICANT_EMAIL = "liu.jinhua.e2e@example.com"
APPLICANT_NAME = "刘金花"


@pytest.fixture
def gateway():
    server = HttpStandIn()
    yield server
    server.stop()


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "mail")
    yield server
    server.stop()


@pytest.fixture
def running_system(container_factory, make_service_config, web_config_port, gateway, smtp, tmp_path):
    intake = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    routing = container_factory(RoutingService, make_service_config("routing", WEB_SERVER_ADDRESS="127.0.0.1:0"))
    notification = container_factory(NotificationService, make_service_config(
        "notification", WEB_SERVER_ADDRESS="127.0.0.1:0", SANJI_NOTIFICATION_SMS_URL=gateway.url("/sms"),
        SANJI_NOTIFICATION_SMTP_HOST=smtp.host, SANJI_NOTIFICATION_SMTP_PORT=smtp.port,
        SANJI_NOTIFICATION_QUIET_HOURS="off", SANJI_NOTIFICATION_SWEEP_SECONDS=0.05,
        SANJI_VAR_DIR=str(tmp_path / "var")))
    for container in (notification, routing, intake):
        container.start()
    return notification


def test_a_submitted_case_reaches_the_residents_phone_and_inbox_and_no_personal_data_leaks(
        running_system, web_session, rabbit_config, database_url, gateway, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    everything = EventFollower(rabbit_config["AMQP_URI"], "audit.everything", "#")
    body = migrant_bundle()
    body["applicant"] = {**body["applicant"], "email": APPLICANT_EMAIL}
    response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    receipt = response.json()
    case_id = receipt["case_id"]

    def told() -> bool:
        rows = db.deliveries(database_url, case_id=case_id)
        kinds = [row["kind"] for row in rows if row["audience"] == "resident"]
        return (kinds.count("receipt") == 2 and kinds.count("item_routed") == 8
                and all(row["status"] == "sent" for row in rows))

    sweep_until(running_system, told, timeout=20)
    events = everything.settle()
    everything.stop()

    texts = [request.json() for request in gateway.to("/sms")]
    assert {text["to"] for text in texts} == {APPLICANT_PHONE}
    receipt_sms = next(text["text"] for text in texts if "已受理" in text["text"])
    assert receipt["case_number"] in receipt_sms and "容缺" in receipt_sms and "终止办理" in receipt_sms
    assert sum("已转至" in text["text"] for text in texts) == 4
    emails = smtp.messages()
    assert len(texts) == len(emails) == 5  # the receipt and four progress messages, on each channel
    assert {message["To"] for message in emails} == {APPLICANT_EMAIL}
    staff = {row["recipient"] for row in db.deliveries(database_url, case_id=case_id, channel="inbox")}
    assert staff == {"unit:320113003000:police", "unit:320113003021:health", "unit:320113003000:hrss",
                     "unit:320113003021:hrss"}  # each item in its unit's queue (tests/support/cases.py)

    bus_text = json.dumps(events, ensure_ascii=False)
    assert case_id in bus_text
    assert any(event["type"] == "cn.sanji.item.routed.v1" for event in events)
    for secret in (APPLICANT_PHONE, APPLICANT_EMAIL, APPLICANT_NAME, APPLICANT_ID_NUMBER):
        assert secret not in bus_text
    assert_no_contact_data_logged(caplog.records, APPLICANT_PHONE, APPLICANT_EMAIL, APPLICANT_NAME,
                                  APPLICANT_ID_NUMBER)
    assert any(case_id in f"{record.getMessage()}" for record in caplog.records)  # the logs were captured
