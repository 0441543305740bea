"""End to end: a kiosk submits 流动人口一件事 over HTTP; each matter reaches the right department queue."""

from __future__ import annotations

import json
import logging
import time

import eventlet
import pytest

from services.intake.service import IntakeService
from services.routing.service import RoutingService
from tests.support.bus import EventFollower
from tests.support.cases import (
    APPLICANT_ID_NUMBER,
    APPLICANT_PHONE,
    MAIGAOQIAO_STREET,
    MIGRANT_BUNDLE_DESTINATIONS,
    QIXIA_DISTRICT,
    XINHE_KIOSK,
    migrant_bundle,
)
from tests.support.db import count_rows

pytestmark = pytest.mark.e2e


@pytest.fixture
def running_system(container_factory, make_service_config, web_config_port):
    intake = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    routing = container_factory(RoutingService, make_service_config("routing"))
    routing.start()
    intake.start()
    return intake, routing


def submit(web_session, body) -> tuple[dict, float]:
    response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    return response.json(), time.monotonic()


def test_each_matter_reaches_exactly_the_subscribers_that_own_it(running_system, web_session, rabbit_config,
                                                                 database_url):
    amqp = rabbit_config["AMQP_URI"]
    qixia_police = EventFollower(amqp, "dept.qixia.police", f"item.*.{QIXIA_DISTRICT}.*.*.police")
    maigaoqiao_street = EventFollower(amqp, "unit.maigaoqiao", f"item.*.*.street.{MAIGAOQIAO_STREET}.*")
    qixia_health_district = EventFollower(amqp, "dept.qixia.health.district",
                                          f"item.*.{QIXIA_DISTRICT}.district.{QIXIA_DISTRICT}.health")

    receipt, _ = submit(web_session, migrant_bundle())

    # How fast is the bench's business (routed p99 is in docs/performance.md); here only what arrives where.
    qixia_police.wait_for(1, timeout=10.0)
    maigaoqiao_street.wait_for(2, timeout=10.0)
    police_events, street_events = qixia_police.settle(), maigaoqiao_street.settle()

    assert [(e["data"]["matter_code"], e["data"]["level"], e["data"]["unit_code"]) for e in police_events] == [
        ("residence-permit", "street", MAIGAOQIAO_STREET)]
    assert sorted(e["data"]["matter_code"] for e in street_events) == [
        "residence-permit", "vocational-training-signup"]
    assert qixia_health_district.events == []  # birth proof is handled in the community, not the district
    for event in police_events + street_events:
        assert event["specversion"] == "1.0"
        assert event["type"] == "cn.sanji.item.routed.v1"
        assert event["source"] == "/sanji/routing"
        assert event["data"]["case_id"] == receipt["case_id"]

    # The resident's case shows where every item went.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        case = web_session.get(f"/v1/cases/{receipt['case_id']}", headers=XINHE_KIOSK).json()
        if all(item["status"] != "submitted" for item in case["items"]):
            break
        eventlet.sleep(0.05)
    placed = {item["matter_code"]: (item["level"], item["unit_code"], item["department_code"])
              for item in case["items"]}
    assert placed == MIGRANT_BUNDLE_DESTINATIONS
    assert all(item["promised_deadline"] <= item["legal_deadline"] for item in case["items"])
    assert count_rows(database_url, "routing_items")["routing_items"] == 4
    for follower in (qixia_police, maigaoqiao_street, qixia_health_district):
        follower.stop()


def test_personal_data_never_reaches_an_event_or_a_log_line(running_system, web_session, rabbit_config, caplog):
    caplog.set_level(logging.DEBUG)
    everything = EventFollower(rabbit_config["AMQP_URI"], "audit.everything", "#")

    receipt, _ = submit(web_session, migrant_bundle())
    events = everything.wait_for(5, timeout=15.0)  # case.submitted + four item.routed
    everything.settle()
    everything.stop()

    assert len(events) == 5
    assert {e["type"] for e in events} == {"cn.sanji.case.submitted.v1", "cn.sanji.item.routed.v1"}
    bus_text = json.dumps(events, ensure_ascii=False)
    log_text = "\n".join(str(record.msg) + " " + str(getattr(record, "args", "")) for record in caplog.records)
    assert receipt["case_id"] in bus_text and receipt["case_id"] in log_text  # both were really captured
    for secret in (APPLICANT_ID_NUMBER, APPLICANT_PHONE, "刘金花"):
        assert secret not in bus_text
        assert secret not in log_text
