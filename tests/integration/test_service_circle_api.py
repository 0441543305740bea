"""The 15-minute service circle over HTTP against the real database and broker: the answer for a given place and
time, bad input refused with a reason, and cases taken in at a service point (recorded on the case and in its
case.submitted event as a code)."""

from __future__ import annotations

import json

import pytest

from services.intake.circle import CircleSettings, nearby
from services.intake.service import IntakeService
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.nameko_ext import ClockProvider
from shared.service_points import load_service_points
from shared.workdays import WorkdayCalendar
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_KIOSK
from tests.support.db import INTAKE_TABLES, count_rows
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

TERMINAL = {"Authorization": "Bearer dev-terminal-xinhe-suguo"}    # self-service terminal, 苏果超市（和燕路店）
MISBOUND = {"Authorization": "Bearer dev-terminal-misbound"}       # bound to a point of another community
XINHE_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}
MONDAY_TEN = at(2026, 12, 7, 10, 0)
XINHE_CENTRE = ("32.1121", "118.8046")


@pytest.fixture
def clock():
    return FrozenClock(MONDAY_TEN)


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text((REPO_ROOT / "config" / "dev-tokens.yaml").read_text(encoding="utf-8") + """
  - name: terminal-misbound
    kind: kiosk
    unit: "320113003021"
    service_point: sp-qx-wanshou-icbc
    token: dev-terminal-misbound
""", encoding="utf-8")
    return path


@pytest.fixture
def intake(container_factory, make_service_config, web_config_port, clock, tokens_file):
    class IntakeOnFrozenClock(IntakeService):
        clock = ClockProvider(FrozenClock(MONDAY_TEN))

    IntakeOnFrozenClock.clock = ClockProvider(clock)
    container = container_factory(IntakeOnFrozenClock, make_service_config(
        "intake", web_port=web_config_port, SANJI_TOKENS_FILE=str(tokens_file)))
    container.start()
    return container


def circle(web_session, headers=XINHE_KIOSK, **params):
    return web_session.get("/v1/service-circle", params=params, headers=headers)


def test_the_circle_over_http_is_the_pure_answer_with_what_to_bring(intake, web_session):
    response = circle(web_session, lat=XINHE_CENTRE[0], lon=XINHE_CENTRE[1], matter="vocational-training-signup")

    assert response.status_code == 200, response.text
    answer = response.json()
    catalogue = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
    expected = nearby(load_service_points(REPO_ROOT / "catalogue" / "nanjing" / "service-points.yaml", catalogue),
                      catalogue, WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml"),
                      lat=32.1121, lon=118.8046, matter_code="vocational-training-signup", at=MONDAY_TEN,
                      settings=CircleSettings())
    assert [point["point_id"] for point in answer["points"]] == [near.point.id for near in expected.points]
    assert [point["distance_m"] for point in answer["points"]] == [0, 316, 445, 743, 996]
    assert answer["circle"] == {"lat": 32.1121, "lon": 118.8046, "walking_speed_m_per_min": 75.0,
                                "max_walking_minutes": 15, "radius_m": 1125}
    assert answer["at"].startswith("2026-12-07T10:00:00+08:00")
    first = answer["points"][0]
    assert first == {**first, "point_id": "sp-qx-xinhe-centre", "kind": "community-centre", "walking_minutes": 1,
                     "how": "handover", "community_code": "320113003021", "community_name": "馨合家园社区",
                     "open_until": "12:00",
                     "today": {"date": "2026-12-07", "day_kind": "workday", "hours": ["08:30-12:00", "13:30-17:30"]}}
    assert [material["code"] for material in first["materials"]] == ["id-card", "photo", "education-certificate"]
    assert {point["how"] for point in answer["points"][1:]} == {"self-service", "handover"}


def test_the_walking_speed_is_configurable(container_factory, make_service_config, web_config_port, web_session):
    class IntakeOnFrozenClock(IntakeService):
        clock = ClockProvider(FrozenClock(MONDAY_TEN))

    container_factory(IntakeOnFrozenClock, make_service_config(
        "intake", web_port=web_config_port, SANJI_WALKING_SPEED_M_PER_MIN="40")).start()
    answer = circle(web_session, lat=XINHE_CENTRE[0], lon=XINHE_CENTRE[1], matter="vocational-training-signup").json()
    assert answer["circle"]["radius_m"] == 600
    assert [point["point_id"] for point in answer["points"]] == [
        "sp-qx-xinhe-centre", "sp-qx-xinhe-lawson", "sp-qx-xinhe-suguo"]


