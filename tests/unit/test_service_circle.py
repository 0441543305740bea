"""The 15-minute service circle: the points as checked data, opening hours on the working-day calendar, and the
pure answer to "where near here can I do matter X now?"."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from services.intake.circle import CircleRefused, CircleSettings, nearby, point_for_submission, walking_minutes
from shared.catalogue import CatalogueError, Level, load_catalogue
from shared.service_points import DayKind, day_kind, great_circle_m, load_service_points
from shared.workdays import SHANGHAI, WorkdayCalendar

XINHE_CENTRE = (32.1121, 118.8046)   # 馨合家园社区党群服务中心, 迈皋桥街道, 栖霞区


@pytest.fixture(scope="module")
def catalogue(shipped_catalogue_dir_module):
    return load_catalogue(shipped_catalogue_dir_module)


@pytest.fixture(scope="module")
def shipped_catalogue_dir_module():
    from shared.config import REPO_ROOT

    return REPO_ROOT / "catalogue" / "nanjing"


@pytest.fixture(scope="module")
def points(catalogue, shipped_catalogue_dir_module):
    return load_service_points(shipped_catalogue_dir_module / "service-points.yaml", catalogue)


@pytest.fixture(scope="module")
def calendar():
    from shared.config import REPO_ROOT

    return WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# ── The seed data ────────────────────────────────────────────────────────────────────────────────


def test_the_shipped_points_cover_every_district_with_four_kinds_of_place(points, catalogue):
    assert len(points) >= 40
    kinds = {point.kind for point in points}
    assert {str(kind) for kind in kinds} == {"community-centre", "supermarket", "bank-branch", "convenience-store"}
    for kind in kinds:
        assert sum(point.kind is kind for point in points) >= 10, kind
    districts = {catalogue.unit_at(point.community_code, Level.DISTRICT).name for point in points}
    assert districts == {"栖霞区", "玄武区", "江宁区", "浦口区"}
    for point in points:
        district = catalogue.unit_at(point.community_code, Level.DISTRICT).name
        assert point.address.startswith(f"南京市{district}"), point.id
        # Nanjing's extent, WGS-84: a point elsewhere is a typo (swapped lat/lon, a GCJ-02 offset gone wild).
        assert 31.2 < point.location.lat < 32.7 and 118.3 < point.location.lon < 119.3, point.id


def test_every_community_has_a_point_and_points_of_one_community_lie_within_its_circle(points, catalogue):
    communities = {code for code, unit in catalogue.units.items() if unit.level is Level.COMMUNITY}
    assert {point.community_code for point in points} == communities
    for point in points:
        neighbours = [other for other in points if other.community_code == point.community_code]
        for other in neighbours:
            assert great_circle_m(point.location.lat, point.location.lon, other.location.lat,
                                  other.location.lon) < 1500, (point.id, other.id)


def _write(tmp_path, body: str):
    path = tmp_path / "service-points.yaml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = """
points:
  - id: sp-test-one
    kind: supermarket
    name: 测试超市
    address: 南京市栖霞区和燕路1号
    location: {lat: 32.1, lon: 118.8}
    community_code: "320113003021"
    facilities: [self-service-terminal]
    hours: {mon: ["08:00-21:00"]}
    matters: [{code: vocational-training-signup, how: self-service}]
