"""The resident lookup at intake (POST /v1/case-lookups) on the real broker and databases: only the console may ask,
nothing personal comes back, misses are counted per case number and per client, and lock both out."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from services.intake.service import IntakeService
from shared.db import normalise_url
from shared.events import CloudEvent, ItemRoutedV1, ItemSupplementRequestedV1, ItemSupplementSuppliedV1, source_of
from tests.support.bus import publish_raw
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_KIOSK, migrant_bundle

pytestmark = pytest.mark.integration

CONSOLE = {"Authorization": "Bearer dev-console-service"}
CLIENT = "client-0123456789abcdef"


@pytest.fixture
def intake(container_factory, make_service_config, web_config_port):
    container = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    container.start()
    return container


def submit(web_session, **changes) -> dict:
    body = migrant_bundle(**changes)
    body["materials"] = {"provided": ["id-card", "photo", "rental-contract", "labour-contract",
                                      "landlord-property-certificate-copy", "job-or-school-proof",
                                      "spouse-id-card", "education-certificate"],
                         "deferred": ["landlord-id-copy"]}
    response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    return response.json()


def look_up(web_session, case_number, last4, client=CLIENT, headers=CONSOLE):
    return web_session.post("/v1/case-lookups", data=json.dumps(
        {"case_number": case_number, "phone_last4": last4, "client": client}),
        headers={"Content-Type": "application/json", **headers})


def test_the_right_phone_ending_shows_the_status_and_nothing_personal(intake, web_session):
    case = submit(web_session)

    response = look_up(web_session, case["case_number"].lower(), APPLICANT_PHONE[-4:])

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    view = response.json()
    assert view["case_number"] == case["case_number"]
    assert view["applicant_name"] == "刘**"
    # the community, for the nearby points where the missing material can be handed in (the console's lookup page)
    assert (view["community_code"], view["community_name"]) == ("320113003021", "馨合家园社区")
    assert [item["matter_code"] for item in view["items"]] == [
        "residence-permit", "birth-registration-proof", "vocational-training-signup", "employment-registration"]
    permit = view["items"][0]
    assert permit["matter_name"] == "居住证办理"
    assert [m["material_code"] for m in permit["missing_materials"]] == ["landlord-id-copy"]
    assert permit["missing_materials"][0]["material_name"] == "房东身份证复印件"
    assert permit["missing_materials"][0]["source"] == "deferred"
    assert all(not item["missing_materials"] for item in view["items"][1:])
    for personal in ("刘金花", APPLICANT_PHONE, APPLICANT_ID_NUMBER):
        assert personal not in response.text


def test_only_the_console_may_look_up(intake, web_session):
    case = submit(web_session)
    response = look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:], headers=XINHE_KIOSK)
    assert response.status_code == 403
    assert response.json()["reason"] == "lookup_forbidden"
    assert look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:], headers={}).status_code == 401


@pytest.mark.parametrize("body", [{"case_number": "SJ1", "phone_last4": "123", "client": CLIENT},
                                  {"case_number": "SJ1", "phone_last4": "1234"},
                                  {"case_number": "SJ 1", "phone_last4": "1234", "client": CLIENT}])
def test_a_malformed_lookup_is_refused(intake, web_session, body):
    response = web_session.post("/v1/case-lookups", data=json.dumps(body),
                                headers={"Content-Type": "application/json", **CONSOLE})
    assert response.status_code == 422
    assert response.json()["reason"] == "validation_failed"


def test_five_misses_lock_the_case_number_even_for_the_right_digits(intake, web_session):
    case = submit(web_session)
    wrong = "0000" if APPLICANT_PHONE[-4:] != "0000" else "1111"

    answers = [look_up(web_session, case["case_number"], wrong, client=f"client-{n:016d}") for n in range(5)]

    assert [a.status_code for a in answers] == [404, 404, 404, 404, 429]
    assert [a.json().get("attempts_left") for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[0].json()["reason"] == "lookup_no_match"
    locked = look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:], client="client-fresh-000000")
    assert locked.status_code == 429
    assert locked.json()["reason"] == "lookup_locked"
    assert 0 < locked.json()["retry_after_seconds"] <= 15 * 60 + 1


def test_five_misses_lock_the_client_out_of_every_case(intake, web_session):
    case = submit(web_session)

    answers = [look_up(web_session, f"SJ20261130-{n:012X}", "1234") for n in range(5)]

    assert [a.status_code for a in answers] == [404, 404, 404, 404, 429]
    assert look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:]).status_code == 429
    other_client = look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:], client="client-another-0001")
    assert other_client.status_code == 200


def test_an_unknown_number_and_a_wrong_ending_get_the_same_answer(intake, web_session):
    case = submit(web_session)
    unknown = look_up(web_session, "SJ20261130-000000000000", APPLICANT_PHONE[-4:], client="client-a-00000000")
    wrong = look_up(web_session, case["case_number"], "0000" if APPLICANT_PHONE[-4:] != "0000" else "1111",
                    client="client-b-00000000")
    assert (unknown.status_code, unknown.json()["reason"]) == (wrong.status_code, wrong.json()["reason"]) == (
        404, "lookup_no_match")


def test_a_hit_resets_the_count(intake, web_session, database_url):
    case = submit(web_session)
    for _ in range(4):
        assert look_up(web_session, case["case_number"], "0000").status_code == 404
    assert look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:]).status_code == 200
    engine = create_engine(normalise_url(database_url))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT scope, misses FROM intake_lookup_guards ORDER BY scope")).all() == [
            ("case", 0), ("client", 0)]
    engine.dispose()
    assert look_up(web_session, case["case_number"], "0000").json()["attempts_left"] == 4


def test_materials_asked_for_and_supplied_follow_the_items_events(intake, web_session, rabbit_config):
    case = submit(web_session)
    now = datetime.now(UTC)
    common = dict(item_id="item-permit-1", case_id=case["case_id"], case_number=case["case_number"],
                  matter_code="residence-permit", department_code="police", level="street",
                  unit_code="320113003000", district_code="320113000000", community_code="320113003021")

    def publish(payload):
        event = CloudEvent.wrap(payload, source=source_of("routing"), time=payload.occurred_at)
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump(mode="json"), payload.routing_key())

    publish(ItemRoutedV1(**common, status="queued", legal_deadline=now, promised_deadline=now,
                         deadline_provisional=False, catalogue_version="v", occurred_at=now))
    publish(ItemSupplementRequestedV1(**common, status="supplement_requested", actor="staff-maigaoqiao-street",
                                      material_codes=("photo",), due_date=date(2026, 12, 9), clock_paused=True,
                                      occurred_at=now + timedelta(seconds=1)))
    publish(ItemSupplementSuppliedV1(**common, status="accepted", actor="staff-maigaoqiao-street",
                                     material_codes=("landlord-id-copy",), promised_deadline=now,
                                     occurred_at=now + timedelta(seconds=2)))

    deadline = time.monotonic() + 10
    while True:
        permit = look_up(web_session, case["case_number"], APPLICANT_PHONE[-4:]).json()["items"][0]
        if permit["status"] == "accepted" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert permit["status"] == "accepted"
    assert permit["unit_name"] == "迈皋桥街道"
    assert [(m["material_code"], m["source"], m["due_date"]) for m in permit["missing_materials"]] == [
        ("photo", "requested", "2026-12-09")]
