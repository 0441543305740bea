"""The 15-minute service circle over HTTP: read the question from the query string, answer with views.

The rules (distance, opening hours, who is listed) are in ``circle.py`` and ``shared/service_points.py``.
"""

from __future__ import annotations

import math
from datetime import datetime

from services.intake.circle import CircleRefused, check_coordinates, nearby
from services.intake.handlers import IntakeRules
from services.intake.schemas import (
    AcceptedMatterView,
    MaterialView,
    NearbyAnswer,
    NearbyPoint,
    OpeningDay,
    ServicePointView,
    WalkingCircle,
)
from shared.catalogue import Catalogue
from shared.service_points import ServicePoint
from shared.workdays import SHANGHAI

MAX_QUERY_VALUE = 64


def _coordinate(args, name: str) -> float:
    raw = args.get(name)
    if raw is None or not raw.strip() or len(raw) > MAX_QUERY_VALUE:
        raise CircleRefused("invalid_coordinates", "lat and lon are required, in WGS-84 degrees", status=400)
    try:
        value = float(raw)
    except ValueError:
        raise CircleRefused("invalid_coordinates", f"{name} is not a number", status=400) from None
    if not math.isfinite(value):
        raise CircleRefused("invalid_coordinates", f"{name} must be a finite number", status=400)
    return value


def moment_of(raw: str | None, now: datetime) -> datetime:
    """``at`` from the query string (ISO 8601; without a zone it is Asia/Shanghai time), or now."""
    if raw is None:
        return now.astimezone(SHANGHAI)
    try:
        if len(raw) > MAX_QUERY_VALUE:
            raise ValueError
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise CircleRefused("invalid_query", "at is an ISO 8601 time, e.g. 2026-12-07T10:00+08:00",
                            status=400) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)).astimezone(SHANGHAI)


def materials_of(catalogue: Catalogue, matter_code: str) -> list[MaterialView]:
    matter = catalogue.matter(matter_code)
    return [MaterialView(code=m.code, name=m.name, deferrable=m.deferrable) for m in matter.materials]


def nearby_answer(args, *, rules: IntakeRules, now: datetime) -> NearbyAnswer:
    lat, lon = _coordinate(args, "lat"), _coordinate(args, "lon")
    check_coordinates(lat, lon)
    matter_code = args.get("matter")
    if not matter_code or len(matter_code) > MAX_QUERY_VALUE:
        raise CircleRefused("invalid_query", "name the matter: matter=<catalogue code>", status=400)
    at = moment_of(args.get("at"), now)
    answer = nearby(rules.service_points, rules.catalogue, rules.calendar, lat=lat, lon=lon,
                    matter_code=matter_code, at=at, settings=rules.circle)
    materials = materials_of(rules.catalogue, answer.matter.code)
    catalogue = rules.catalogue
    return NearbyAnswer(
        matter_code=answer.matter.code, matter_name=answer.matter.name, at=at,
        circle=WalkingCircle(lat=lat, lon=lon, walking_speed_m_per_min=rules.circle.walking_speed_m_per_min,
                             max_walking_minutes=rules.circle.max_walking_minutes,
                             radius_m=round(rules.circle.radius_m)),
        points=[NearbyPoint(
            point_id=near.point.id, kind=str(near.point.kind), name=near.point.name, address=near.point.address,
            lat=near.point.location.lat, lon=near.point.location.lon, community_code=near.point.community_code,
            community_name=catalogue.units[near.point.community_code].name,
            distance_m=round(near.distance_m), walking_minutes=near.walking_minutes, how=str(near.accepted.how),
            today=OpeningDay(date=at.date(), day_kind=str(near.day_kind),
                             hours=[str(interval) for interval in near.hours_today]),
            open_until=str(near.open_until).split("-")[1], materials=materials)
            for near in answer.points])


def point_view(point_id: str, *, rules: IntakeRules, now: datetime, at_raw: str | None = None) -> ServicePointView:
    point = rules.service_points.get(point_id)
    if point is None:
        raise CircleRefused("unknown_service_point", f"no service point {point_id[:MAX_QUERY_VALUE]!r}", status=404)
    at = moment_of(at_raw, now)
    return _view(point, rules, at)


def _view(point: ServicePoint, rules: IntakeRules, at: datetime) -> ServicePointView:
    catalogue = rules.catalogue
    kind, today = point.hours_on(rules.calendar, at.date())
    return ServicePointView(
        point_id=point.id, kind=str(point.kind), name=point.name, address=point.address,
        lat=point.location.lat, lon=point.location.lon, community_code=point.community_code,
        community_name=catalogue.units[point.community_code].name,
        facilities=[str(facility) for facility in point.facilities],
        today=OpeningDay(date=at.date(), day_kind=str(kind), hours=[str(interval) for interval in today]),
        open_now=point.open_interval_at(rules.calendar, at) is not None,
        matters=[AcceptedMatterView(matter_code=accepted.code, matter_name=catalogue.matters[accepted.code].name,
                                    how=str(accepted.how)) for accepted in point.matters])