"""


@pytest.mark.parametrize("change, problem", [
    (("vocational-training-signup, how: self", "no-such-matter, how: self"), "unknown matter 'no-such-matter'"),
    (('"320113003021"', '"320113003000"'), "is not a community"),
    (("lat: 32.1", "lat: .nan"), "finite"),
    (("lat: 32.1", "lat: 91.0"), "not a WGS-84 position"),
    (('["08:00-21:00"]', '["08:00-12:00", "11:00-13:00"]'), "overlap"),
    (('["08:00-21:00"]', '["21:00-08:00"]'), "closes before it opens"),
    (("how: self-service", "how: staffed"), "needs a staffed-desk"),
    (("id: sp-test-one", "id: SP one"), "is not a point id"),
    (("kind: supermarket", "kind: kiosk"), "kind"),
])
def test_a_broken_point_is_named_on_load(tmp_path, catalogue, change, problem):
    with pytest.raises(CatalogueError) as raised:
        load_service_points(_write(tmp_path, GOOD.replace(*change)), catalogue)
    assert problem in str(raised.value)
    assert "service-points.yaml" in str(raised.value)


def test_a_repeated_point_id_is_refused(tmp_path, catalogue):
    body = GOOD + GOOD.split("points:\n", 1)[1]
    with pytest.raises(CatalogueError, match="duplicate id"):
        load_service_points(_write(tmp_path, body), catalogue)


# ── Opening hours on the working-day calendar ────────────────────────────────────────────────────


@pytest.mark.parametrize("day, kind", [
    (date(2026, 12, 7), DayKind.WORKDAY),          # a Monday
    (date(2026, 12, 5), DayKind.REST_DAY),         # an ordinary Saturday
    (date(2026, 10, 1), DayKind.HOLIDAY),          # 国庆
    (date(2026, 10, 3), DayKind.HOLIDAY),          # the Saturday inside the 国庆 holiday
    (date(2026, 10, 10), DayKind.MAKEUP_WORKDAY),  # 调休: Saturday worked for 国庆
    (date(2026, 2, 28), DayKind.MAKEUP_WORKDAY),   # 调休 for 春节
    (date(2026, 1, 3), DayKind.HOLIDAY),           # 元旦 period, a Saturday
])
def test_days_are_classified_from_the_working_day_calendar(calendar, day, kind):
    assert day_kind(calendar, day) is kind


def test_a_point_is_closed_on_a_holiday_and_keeps_working_hours_on_a_makeup_day(points, calendar):
    centre = points.get("sp-qx-xinhe-centre")
    assert [str(i) for i in centre.hours_on(calendar, date(2026, 12, 7))[1]] == ["08:30-12:00", "13:30-17:30"]
    assert centre.hours_on(calendar, date(2026, 10, 1)) == (DayKind.HOLIDAY, ())
    # The 调休 Saturday is a working day: the Monday hours, not the Saturday morning.
    kind, hours = centre.hours_on(calendar, date(2026, 10, 10))
    assert (kind, [str(i) for i in hours]) == (DayKind.MAKEUP_WORKDAY, ["08:30-12:00", "13:30-17:30"])
    assert centre.open_interval_at(calendar, at(2026, 12, 7, 12, 30)) is None      # lunch break
    assert str(centre.open_interval_at(calendar, at(2026, 12, 7, 14, 0))) == "13:30-17:30"
    supermarket = points.get("sp-qx-xinhe-suguo")
    assert supermarket.open_interval_at(calendar, at(2026, 10, 3, 10, 0)) is None   # holiday: closed
    assert supermarket.open_interval_at(calendar, at(2026, 12, 6, 20, 0)) is not None  # an ordinary Sunday


# ── The circle ───────────────────────────────────────────────────────────────────────────────────


def test_great_circle_distance_is_the_haversine_on_the_mean_earth_radius():
    assert great_circle_m(32.0, 118.8, 32.0, 118.8) == 0
    # One degree of latitude is 111.195 km on a sphere of 6371.0088 km.
    assert great_circle_m(32.0, 118.8, 33.0, 118.8) == pytest.approx(111_195, abs=1)
    assert great_circle_m(32.1121, 118.8046, 32.1087, 118.8021) == pytest.approx(445.4, abs=0.5)


def test_the_circle_for_a_given_point_and_time(points, catalogue, calendar):
    """From 馨合家园's service centre, Monday 7 December 2026 at 10:00, for 职业技能培训报名 (distances checked
    against the spherical law of cosines, independently of the haversine)."""
    answer = nearby(points, catalogue, calendar, lat=XINHE_CENTRE[0], lon=XINHE_CENTRE[1],
                    matter_code="vocational-training-signup", at=at(2026, 12, 7, 10, 0), settings=CircleSettings())
    listed = [(near.point.id, round(near.distance_m), near.walking_minutes, str(near.accepted.how))
              for near in answer.points]
    assert listed == [
        ("sp-qx-xinhe-centre", 0, 1, "handover"),
        ("sp-qx-xinhe-lawson", 316, 5, "self-service"),
        ("sp-qx-xinhe-suguo", 445, 6, "self-service"),
        ("sp-qx-wanshou-icbc", 743, 10, "self-service"),
        ("sp-qx-wanshou-centre", 996, 14, "handover"),
    ]
    for near in answer.points:
        assert near.distance_m == pytest.approx(great_circle_m(*XINHE_CENTRE, near.point.location.lat,
                                                               near.point.location.lon))
        assert near.walking_minutes == math.ceil(near.distance_m / 75) or near.distance_m == 0
        assert near.distance_m <= 75 * 15
    assert answer.matter.code == "vocational-training-signup"


def test_only_points_open_when_the_resident_arrives_are_listed(points, catalogue, calendar):
    def ids(moment, settings=None):
        return [near.point.id for near in nearby(points, catalogue, calendar, lat=XINHE_CENTRE[0],
                                                 lon=XINHE_CENTRE[1], matter_code="vocational-training-signup",
                                                 at=moment, settings=settings or CircleSettings()).points]

    # Saturday afternoon: the community centres are closed; the shops and the bank are not.
    assert ids(at(2026, 12, 5, 15, 0)) == ["sp-qx-xinhe-lawson", "sp-qx-xinhe-suguo", "sp-qx-wanshou-icbc"]
    # 国庆: everything is closed.
    assert ids(at(2026, 10, 1, 10, 0)) == []
    # 11:55 on a Monday: the centre next door is open on arrival, the one 14 minutes away closes before.
    assert "sp-qx-wanshou-centre" not in ids(at(2026, 12, 7, 11, 55))
    assert "sp-qx-xinhe-centre" in ids(at(2026, 12, 7, 11, 55))
    # A slower walking speed shrinks the circle.
    assert ids(at(2026, 12, 7, 10, 0), CircleSettings(walking_speed_m_per_min=40)) == [
        "sp-qx-xinhe-centre", "sp-qx-xinhe-lawson", "sp-qx-xinhe-suguo"]


@pytest.mark.parametrize("lat, lon", [(91, 118.8), (32.1, 181), (math.nan, 118.8), (32.1, math.inf)])
def test_invalid_coordinates_are_refused(points, catalogue, calendar, lat, lon):
    with pytest.raises(CircleRefused) as refused:
        nearby(points, catalogue, calendar, lat=lat, lon=lon, matter_code="residence-permit",
               at=at(2026, 12, 7, 10, 0), settings=CircleSettings())
    assert (refused.value.reason, refused.value.status) == ("invalid_coordinates", 400)


def test_an_unknown_matter_is_refused(points, catalogue, calendar):
    with pytest.raises(CircleRefused, match="no-such-matter") as refused:
        nearby(points, catalogue, calendar, lat=32.1, lon=118.8, matter_code="no-such-matter",
               at=at(2026, 12, 7, 10, 0), settings=CircleSettings())
    assert refused.value.reason == "unknown_matter"


def test_walking_minutes_round_up_and_settings_are_checked():
    settings = CircleSettings(walking_speed_m_per_min=75)
    assert [walking_minutes(d, settings) for d in (0, 75, 76, 1125)] == [1, 1, 2, 15]
    with pytest.raises(ValueError):
        CircleSettings(walking_speed_m_per_min=math.nan)
    with pytest.raises(ValueError):
        CircleSettings(max_walking_minutes=0)


# ── Taking a case in at a point ──────────────────────────────────────────────────────────────────


def test_a_point_takes_in_only_its_own_matters_for_its_own_community_while_open(points, catalogue, calendar):
    matters = catalogue.expand(matter_codes=("employment-registration",))
    monday = at(2026, 12, 7, 10, 0)
    point = point_for_submission(points, calendar, point_id="sp-qx-xinhe-suguo", community_code="320113003021",
                                 matters=matters, now=monday)
    assert point.id == "sp-qx-xinhe-suguo"

    def refusal(**changes):
        arguments = dict(point_id="sp-qx-xinhe-suguo", community_code="320113003021", matters=matters, now=monday)
        arguments.update(changes)
        with pytest.raises(CircleRefused) as refused:
            point_for_submission(points, calendar, **arguments)
        return refused.value.status, refused.value.reason

    assert refusal(point_id="sp-no-such-point") == (422, "unknown_service_point")
    assert refusal(community_code="320113003002") == (422, "service_point_of_another_community")
    assert refusal(matters=catalogue.expand(matter_codes=("residence-permit",))) == (422, "matter_not_accepted_here")
    assert refusal(now=at(2026, 10, 1, 10, 0)) == (409, "service_point_closed")
    assert refusal(now=at(2026, 12, 7, 22, 0)) == (409, "service_point_closed")


def test_a_terminal_token_binds_a_kiosk_to_one_point(tmp_path):
    from shared.auth import TokenFileError, TokenRegistry

    def registry(entry: str):
        path = tmp_path / "tokens.yaml"
        path.write_text(f"tokens:\n  - {{name: t, unit: '320113003021', token: secret, {entry}}}\n", encoding="utf-8")
        return TokenRegistry.from_file(path)

    principal = registry("kind: kiosk, service_point: sp-qx-xinhe-suguo").authenticate("Bearer secret")
    assert (principal.kind, principal.unit_code, principal.service_point_id) == (
        "kiosk", "320113003021", "sp-qx-xinhe-suguo")
    assert registry("kind: kiosk").authenticate("Bearer secret").service_point_id is None
    for wrong in ("kind: staff, service_point: sp-qx-xinhe-suguo", "kind: kiosk, service_point: 苏果超市"):
        with pytest.raises(TokenFileError, match="service_point"):
            registry(wrong)