def test_the_circle_at_a_given_time_lists_only_points_open_then(intake, web_session):
    holiday = circle(web_session, lat=XINHE_CENTRE[0], lon=XINHE_CENTRE[1], matter="vocational-training-signup",
                     at="2026-10-01T10:00:00+08:00").json()
    assert holiday["points"] == []
    saturday = circle(web_session, lat=XINHE_CENTRE[0], lon=XINHE_CENTRE[1], matter="vocational-training-signup",
                      at="2026-12-05T15:00").json()   # no zone: Asia/Shanghai
    assert [point["point_id"] for point in saturday["points"]] == [
        "sp-qx-xinhe-lawson", "sp-qx-xinhe-suguo", "sp-qx-wanshou-icbc"]
    assert saturday["points"][0]["today"]["day_kind"] == "rest-day"


@pytest.mark.parametrize("params, status, reason", [
    ({"lat": "91", "lon": "118.8", "matter": "residence-permit"}, 400, "invalid_coordinates"),
    ({"lat": "32.1", "lon": "-181", "matter": "residence-permit"}, 400, "invalid_coordinates"),
    ({"lat": "NaN", "lon": "118.8", "matter": "residence-permit"}, 400, "invalid_coordinates"),
    ({"lat": "32.1", "lon": "inf", "matter": "residence-permit"}, 400, "invalid_coordinates"),
    ({"lat": "北纬32", "lon": "118.8", "matter": "residence-permit"}, 400, "invalid_coordinates"),
    ({"lon": "118.8", "matter": "residence-permit"}, 400, "invalid_coordinates"),
    ({"lat": "32.1", "lon": "118.8"}, 400, "invalid_query"),
    ({"lat": "32.1", "lon": "118.8", "matter": "residence-permit", "at": "tomorrow"}, 400, "invalid_query"),
    ({"lat": "32.1", "lon": "118.8", "matter": "no-such-matter"}, 422, "unknown_matter"),
])
def test_bad_questions_get_a_problem_with_a_reason(intake, web_session, params, status, reason):
    response = circle(web_session, **params)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["reason"] == reason


def test_one_point_and_an_unknown_point(intake, web_session):
    point = web_session.get("/v1/service-points/sp-qx-xinhe-suguo", headers=XINHE_KIOSK)
    assert point.status_code == 200, point.text
    assert point.json() == {**point.json(), "kind": "supermarket", "open_now": True, "community_name": "馨合家园社区",
                            "facilities": ["self-service-terminal", "staffed-desk"]}
    assert {"matter_code": "employment-registration", "matter_name": "就业登记", "how": "handover"} in \
        point.json()["matters"]
    holiday = web_session.get("/v1/service-points/sp-qx-xinhe-suguo", params={"at": "2026-10-01T10:00+08:00"},
                              headers=XINHE_KIOSK).json()
    assert (holiday["open_now"], holiday["today"]["day_kind"], holiday["today"]["hours"]) == (False, "holiday", [])
    unknown = web_session.get("/v1/service-points/sp-no-such-point", headers=XINHE_KIOSK)
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown_service_point")
    assert web_session.get("/v1/service-points/sp-qx-xinhe-suguo").status_code == 401


# ── Cases taken in at a point ────────────────────────────────────────────────────────────────────


def at_point(**changes) -> dict:
    body = {"community_code": "320113003021", "matters": ["employment-registration"],
            "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER, "phone": APPLICANT_PHONE},
            "materials": {"provided": ["id-card", "labour-contract"]}, "channel": {"kind": "kiosk"}}
    body.update(changes)
    return body


def post_case(web_session, body, headers):
    return web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                            headers={"Content-Type": "application/json", **headers})


def published_submissions(database_url) -> list[dict]:
    from tests.support.escalation_harness import query

    rows = query(database_url, "SELECT body FROM outbox_messages WHERE event_type = 'cn.sanji.case.submitted.v1'")
    return [json.loads(body)["data"] for (body,) in rows]


