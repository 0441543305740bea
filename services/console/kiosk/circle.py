"""The 15-minute service circle (15分钟政务服务圈) on the console's pages, pure: where a circle is centred, and
what the page shows of intake's ``GET /v1/service-circle`` answer, in Chinese.

Intake answers the question (which points are within the walk, accept the matter and are open when the resident
gets there, nearest first). The console only needs a centre: a service point's own terminal stands at its point;
a community kiosk, the lookup and the public page use the community's 党群服务中心 (the community's own point of
kind ``community-centre``), from the catalogue's ``service-points.yaml``, the same file intake reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.catalogue import Catalogue
from shared.service_points import SERVICE_POINTS_FILE, PointKind, ServicePoints, load_service_points

KIND_NAMES = {
    "community-centre": "社区党群服务中心",
    "supermarket": "超市服务驿站",
    "bank-branch": "银行网点",
    "convenience-store": "便利店自助点",
}
HOW_NAMES = {"self-service": "自助", "staffed": "窗口", "handover": "代收转办"}
HOW_HINTS = {
    "self-service": "在自助终端办理",
    "staffed": "在有人值守的窗口办理",
    "handover": "在此递交材料，由工作人员转交承办单位办理（按事项的办理层级流转）",
}
DAY_KIND_NAMES = {"workday": "工作日", "makeup-workday": "调休上班日", "rest-day": "休息日", "holiday": "法定节假日"}

# intake's machine reasons -> (the field the message stands next to, the message)
PROBLEMS = {
    "invalid_coordinates": ("coordinates", "经纬度不正确：纬度应为 -90 至 90、经度应为 -180 至 180 之间的数字"
                                           "（WGS-84，如 32.1121 和 118.8046）。"),
    "unknown_matter": ("matter", "没有这个事项，请从列表中选择。"),
    "invalid_query": ("matter", "请选择要办理的事项。"),
    "unknown_service_point": ("point", "没有这个服务点，请核对服务点编号（如 sp-qx-xinhe-suguo）。"),
}
MAX_QUERY_VALUE = 64  # intake refuses longer query values


@dataclass(frozen=True)
class Place:
    """The centre of a circle: WGS-84 degrees, and what to call it on the page."""

    lat: float
    lon: float
    label: str


@dataclass(frozen=True)
class Community:
    code: str
    name: str          # 馨合家园社区
    full_name: str     # 栖霞区 迈皋桥街道 馨合家园社区


@dataclass(frozen=True)
class Places:
    by_community: Mapping[str, Place]
    by_point: Mapping[str, Place]
    communities: tuple[Community, ...]   # those with a centre, by code
    accepted: frozenset[str]             # matters some point of the city accepts

    def for_device(self, community_code: str, service_point_id: str | None) -> Place | None:
        """A point's terminal stands at its point; a community kiosk at its community's centre."""
        if service_point_id and service_point_id in self.by_point:
            return self.by_point[service_point_id]
        return self.by_community.get(community_code)


EMPTY_PLACES = Places({}, {}, (), frozenset())


def places_from(points: ServicePoints, catalogue: Catalogue) -> Places:
    by_point = {point.id: Place(point.location.lat, point.location.lon, point.name) for point in points}
    by_community: dict[str, Place] = {}
    # A community's centre: its 党群服务中心; else its first point (by id).
    for point in sorted(points, key=lambda p: (p.kind is not PointKind.COMMUNITY_CENTRE, p.id)):
        by_community.setdefault(point.community_code, by_point[point.id])
    communities = []
    for code in sorted(by_community):
        unit = catalogue.units.get(code)
        if unit is None:
            continue
        names, parent = [unit.name], unit.parent_code
        while parent and parent in catalogue.units:
            names.insert(0, catalogue.units[parent].name)
            parent = catalogue.units[parent].parent_code
        communities.append(Community(code, unit.name, " ".join(names)))
    accepted = frozenset(accepted.code for point in points for accepted in point.matters)
    return Places(by_community, by_point, tuple(communities), accepted)


def load_places(config: Mapping, catalogue: Catalogue) -> Places:
    """SANJI_SERVICE_POINTS_FILE, else the catalogue's own ``service-points.yaml``, else none (no circle)."""
    named = config.get("SANJI_SERVICE_POINTS_FILE")
    path = Path(named) if named else Path(config["SANJI_CATALOGUE_DIR"]) / SERVICE_POINTS_FILE
    if not named and not path.exists():
        return EMPTY_PLACES
    return places_from(load_service_points(path, catalogue), catalogue)


# ── What the page shows ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class NearbyRow:
    point_id: str
    name: str
    kind_name: str
    address: str
    walking_minutes: int
    distance_m: int
    day_kind_name: str
    hours_today: str
    open_until: str
    how: str
    how_name: str
    how_hint: str
    materials: tuple[tuple[str, bool], ...]   # (name, deferrable)


@dataclass(frozen=True)
class CircleList:
    matter_code: str
    matter_name: str
    minutes: int
    radius_m: int
    rows: tuple[NearbyRow, ...]
    empty_message: str | None


def circle_list(answer: Mapping, *, accepted_anywhere: bool = True) -> CircleList:
    """intake's answer as the page lists it; when nothing is listed, why, in Chinese."""
    rows = tuple(NearbyRow(
        point_id=p["point_id"], name=p["name"], kind_name=KIND_NAMES.get(p["kind"], p["kind"]), address=p["address"],
        walking_minutes=int(p["walking_minutes"]), distance_m=int(p["distance_m"]),
        day_kind_name=DAY_KIND_NAMES.get(p["today"]["day_kind"], ""),
        hours_today="、".join(p["today"]["hours"]) or "今日不开放", open_until=p["open_until"],
        how=p["how"], how_name=HOW_NAMES.get(p["how"], p["how"]), how_hint=HOW_HINTS.get(p["how"], ""),
        materials=tuple((m["name"], bool(m["deferrable"])) for m in p["materials"]))
        for p in answer["points"])
    minutes = int(answer["circle"]["max_walking_minutes"])
    message = None
    if not rows:
        if not accepted_anywhere:
            message = (f"附近的便民服务点不受理“{answer['matter_name']}”。请在自助终端申请，"
                       "或到社区党群服务中心、区政务服务中心办理。")
        else:
            message = (f"现在步行{minutes}分钟范围内没有开放、可办理“{answer['matter_name']}”的服务点。"
                       "服务点开放时间多为工作日白天，请在开放时间再来查询，或到社区党群服务中心咨询。")
    return CircleList(matter_code=answer["matter_code"], matter_name=answer["matter_name"], minutes=minutes,
                      radius_m=int(answer["circle"]["radius_m"]), rows=rows, empty_message=message)


def problem_message(problem: Mapping | None) -> tuple[str, str]:
    """(field, Chinese message) for intake's refusal of a circle question."""
    reason = problem.get("reason") if isinstance(problem, Mapping) else None
    return PROBLEMS.get(reason, ("_form", "暂时无法查询，请稍后再试。"))

