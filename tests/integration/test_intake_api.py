"""The kiosk API against a real database and broker: receipts, bad input, idempotency, authorisation."""

from __future__ import annotations

import json

import pytest

from services.intake.service import IntakeService
from tests.support.cases import (
    MAIGAOQIAO_STAFF,
    XINHE_COMMUNITY,
    XINHE_KIOSK,
    XUANWU_COMMUNITY,
    XUANWU_KIOSK,
    enterprise_startup,
    migrant_bundle,
)
from tests.support.db import INTAKE_TABLES, count_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def intake(container_factory, make_service_config, web_config_port):
    container = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    container.start()
    return container


def post_case(web_session, body, headers=XINHE_KIOSK, **extra_headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return web_session.post("/v1/cases", data=data,
                            headers={"Content-Type": "application/json", **headers, **extra_headers})


def test_a_bundle_submission_returns_the_receipt_with_its_deferral_notice(intake, web_session, database_url):
    response = post_case(web_session, migrant_bundle())

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert response.headers["Location"] == f"/v1/cases/{receipt['case_id']}"
    assert receipt["case_number"].startswith("SJ")
    assert receipt["applicant_name"] == "刘**"
    assert [item["matter_code"] for item in receipt["items"]] == [
        "residence-permit", "birth-registration-proof", "vocational-training-signup", "employment-registration"]
    deferred = {notice["material_code"]: notice for notice in receipt["deferred_materials"]}
    assert set(deferred) == {"landlord-property-certificate-copy", "landlord-id-copy", "job-or-school-proof",
                             "spouse-id-card", "education-certificate"}
    assert deferred["landlord-id-copy"]["matter_codes"] == ["residence-permit"]
    assert all(notice["consequence"] for notice in deferred.values())
    assert receipt["catalogue_version"].startswith("2026.12.1+")
    counts = count_rows(database_url, *INTAKE_TABLES)
    assert counts == {"intake_cases": 1, "intake_applicants": 1, "intake_case_items": 4,
                      "intake_deferred_materials": 5, "intake_idempotency_keys": 0, "outbox_messages": 1}

    fetched = web_session.get(f"/v1/cases/{receipt['case_id']}", headers=XINHE_KIOSK)
    assert fetched.status_code == 200
    assert fetched.json()["case_number"] == receipt["case_number"]


def _without_applicant_field(field):
    body = migrant_bundle()
    del body["applicant"][field]
    return body


BAD_INPUTS = {
    "malformed_json": ('{"community_code": "320113003021", ', 400, "malformed_json"),
    "invalid_id_checksum": (migrant_bundle(applicant={"name": "刘金花", "id_number": "11010519491231002Y",
                                                      "phone": "13912345678"}), 422, "invalid_id_number"),
    "invalid_id_length": (migrant_bundle(applicant={"name": "刘金花", "id_number": "1101051949",
                                                    "phone": "13912345678"}), 422, "invalid_id_number"),
    "missing_id": (_without_applicant_field("id_number"), 422, "validation_failed"),
    "unknown_matter": (migrant_bundle(bundle=None, matters=["no-such-matter"]), 422, "unknown_matter"),
    "unknown_bundle": (migrant_bundle(bundle="no-such-bundle"), 422, "unknown_bundle"),
    "unknown_community": (migrant_bundle(community_code="320113003999"), 422, "unknown_community"),
    "oversized_description": (migrant_bundle(description="长" * 2001), 422, "validation_failed"),
    "oversized_body": (migrant_bundle(description="x" * 70_000), 413, "payload_too_large"),
    "unknown_field": (migrant_bundle(id_card_photo="..."), 422, "validation_failed"),
    "main_material_deferred": (migrant_bundle(materials={"provided": ["photo", "rental-contract", "labour-contract"],
                                                         "deferred": ["id-card"]}), 422, "material_not_deferrable"),
    "material_missing": (migrant_bundle(materials={"provided": ["id-card", "photo", "rental-contract"],
                                                   "deferred": []}), 422, "missing_material"),
    "nothing_asked": (migrant_bundle(bundle=None, matters=[]), 422, "validation_failed"),
}


def _representative(**changes):
    body = enterprise_startup()
    body["applicant"]["representative"].update(changes)
    return body


def _enterprise(**changes):
    body = enterprise_startup()
    body["applicant"].update(changes)
    return body


# Enterprise applicants, submitted by the 玄武区 kiosk (梅园新村社区).
ENTERPRISE_BAD_INPUTS = {
    "uscc_checksum": (_enterprise(uscc="91350100M000100Y44"), 422, "invalid_uscc"),
    "uscc_length": (_enterprise(uscc="91350100M000100Y4"), 422, "invalid_uscc"),
    "uscc_letter_outside_the_set": (_enterprise(uscc="91350100I000100Y43"), 422, "invalid_uscc"),
    "representative_id_checksum": (_representative(id_number="11010519491231002Y"), 422, "invalid_id_number"),
    "representative_role_unknown": (_representative(role="shareholder"), 422, "validation_failed"),
    "applicant_kind_unknown": (_enterprise(kind="company"), 422, "validation_failed"),
    "person_for_enterprise_matters": (
        enterprise_startup(applicant={"name": "徐明", "id_number": "11010519491231002X", "phone": "13951234567"}),
        422, "applicant_kind_mismatch"),
    "enterprise_for_a_residents_matter": (
        _enterprise() | {"bundle": None, "matters": ["employment-registration"],
                         "materials": {"provided": ["id-card", "labour-contract"], "deferred": []}},
        422, "applicant_kind_mismatch"),
}


@pytest.mark.parametrize("case", sorted(ENTERPRISE_BAD_INPUTS))
def test_bad_enterprise_input_is_refused_with_a_reason_and_writes_nothing(case, intake, web_session, database_url):
    body, status, reason = ENTERPRISE_BAD_INPUTS[case]

    response = post_case(web_session, body, headers=XUANWU_KIOSK)

    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["reason"] == reason
    assert "11010519491231002Y" not in response.text
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_the_enterprise_startup_bundle_is_taken_in_for_the_enterprise(intake, web_session, database_url):
    response = post_case(web_session, enterprise_startup(), headers=XUANWU_KIOSK)

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["applicant_kind"] == "enterprise"
    assert receipt["organisation_name"] == "南京玄武某某科技有限公司"
    assert receipt["uscc"] == "91350100M000100Y43"          # public: printed on the business licence
    assert receipt["representative_role"] == "legal_representative"
    assert receipt["applicant_name"] == "徐*"               # the person acting for it, masked
    assert [item["matter_code"] for item in receipt["items"]] == [
        "enterprise-establishment", "company-seal-engraving", "new-taxpayer-registration",
        "employer-social-insurance-registration"]
    assert {notice["material_code"] for notice in receipt["deferred_materials"]} == {
        "premises-proof", "bank-account-licence"}
    assert "32010219800512003" not in response.text        # the representative's ID number stays inside
    counts = count_rows(database_url, "intake_cases", "intake_applicants", "outbox_messages")
    assert counts == {"intake_cases": 1, "intake_applicants": 1, "outbox_messages": 1}


def test_a_residents_case_still_needs_no_applicant_kind(intake, web_session):
    body = migrant_bundle()
    assert "kind" not in body["applicant"]
    receipt = post_case(web_session, body).json()
    assert receipt["applicant_kind"] == "person" and receipt["uscc"] is None


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_a_reason_and_writes_nothing(case, intake, web_session, database_url):
    body, status, reason = BAD_INPUTS[case]

    response = post_case(web_session, body)

    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert problem["reason"] == reason
    assert problem["status"] == status
    assert "Traceback" not in response.text
    assert "11010519491231002Y" not in response.text  # a refused number is not echoed back
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_street_staff_may_not_act_for_a_community_of_another_street(intake, web_session, database_url):
    response = post_case(web_session, migrant_bundle(community_code=XUANWU_COMMUNITY), headers=MAIGAOQIAO_STAFF)
    assert response.status_code == 403
    assert response.json()["reason"] == "community_forbidden"
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_street_staff_submit_for_a_community_of_their_street(intake, web_session):
    response = post_case(web_session, migrant_bundle(channel={"kind": "window"}), headers=MAIGAOQIAO_STAFF)
    assert response.status_code == 201, response.text


def test_a_kiosk_may_not_act_for_another_community(intake, web_session, database_url):
    response = post_case(web_session, migrant_bundle(community_code=XUANWU_COMMUNITY))

    assert response.status_code == 403
    assert response.json()["reason"] == "community_forbidden"
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_a_kiosk_may_not_read_another_communitys_case(intake, web_session):
    case_id = post_case(web_session, migrant_bundle()).json()["case_id"]

    response = web_session.get(f"/v1/cases/{case_id}", headers=XUANWU_KIOSK)

    assert response.status_code == 403
    assert response.json()["reason"] == "community_forbidden"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}])