def test_a_point_terminal_takes_a_case_in_and_the_point_is_recorded(intake, web_session, database_url):
    response = post_case(web_session, at_point(service_point_id="sp-qx-xinhe-suguo"), TERMINAL)

    assert response.status_code == 201, response.text
    assert response.json()["service_point_id"] == "sp-qx-xinhe-suguo"
    assert response.json()["community_code"] == "320113003021"
    [event] = published_submissions(database_url)
    assert (event["service_point_id"], event["community_code"], event["channel"]) == (
        "sp-qx-xinhe-suguo", "320113003021", "kiosk")
    assert APPLICANT_ID_NUMBER not in json.dumps(event, ensure_ascii=False)
    # The terminal's own point is filled in when the submission leaves it out.
    again = post_case(web_session, at_point(), TERMINAL)
    assert again.json()["service_point_id"] == "sp-qx-xinhe-suguo"
    # Staff of the community take a case in at the point's staffed desk.
    staffed = post_case(web_session, at_point(service_point_id="sp-qx-xinhe-suguo", channel={"kind": "window"}),
                        XINHE_STAFF)
    assert staffed.status_code == 201, staffed.text


@pytest.mark.parametrize("body, headers, status, reason", [
    (at_point(service_point_id="sp-no-such-point"), XINHE_STAFF, 422, "unknown_service_point"),
    (at_point(service_point_id="sp-qx-xinhe-lawson"), TERMINAL, 403, "service_point_forbidden"),
    (at_point(service_point_id="sp-qx-xinhe-suguo"), XINHE_KIOSK, 403, "service_point_forbidden"),
    (at_point(), MISBOUND, 403, "service_point_forbidden"),
    (at_point(service_point_id="sp-qx-wanshou-centre", channel={"kind": "window"}), XINHE_STAFF, 422,
     "service_point_of_another_community"),
    (at_point(service_point_id="sp-qx-wanshou-centre", community_code="320113003002", channel={"kind": "window"}),
     XINHE_STAFF, 403, "community_forbidden"),
    (at_point(service_point_id="sp-qx-xinhe-suguo", matters=["birth-registration-proof"],
              materials={"provided": ["id-card", "spouse-id-card", "rental-contract"]}), TERMINAL, 422,
     "matter_not_accepted_here"),
    (at_point(service_point_id="sp-qx-xinhe-suguo", residence_division_code="320102009001"), TERMINAL, 403,
     "cross_district_forbidden"),
])
def test_a_point_refuses_what_it_may_not_take_in_and_nothing_is_written(intake, web_session, database_url, body,
                                                                        headers, status, reason):
    response = post_case(web_session, body, headers)
    assert response.status_code == status, response.text
    assert response.json()["reason"] == reason
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_a_closed_point_refuses_a_case(intake, web_session, database_url, clock):
    clock.advance(hours=12)  # Monday 22:00: the supermarket closed at 21:00
    response = post_case(web_session, at_point(service_point_id="sp-qx-xinhe-suguo"), TERMINAL)

    assert response.status_code == 409, response.text
    problem = response.json()
    assert (problem["reason"], problem["service_point_id"], problem["hours_today"]) == (
        "service_point_closed", "sp-qx-xinhe-suguo", ["08:00-21:00"])
    assert set(count_rows(database_url, *INTAKE_TABLES).values()) == {0}


def test_a_retry_after_closing_time_gets_the_case_taken_in_before(intake, web_session, clock):
    clock.advance(hours=10, minutes=59)  # 20:59, the supermarket closes at 21:00
    key = {"Idempotency-Key": "terminal-suguo-0001"}
    first = post_case(web_session, at_point(service_point_id="sp-qx-xinhe-suguo"), {**TERMINAL, **key})
    assert first.status_code == 201, first.text
    clock.advance(minutes=2)  # the answer was lost; the terminal retries after closing time
    retried = post_case(web_session, at_point(service_point_id="sp-qx-xinhe-suguo"), {**TERMINAL, **key})
    assert (retried.status_code, retried.headers.get("Idempotent-Replayed")) == (201, "true")
    assert retried.json()["case_id"] == first.json()["case_id"]
    fresh = post_case(web_session, at_point(service_point_id="sp-qx-xinhe-suguo"), TERMINAL)
    assert (fresh.status_code, fresh.json()["reason"]) == (409, "service_point_closed")
