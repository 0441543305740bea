"""办不成事 at the kiosk, through intake: the reporter's personal data stays in intake, the event carries ids and
codes, and a kiosk reports only for its own community and its own cases."""

from __future__ import annotations

import json
import re

import pytest

from services.intake.service import IntakeService
from tests.support.cases import (
    APPLICANT_PHONE,
    MAIGAOQIAO_STAFF,
    XINHE_COMMUNITY,
    XINHE_KIOSK,
    XUANWU_COMMUNITY,
    XUANWU_KIOSK,
    migrant_bundle,
)
from tests.support.escalation_harness import query
from tests.support.personal_data import stored_failure_reports

pytestmark = pytest.mark.integration

REPORTER = {"name": "刘金花", "phone": APPLICANT_PHONE}


@pytest.fixture
def intake(container_factory, make_service_config, web_config_port):
    container = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    container.start()
    return container


def post(web_session, path, body, headers=XINHE_KIOSK):
    return web_session.post(path, data=json.dumps(body, ensure_ascii=False),
                            headers={"Content-Type": "application/json", **headers})


def published_reports(database_url) -> list[dict]:
    rows = query(database_url, "SELECT body, routing_key FROM outbox_messages WHERE event_type = :t ORDER BY seq",
                 t="cn.sanji.report.filed.v1")
    return [{**json.loads(body)["data"], "_key": key} for body, key in rows]


def test_a_resident_reports_at_the_kiosk_and_only_ids_and_codes_leave_intake(intake, web_session, database_url):
    words = "跑了三次，窗口说系统不通"
    response = post(web_session, "/v1/failure-reports", {"community_code": XINHE_COMMUNITY, "reporter": REPORTER,
                                                         "description": words})
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert (receipt["reporter_name"], receipt["case_id"]) == ("刘**", None)
    assert re.fullmatch(r"BCS\d{8}-[0-9A-F]{8}", receipt["report_number"])

    (event,) = published_reports(database_url)
    assert (event["report_id"], event["channel"], event["unit_code"], event["community_code"], event["owner"]) == (
        receipt["report_id"], "kiosk", XINHE_COMMUNITY, XINHE_COMMUNITY, "kiosk-xinhe-jiayuan")
    assert event["_key"] == f"report.filed.320113000000.{XINHE_COMMUNITY}"
    raw = query(database_url, "SELECT body FROM outbox_messages")[0][0]
    for secret in ("刘金花", APPLICANT_PHONE, words):
        assert secret not in raw
    assert stored_failure_reports(database_url) == [  # kept in intake only, encrypted at rest
        {"reporter_name": "刘金花", "reporter_phone": APPLICANT_PHONE, "description": words}]


def test_a_report_about_a_case_names_its_item_for_a_single_matter_case(intake, web_session, database_url):
    case = post(web_session, "/v1/cases", migrant_bundle()).json()
    bundle_report = post(web_session, "/v1/failure-reports", {"community_code": XINHE_COMMUNITY,
                                                              "case_id": case["case_number"], "reporter": REPORTER,
                                                              "description": "一件事没办完"})
    assert bundle_report.status_code == 201, bundle_report.text
    assert (bundle_report.json()["case_id"], bundle_report.json()["item_id"]) == (case["case_id"], None)
    assert published_reports(database_url)[0]["case_id"] == case["case_id"]


def test_a_kiosk_reports_only_for_its_own_community_and_cases(intake, web_session, database_url):
    case = post(web_session, "/v1/cases", migrant_bundle()).json()
    body = {"community_code": XINHE_COMMUNITY, "reporter": REPORTER, "description": "x"}

    assert post(web_session, "/v1/failure-reports", body, XUANWU_KIOSK).json()["reason"] == "community_forbidden"
    other = post(web_session, "/v1/failure-reports", {**body, "community_code": XUANWU_COMMUNITY,
                                                      "case_id": case["case_id"]}, XUANWU_KIOSK)
    assert (other.status_code, other.json()["reason"]) == (422, "case_of_another_community")
    missing = post(web_session, "/v1/failure-reports", {**body, "case_id": "no-such-case"})
    assert (missing.status_code, missing.json()["reason"]) == (404, "case_not_found")
    stray = post(web_session, "/v1/failure-reports", {**body, "item_id": "no-such-item"})
    assert (stray.status_code, stray.json()["reason"]) == (422, "unknown_item")
    street = post(web_session, "/v1/failure-reports", {**body, "community_code": "320113003000"})
    assert (street.status_code, street.json()["reason"]) == (422, "unknown_community")
    staff = post(web_session, "/v1/failure-reports", body, MAIGAOQIAO_STAFF)   # window staff, for a resident
    assert staff.status_code == 201 and staff.json()["community_code"] == XINHE_COMMUNITY
    (event,) = published_reports(database_url)
    assert (event["channel"], event["unit_code"], event["owner"]) == ("staff", "320113003000",
                                                                      "staff-maigaoqiao-street")