def test_every_client_authenticates(headers, intake, web_session, database_url):
    response = post_case(web_session, migrant_bundle(), headers=headers)

    assert response.status_code == 401
    assert response.json()["reason"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_a_retried_submission_with_the_same_idempotency_key_returns_the_first_case(intake, web_session,
                                                                                  database_url):
    first = post_case(web_session, migrant_bundle(), **{"Idempotency-Key": "kiosk-7-0001"})
    retried = post_case(web_session, migrant_bundle(), **{"Idempotency-Key": "kiosk-7-0001"})

    assert first.status_code == retried.status_code == 201
    assert retried.json()["case_id"] == first.json()["case_id"]
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    counts = count_rows(database_url, "intake_cases", "outbox_messages", "intake_idempotency_keys")
    assert counts == {"intake_cases": 1, "outbox_messages": 1, "intake_idempotency_keys": 1}


def test_an_idempotency_key_reused_for_another_submission_is_refused(intake, web_session, database_url):
    post_case(web_session, migrant_bundle(), **{"Idempotency-Key": "kiosk-7-0002"})

    response = post_case(web_session, migrant_bundle(description="另一件事"), **{"Idempotency-Key": "kiosk-7-0002"})

    assert response.status_code == 422
    assert response.json()["reason"] == "idempotency_key_reused"
    assert count_rows(database_url, "intake_cases")["intake_cases"] == 1


def test_the_catalogue_lists_matters_bundles_and_materials(intake, web_session):
    response = web_session.get("/v1/catalogue", headers=XINHE_KIOSK)

    assert response.status_code == 200
    catalogue = response.json()
    bundles = {bundle["code"]: bundle for bundle in catalogue["bundles"]}
    assert {"migrant-bundle", "social-insurance-transfer", "enterprise-change"} <= set(bundles)
    materials = {m["code"]: m["deferrable"] for m in bundles["migrant-bundle"]["materials"]}
    assert materials["id-card"] is False and materials["landlord-id-copy"] is True
    assert len(catalogue["matters"]) >= 8


def test_health_reports_broker_and_database(intake, web_session):
    response = web_session.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"broker": True, "database": True, "migrations": True}


