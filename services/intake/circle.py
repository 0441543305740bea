"""The 15-minute service circle: where near here can a resident do matter X now, and may a case be taken in
at a given point now.

Pure: the points, catalogue, calendar and the moment are passed in. Distances are great-circle (haversine)
distances computed in Python over every point: at a city's few thousand points this is microseconds per
point; a database with PostGIS could answer the same question with ``ST_DWithin`` on a geography column and a
GiST index once the points live in a table (see README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.catalogue import Catalogue, Matter, UnknownCode
from shared.refusal import Refusal
from shared.service_points import AcceptedMatter, DayKind, Interval, ServicePoint, ServicePoints, great_circle_m
from shared.workdays import SHANGHAI, WorkdayCalendar

DEFAULT_WALKING_SPEED_M_PER_MIN = 75.0   # an unhurried adult, elderly residents included
DEFAULT_CIRCLE_MINUTES = 15


class CircleRefused(Refusal):
    """The question or the submission cannot be answered; ``reason`` is machine-readable."""


@dataclass(frozen=True)
class CircleSettings:
    walking_speed_m_per_min: float = DEFAULT_WALKING_SPEED_M_PER_MIN
    max_walking_minutes: int = DEFAULT_CIRCLE_MINUTES

    def __post_init__(self):
        if not (math.isfinite(self.walking_speed_m_per_min) and 20 <= self.walking_speed_m_per_min <= 200):
            raise ValueError("the walking speed is 20 to 200 metres a minute")
        if not 1 <= self.max_walking_minutes <= 120:
            raise ValueError("the circle is 1 to 120 walking minutes")

    @property
    def radius_m(self) -> float:
        return self.walking_speed_m_per_min * self.max_walking_minutes


@dataclass(frozen=True)
class NearbyPoint:
    point: ServicePoint
    accepted: AcceptedMatter
    distance_m: float
    walking_minutes: int
    day_kind: DayKind
    hours_today: tuple[Interval, ...]
    open_until: Interval


@dataclass(frozen=True)
class CircleAnswer:
    matter: Matter
    at: datetime
    points: tuple[NearbyPoint, ...]


def check_coordinates(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CircleRefused("invalid_coordinates", "lat must be -90 to 90 and lon -180 to 180 (WGS-84 degrees)",
                            status=400)


def walking_minutes(distance_m: float, settings: CircleSettings) -> int:
    """Whole minutes, rounded up: 1 minute at the door."""
    return max(1, math.ceil(distance_m / settings.walking_speed_m_per_min - 1e-9))


def nearby(points: ServicePoints, catalogue: Catalogue, calendar: WorkdayCalendar, *, lat: float, lon: float,
           matter_code: str, at: datetime, settings: CircleSettings) -> CircleAnswer:
    """Points within the walking circle that accept the matter and are open when the resident gets there,
    nearest first (ties by id)."""
    check_coordinates(lat, lon)
    try:
        matter = catalogue.matter(matter_code)
    except UnknownCode as exc:
        raise CircleRefused("unknown_matter", str(exc), matter=matter_code) from None
    found = []
    for point in points:
        accepted = point.accepts(matter.code)
        if accepted is None:
            continue
        distance = great_circle_m(lat, lon, point.location.lat, point.location.lon)
        if distance > settings.radius_m:
            continue
        minutes = walking_minutes(distance, settings)
        arrival = (at + timedelta(minutes=minutes)).astimezone(SHANGHAI)
        interval = point.open_interval_at(calendar, arrival)
        if interval is None:
            continue
        kind, today = point.hours_on(calendar, at.astimezone(SHANGHAI).date())
        found.append(NearbyPoint(point=point, accepted=accepted, distance_m=distance, walking_minutes=minutes,
                                 day_kind=kind, hours_today=today, open_until=interval))
    found.sort(key=lambda near: (near.distance_m, near.point.id))
    return CircleAnswer(matter=matter, at=at, points=tuple(found))


def point_for_submission(points: ServicePoints, calendar: WorkdayCalendar, *, point_id: str, community_code: str,
                         matters: tuple[Matter, ...], now: datetime) -> ServicePoint:
    """The point a case is taken in at, if it may be now: known, in the case's community, accepting every matter
    of the case, and open."""
    point = points.get(point_id)
    if point is None:
        raise CircleRefused("unknown_service_point", f"no service point {point_id!r}", service_point_id=point_id)
    if point.community_code != community_code:
        raise CircleRefused("service_point_of_another_community",
                            "the point belongs to another community; name the point's community",
                            service_point_id=point_id, point_community_code=point.community_code)
    refused = [matter.code for matter in matters if point.accepts(matter.code) is None]
    if refused:
        raise CircleRefused("matter_not_accepted_here", "the point does not accept these matters",
                            service_point_id=point_id, matters=refused,
                            accepted=[accepted.code for accepted in point.matters])
    if point.open_interval_at(calendar, now) is None:
        kind, today = point.hours_on(calendar, now.astimezone(SHANGHAI).date())
        raise CircleRefused("service_point_closed", "the point is closed now", status=409,
                            service_point_id=point_id, day_kind=str(kind),
                            hours_today=[str(interval) for interval in today])
    return point
