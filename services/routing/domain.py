"""Routing rules: each matter of a case goes to the lowest level entitled to handle it, in the submitting
community's own line (its community, its street, its district), to the matter's department.

Pure: the catalogue decides, never code. More matters moving down to district or street level is a
catalogue edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.catalogue import Catalogue, Level, Matter
from shared.workdays import WorkdayCalendar


class RoutingImpossible(Exception):
    """The catalogue offers no desk for this matter in the community's line."""


@dataclass(frozen=True)
class RoutingDecision:
    matter_code: str
    department_code: str
    level: Level
    unit_code: str
    district_code: str
    status: str                      # "queued", or "waiting" for a prerequisite in the same case
    waiting_for: tuple[str, ...]
    legal_deadline: datetime
    promised_deadline: datetime
    deadline_provisional: bool
    legal_days: int
    promised_days: int


def entitled_desk(catalogue: Catalogue, community_code: str, matter: Matter) -> tuple[Level, str]:
    """The level and unit an item of ``matter`` goes to for a case from ``community_code``.

    Starts at the matter's lowest entitled level and goes up the community's own line until the
    matter's department has a desk there.
    """
    line = catalogue.line_of(community_code)
    department = catalogue.department(matter.department)
    level: Level | None = matter.lowest_level
    while level is not None:
        if department.has_desk_at(level):
            return level, line[level].code
        level = level.above()
    raise RoutingImpossible(f"department {department.code} has no desk at or above {matter.lowest_level} "
                            f"for community {community_code}")


def route_case(catalogue: Catalogue, calendar: WorkdayCalendar, *, community_code: str,
               matter_codes: tuple[str, ...], submitted_at: datetime) -> list[RoutingDecision]:
    """One routing decision per matter of the case, with its legal and promised deadlines."""
    in_case = set(matter_codes)
    decisions = []
    for code in matter_codes:
        matter = catalogue.matter(code)
        level, unit_code = entitled_desk(catalogue, community_code, matter)
        district_code = catalogue.unit_at(community_code, Level.DISTRICT).code
        waiting_for = tuple(prerequisite for prerequisite in matter.prerequisites if prerequisite in in_case)
        legal_deadline, legal_provisional = calendar.deadline_at(submitted_at, matter.legal_days)
        promised_deadline, promised_provisional = calendar.deadline_at(submitted_at, matter.promised_days)
        decisions.append(RoutingDecision(
            matter_code=matter.code,
            department_code=matter.department,
            level=level,
            unit_code=unit_code,
            district_code=district_code,
            status="waiting" if waiting_for else "queued",
            waiting_for=waiting_for,
            legal_deadline=legal_deadline,
            promised_deadline=promised_deadline,
            deadline_provisional=legal_provisional or promised_provisional,
            legal_days=matter.legal_days,
            promised_days=matter.promised_days,
        ))
    return decisions
