"""Service points of the 15-minute service circle (15分钟政务服务圈): where, when, and what each one takes in.

A service point sits in a community centre, a supermarket, a bank branch or a convenience store. It belongs
to one community (its cases are that community's cases), has WGS-84 coordinates and opening hours per weekday,
and accepts a list of catalogue matters, each in one way: at a self-service terminal, at a staffed desk, or by
taking the materials in and handing them over to the community's service centre.

The points are data (``catalogue/<city>/service-points.yaml``), checked on load against the catalogue like the
catalogue itself: a broken entry stops the service and is named. This module is pure (stdlib, pyyaml,
pydantic); the clock and the working-day calendar are passed in.

Opening hours follow the working-day calendar: a point is closed on statutory holidays (including the weekend
days inside a holiday period), and open on a 调休 make-up working day with its make-up hours (by default its
Monday hours), whatever its usual weekend hours are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

from shared.catalogue import Catalogue, CatalogueError, Level, _describe, _UniqueKeyLoader
from shared.workdays import SHANGHAI, WorkdayCalendar

__all__ = [
    "EARTH_RADIUS_M",
    "DayKind",
    "Hours",
    "PointKind",
    "ServicePoint",
    "ServicePoints",
    "great_circle_m",
    "day_kind",
    "load_service_points",
]

SERVICE_POINTS_FILE = "service-points.yaml"
# The mean Earth radius (IUGG), in metres: good to about 0.5 % for the haversine distance on WGS-84.
EARTH_RADIUS_M = 6_371_008.8
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PointKind(StrEnum):
    COMMUNITY_CENTRE = "community-centre"    # 社区党群服务中心 / 为民服务站
    SUPERMARKET = "supermarket"              # 进超市
    BANK_BRANCH = "bank-branch"              # 进银行网点
    CONVENIENCE_STORE = "convenience-store"  # 进便利店


class Facility(StrEnum):
    SELF_SERVICE_TERMINAL = "self-service-terminal"  # 自助终端
    STAFFED_DESK = "staffed-desk"                    # 有人值守的窗口


class How(StrEnum):
    SELF_SERVICE = "self-service"   # at the point's self-service terminal
    STAFFED = "staffed"             # at the point's staffed desk
    HANDOVER = "handover"           # taken in here, materials handed over to the community's service centre


# Which facility each way of accepting needs at the point.
_FACILITY_FOR = {How.SELF_SERVICE: Facility.SELF_SERVICE_TERMINAL, How.STAFFED: Facility.STAFFED_DESK,
                 How.HANDOVER: Facility.STAFFED_DESK}


class DayKind(StrEnum):
    WORKDAY = "workday"                  # Monday to Friday, a working day
    MAKEUP_WORKDAY = "makeup-workday"    # 调休: a Saturday or Sunday that is a working day
    REST_DAY = "rest-day"                # an ordinary weekend day
    HOLIDAY = "holiday"                  # a statutory holiday, or a weekend day inside a holiday period


def day_kind(calendar: WorkdayCalendar, day: date) -> DayKind:
    """What kind of day ``day`` is for opening hours, from the working-day calendar alone.

    A non-working Monday-to-Friday is a statutory holiday. A non-working weekend day is part of a holiday
    period when the weekday next to it across the weekend (the Friday before or the Monday after) is a
    holiday too: the State Council's arrangements always join a holiday to the adjacent weekend
    (e.g. 国庆 Thursday 1 to Wednesday 7 October 2026 takes in Saturday 3 and Sunday 4).
    """
    weekday = day.weekday()
    if calendar.is_workday(day):
        return DayKind.WORKDAY if weekday < 5 else DayKind.MAKEUP_WORKDAY
    if weekday < 5:
        return DayKind.HOLIDAY
    friday = day - timedelta(days=weekday - 4)
    monday = day + timedelta(days=7 - weekday)
    if not calendar.is_workday(friday) or not calendar.is_workday(monday):
        return DayKind.HOLIDAY
    return DayKind.REST_DAY


# ── Field types ────────────────────────────────────────────────────────────────────────────────────

_POINT_ID = re.compile(r"sp-[a-z0-9]+(?:-[a-z0-9]+)*")
_INTERVAL = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24:00))")


def _point_id(value: str) -> str:
    if not _POINT_ID.fullmatch(value) or len(value) > 64:
        raise ValueError(f"{value!r} is not a point id like 'sp-qx-xinhe-centre' (at most 64 characters)")
    return value


@dataclass(frozen=True, order=True)
class Interval:
    opens: time
    closes: time  # time(23, 59, 59, 999999) stands for 24:00

    def __str__(self) -> str:
        closes = "24:00" if self.closes == time.max else f"{self.closes:%H:%M}"
        return f"{self.opens:%H:%M}-{closes}"

    def contains(self, moment: time) -> bool:
        return self.opens <= moment < self.closes or (self.closes == time.max and moment >= self.opens)


def _interval(text: str) -> Interval:
    match = _INTERVAL.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not an interval like '08:30-12:00'")
    opens = time(int(match[1]), int(match[2]))
    closes = time.max if match[5] else time(int(match[3]), int(match[4]))
    if closes <= opens:
        raise ValueError(f"{text!r} closes before it opens")
    return Interval(opens, closes)


def _intervals(values: tuple[str, ...]) -> tuple[Interval, ...]:
    intervals = tuple(sorted(_interval(value) for value in values))
    for earlier, later in zip(intervals, intervals[1:], strict=False):
        if later.opens < earlier.closes:
            raise ValueError(f"{earlier} and {later} overlap")
    return intervals


PointId = Annotated[StrictStr, AfterValidator(_point_id)]
Name = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Day = tuple[StrictStr, ...]
Number = StrictFloat | StrictInt


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Location(_Frozen):
    """WGS-84 (the GPS datum; not GCJ-02, which Chinese map apps display: convert before entering)."""

    lat: Number
    lon: Number

    @model_validator(mode="after")
    def _on_earth(self) -> Location:
        if not (math.isfinite(self.lat) and math.isfinite(self.lon)):
            raise ValueError("lat and lon must be finite numbers")
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(f"({self.lat}, {self.lon}) is not a WGS-84 position (lat -90..90, lon -180..180)")
        return self


class Hours(_Frozen):
    """Opening hours per weekday, as lists of 'HH:MM-HH:MM'; a day left out or empty is closed."""

    mon: Day = ()
    tue: Day = ()
    wed: Day = ()
    thu: Day = ()
    fri: Day = ()
    sat: Day = ()
    sun: Day = ()
    # 调休: a weekend day that is a working day; the Monday hours unless given.
    makeup: Day | None = None

    @model_validator(mode="after")
    def _intervals_valid(self) -> Hours:
        for name in (*WEEKDAYS, "makeup"):
            value = getattr(self, name)
            if value is not None:
                try:
                    _intervals(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return self

    def on(self, day: date, kind: DayKind) -> tuple[Interval, ...]:
        """The intervals the point is open on ``day``, a day of kind ``kind``."""
        if kind is DayKind.HOLIDAY:
            return ()
        if kind is DayKind.MAKEUP_WORKDAY:
            return _intervals(self.makeup if self.makeup is not None else self.mon)
        return _intervals(getattr(self, WEEKDAYS[day.weekday()]))


class AcceptedMatter(_Frozen):
    code: Annotated[StrictStr, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
    how: How


class ServicePoint(_Frozen):
    id: PointId
    kind: PointKind
    name: Name
    address: Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    location: Location
    community_code: Annotated[StrictStr, StringConstraints(pattern=r"^\d{12}$")]
    facilities: tuple[Facility, ...]
    hours: Hours
    matters: tuple[AcceptedMatter, ...]

    @model_validator(mode="after")
    def _consistent(self) -> ServicePoint:
        if not self.facilities:
            raise ValueError("facilities is empty: a point has a self-service terminal, a staffed desk or both")
        if len(set(self.facilities)) != len(self.facilities):
            raise ValueError("facilities lists one facility twice")
        if not self.matters:
            raise ValueError("matters is empty: a point accepts at least one matter")
        codes = [matter.code for matter in self.matters]
        if repeated := sorted({code for code in codes if codes.count(code) > 1}):
            raise ValueError(f"matter {', '.join(map(repr, repeated))} is listed more than once")
        for matter in self.matters:
            if _FACILITY_FOR[matter.how] not in self.facilities:
                raise ValueError(f"matter '{matter.code}' is accepted {matter.how}, which needs a "
                                 f"{_FACILITY_FOR[matter.how]} the point does not have")
        if all(not getattr(self.hours, name) for name in WEEKDAYS):
            raise ValueError("hours: the point is never open")
        return self

    def accepts(self, matter_code: str) -> AcceptedMatter | None:
        return next((matter for matter in self.matters if matter.code == matter_code), None)

    def hours_on(self, calendar: WorkdayCalendar, day: date) -> tuple[DayKind, tuple[Interval, ...]]:
        kind = day_kind(calendar, day)
        return kind, self.hours.on(day, kind)

    def open_interval_at(self, calendar: WorkdayCalendar, moment: datetime) -> Interval | None:
        """The opening interval ``moment`` (any zone; read in Asia/Shanghai) falls in, or None when closed."""
        local = moment.astimezone(SHANGHAI)
        _, intervals = self.hours_on(calendar, local.date())
        return next((interval for interval in intervals if interval.contains(local.time())), None)


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres on a sphere of the mean Earth radius."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# ── The loaded set ─────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, eq=False)
class ServicePoints:
    """Every point of the city, checked against the catalogue. Immutable; safe to share between workers."""

    points: Mapping[str, ServicePoint]

    def get(self, point_id: str) -> ServicePoint | None:
        return self.points.get(point_id)

    def __iter__(self):
        return iter(self.points.values())

    def __len__(self) -> int:
        return len(self.points)


EMPTY = ServicePoints(MappingProxyType({}))


def load_service_points(path: str | Path, catalogue: Catalogue) -> ServicePoints:
    """Load and check the points file; raises CatalogueError naming the file and the entry."""
    path = Path(path)
    file = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(file, None, f"cannot read the service points file {path}: {exc}") from None
    try:
        document: Any = yaml.load(data, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise CatalogueError(file, None, f"not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("points"), list):
        raise CatalogueError(file, None, "expected a mapping with a 'points' list")
    points: dict[str, ServicePoint] = {}
    for position, raw in enumerate(document["points"], start=1):
        label = f"point '{raw['id']}'" if isinstance(raw, dict) and isinstance(raw.get("id"), str) else \
            f"point #{position}"
        try:
            point = ServicePoint.model_validate(raw)
        except ValueError as exc:
            message = _describe(exc) if hasattr(exc, "errors") else str(exc)
            raise CatalogueError(file, label, message) from None
        if point.id in points:
            raise CatalogueError(file, label, f"duplicate id (entry #{position})")
        unit = catalogue.units.get(point.community_code)
        if unit is None or unit.level is not Level.COMMUNITY:
            raise CatalogueError(file, label, f"community_code '{point.community_code}' is not a community "
                                              "of the catalogue")
        for matter in point.matters:
            if matter.code not in catalogue.matters:
                raise CatalogueError(file, label, f"unknown matter '{matter.code}'")
        points[point.id] = point
    return ServicePoints(MappingProxyType(points))