def test_an_unknown_case_is_404(intake, web_session):
    response = web_session.get("/v1/cases/00000000-0000-0000-0000-000000000000", headers=XINHE_KIOSK)
    assert response.status_code == 404
    assert response.json()["reason"] == "case_not_found"


def test_staff_of_a_street_read_a_case_of_their_community(intake, web_session):
    case_id = post_case(web_session, migrant_bundle()).json()["case_id"]
    assert web_session.get(f"/v1/cases/{case_id}", headers=MAIGAOQIAO_STAFF).status_code == 200
    assert XINHE_COMMUNITY in web_session.get(f"/v1/cases/{case_id}", headers=MAIGAOQIAO_STAFF).text


FLAGGED_ID_NUMBER = "320113198501010011"  # listed in config/credit-flags.yaml by fingerprint


def test_an_applicant_flagged_for_bad_credit_is_refused_deferral(intake, web_session, database_url):
    flagged = migrant_bundle(applicant={"name": "王五", "id_number": FLAGGED_ID_NUMBER, "phone": "13912345679"})

    response = post_case(web_session, flagged)

    assert response.status_code == 422
    assert response.json()["reason"] == "deferral_refused_bad_credit"
    assert "容缺" in response.json()["title"]
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_an_applicant_flagged_for_bad_credit_may_still_submit_a_complete_case(intake, web_session):
    complete = migrant_bundle(
        applicant={"name": "王五", "id_number": FLAGGED_ID_NUMBER, "phone": "13912345679"},
        materials={"provided": ["id-card", "photo", "rental-contract", "labour-contract",
                                "landlord-property-certificate-copy", "landlord-id-copy", "job-or-school-proof",
                                "spouse-id-card", "education-certificate"], "deferred": []})
    assert post_case(web_session, complete).status_code == 201


def test_a_deferral_due_in_2027_is_flagged_provisional_in_the_receipt_and_the_event(
        container_factory, make_service_config, web_config_port, web_session, database_url):
    """Issue 14: deadlines that cross 1 January 2027 skip its statutory holidays and say they are provisional
    until the State Council's arrangement for 2027 is loaded."""
    from datetime import datetime

    from shared.clock import FrozenClock
    from shared.nameko_ext import ClockProvider
    from shared.workdays import SHANGHAI
    from tests.support.db import outbox_bodies

    class IntakeBeforeNewYear(IntakeService):
        clock = ClockProvider(FrozenClock(datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)))  # a Monday

    container = container_factory(IntakeBeforeNewYear, make_service_config("intake", web_port=web_config_port))
    container.start()
    response = post_case(web_session, migrant_bundle())
    assert response.status_code == 201, response.text
    notices = {n["material_code"]: n for n in response.json()["deferred_materials"]}
    # landlord-id-copy: 5 working days from Mon 28 December: 29, 30, 31 December, (1 January is 元旦), 4, 5 January.
    assert notices["landlord-id-copy"]["due_date"] == "2027-01-05"
    assert notices["landlord-id-copy"]["due_date_provisional"] is True
    [event] = outbox_bodies(database_url, "case.submitted.v1")
    deferred = {d["material_code"]: d for d in event["data"]["deferred_materials"]}
    assert deferred["landlord-id-copy"]["due_date"] == "2027-01-05"
    assert deferred["landlord-id-copy"]["due_date_provisional"] is True

