"""End to end: a case from the kiosk to completion, a forced database error and a failing handler, with
every log line (structlog and the standard library, at DEBUG, SQL statements included) and every event
on the bus captured: the applicant's ID number, phone, e-mail and name appear in none of them."""

from __future__ import annotations

import io
import json
import logging

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.utils import find_free_port
from sqlalchemy import create_engine, text

from services.intake.service import IntakeService
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from shared.db import normalise_url
from tests.support import notification_db as db
from tests.support.bus import EventFollower
from tests.support.cases import XINHE_KIOSK, migrant_bundle
from tests.support.notification_fixtures import smtp  # noqa: F401 - a fixture, found by name
from tests.support.notification_harness import sweep_until
from tests.support.notification_servers import HttpStandIn
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NAME = "欧阳春燕"
ID_NUMBER = "11010519491231002X"
PHONE = "13587654321"
LANDLINE = "025-83456789"
EMAIL = "ouyang.chunyan@example.cn"
SECRETS = (NAME, ID_NUMBER, PHONE, LANDLINE, LANDLINE.replace("-", ""), EMAIL)
STREET_STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}
COMMUNITY_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}


@pytest.fixture
def gateway():
    server = HttpStandIn()
    yield server
    server.stop()


@pytest.fixture
def every_log_line():
    """Everything logged anywhere, at DEBUG, rendered by the services' own formatter into a buffer."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(root.handlers[0].formatter)
    handler.setLevel(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict) + [""]}
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # every statement, with its parameters
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)




def rename_table(database_url, old, new):
    engine = create_engine(normalise_url(database_url))
    with engine.begin() as connection:
        connection.execute(text(f'ALTER TABLE "{old}" RENAME TO "{new}"'))
    engine.dispose()


def test_no_personal_data_in_any_log_line_or_event(container_factory, make_service_config, web_config_port,
                                                  web_session, rabbit_config, database_url, gateway, smtp,
                                                  tmp_path, every_log_line, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    routing_port = find_free_port()
    intake = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    routing = container_factory(RoutingService, make_service_config("routing", web_port=routing_port))
    notification = container_factory(NotificationService, make_service_config(
        "notification", WEB_SERVER_ADDRESS="127.0.0.1:0", SANJI_NOTIFICATION_SMS_URL=gateway.url("/sms"),
        SANJI_NOTIFICATION_SMTP_HOST=smtp.host, SANJI_NOTIFICATION_SMTP_PORT=smtp.port,
        SANJI_NOTIFICATION_QUIET_HOURS="off", SANJI_NOTIFICATION_SWEEP_SECONDS=0.05,
        SANJI_VAR_DIR=str(tmp_path / "var")))
    for container in (notification, routing, intake):
        container.start()
    everything = EventFollower(rabbit_config["AMQP_URI"], "audit.everything", "#")
    staff_api = f"http://127.0.0.1:{routing_port}/v1/items"

    # 1. The kiosk submits; the resident is told; staff work every item; the case completes.
    body = migrant_bundle(
        applicant={"name": NAME, "id_number": ID_NUMBER, "phone": PHONE, "email": EMAIL},
        materials={"provided": ["id-card", "photo", "rental-contract", "labour-contract",
                                "landlord-property-certificate-copy", "job-or-school-proof", "spouse-id-card",
                                "education-certificate"], "deferred": ["landlord-id-copy"]})
    response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]

    def routed_case():
        case = web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()
        return case if all(item["item_id"] for item in case["items"]) else None

    items = {item["matter_code"]: item["item_id"] for item in wait_until(routed_case)["items"]}
    for matter, headers, supply in (("residence-permit", STREET_STAFF, ["landlord-id-copy"]),
                                    ("vocational-training-signup", STREET_STAFF, None),
                                    ("birth-registration-proof", COMMUNITY_STAFF, None),
                                    ("employment-registration", COMMUNITY_STAFF, None)):
        for action, payload in (("claim", {}), ("accept", {}),
                                *([("record-supplement", {"materials": supply})] if supply else []),
                                ("resolve", {"result": "已办结",
                                             "delivery": {"method": "door", "agent_id": "sw-017"}})):
            answer = requests.post(f"{staff_api}/{items[matter]}/{action}", json=payload, headers=headers, timeout=5)
            assert answer.status_code == 200, (action, answer.text)
    wait_until(lambda: web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()["completed_at"])
    sweep_until(notification, lambda: any(row["kind"] == "case_completed" and row["status"] == "sent"
                                          for row in db.deliveries(database_url, case_id=case_id)), timeout=20)
    assert PHONE in {sms.json()["to"] for sms in gateway.to("/sms")}  # she was told, by SMS

    # 2. A database error while a 办不成事 report with her name and landline is inserted.
    rename_table(database_url, "intake_failure_reports", "intake_failure_reports_away")
    try:
        failed = web_session.post("/v1/failure-reports", data=json.dumps({
            "community_code": "320113003021", "case_id": case_id, "reporter": {"name": NAME, "phone": LANDLINE},
            "description": f"办不成：请回电 {LANDLINE}，{NAME}"}, ensure_ascii=False),
            headers={"Content-Type": "application/json", **XINHE_KIOSK})
    finally:
        rename_table(database_url, "intake_failure_reports_away", "intake_failure_reports")
    assert failed.status_code >= 500, failed.text
    assert not any(secret in failed.text for secret in SECRETS)

    # 3. A handler that raises while it holds her data: the contact look-up, its table gone.
    rename_table(database_url, "intake_applicants", "intake_applicants_away")
    try:
        with ServiceRpcProxy("intake", {"AMQP_URI": rabbit_config["AMQP_URI"]}) as intake_rpc:
            with pytest.raises(Exception):  # noqa: B017 - whatever the remote error, it must not leak
                intake_rpc.applicant_contact(case_id)
    finally:
        rename_table(database_url, "intake_applicants_away", "intake_applicants")

    events = everything.settle()
    everything.stop()
    captured = capsys.readouterr()
    logged = "\n".join([every_log_line.getvalue(), caplog.text, captured.out, captured.err,
                        *(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)])
    bus = json.dumps(events, ensure_ascii=False)

    # The run did what it says: the flow, the statements, the two failures and their tracebacks were logged.
    assert case_id in logged and case_id in bus
    assert any(event["type"] == "cn.sanji.case.completed.v1" for event in events)
    assert "INSERT INTO intake_applicants" in logged
    assert "intake_failure_reports" in logged and "Traceback" in logged
    assert "intake_applicants" in logged and "applicant_contact" in logged
    for secret in SECRETS:
        assert secret not in logged, f"{secret} logged"
        assert secret not in bus, f"{secret} on the bus"
