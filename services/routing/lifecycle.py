"""The item lifecycle: one table of allowed transitions, and the rules around returns, pauses and bundles.

Pure: no framework, database or clock; callers pass the time in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.catalogue import Catalogue, Level, Matter
from shared.events import Delivery
from shared.refusal import Refusal
from shared.workdays import SHANGHAI, WorkdayCalendar


class Action(StrEnum):
    CLAIM = "claim"
    ACCEPT = "accept"
    REQUEST_SUPPLEMENT = "request-supplement"
    RECORD_SUPPLEMENT = "record-supplement"
    RESOLVE = "resolve"
    REJECT = "reject"
    RETURN = "return"
    ASSIGN = "assign"          # the level above decides a ping-pong item: which unit and department handle it
    RELEASE = "release"        # by rule: a prerequisite resolved
    TERMINATE = "terminate"    # by rule: deferred material expired, or a prerequisite failed
    ESCALATE = "escalate"      # by the escalation service: the item moves up its line


OPEN_STATUSES = frozenset({"waiting", "queued", "claimed", "accepted", "supplement_requested"})
FINAL_STATUSES = frozenset({"resolved", "rejected", "terminated"})

# (status, action) -> status after the action. Anything not listed is refused with 409.
TRANSITIONS: dict[tuple[str, Action], str] = {
    ("waiting", Action.RELEASE): "queued",
    ("waiting", Action.TERMINATE): "terminated",
    ("queued", Action.CLAIM): "claimed",
    ("queued", Action.RETURN): "queued",                 # re-routed to another unit's queue
    ("queued", Action.TERMINATE): "terminated",
    ("claimed", Action.ACCEPT): "accepted",
    ("claimed", Action.REJECT): "rejected",              # 不予受理
    ("claimed", Action.RETURN): "queued",
    # After the return limit the level above assigns the item (to a queue where it cannot be returned again).
    ("queued", Action.ASSIGN): "queued",
    ("claimed", Action.ASSIGN): "queued",
    ("claimed", Action.TERMINATE): "terminated",
    ("accepted", Action.REQUEST_SUPPLEMENT): "supplement_requested",
    # A 容缺 material deferred at intake may arrive at any time before the item is decided; it changes
    # nothing but the material's state. From supplement_requested it resumes the work.
    ("waiting", Action.RECORD_SUPPLEMENT): "waiting",
    ("queued", Action.RECORD_SUPPLEMENT): "queued",
    ("claimed", Action.RECORD_SUPPLEMENT): "claimed",
    ("accepted", Action.RECORD_SUPPLEMENT): "accepted",
    ("accepted", Action.RESOLVE): "resolved",
    ("accepted", Action.REJECT): "rejected",             # 不予许可
    ("accepted", Action.TERMINATE): "terminated",
    ("supplement_requested", Action.RECORD_SUPPLEMENT): "accepted",
    ("supplement_requested", Action.REJECT): "rejected",
    ("supplement_requested", Action.TERMINATE): "terminated",
    # Moving up the line releases the owner; work already accepted stays accepted.
    ("waiting", Action.ESCALATE): "waiting",
    ("queued", Action.ESCALATE): "queued",
    ("claimed", Action.ESCALATE): "queued",
    ("accepted", Action.ESCALATE): "accepted",
    ("supplement_requested", Action.ESCALATE): "supplement_requested",
}

# Actions staff take through the API (the others are taken by rules).
STAFF_ACTIONS = frozenset({Action.CLAIM, Action.ACCEPT, Action.REQUEST_SUPPLEMENT, Action.RECORD_SUPPLEMENT,
                           Action.RESOLVE, Action.REJECT, Action.RETURN, Action.ASSIGN})


class TransitionRefused(Refusal):
    """The action is not allowed now; ``reason`` is machine-readable."""

    status = 409


def next_status(status: str, action: Action) -> str:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise TransitionRefused("transition_not_allowed", f"cannot {action} an item that is {status}",
                                current_status=status, action=str(action)) from None


@dataclass(frozen=True)
class ReturnPolicy:
    max_returns: int = 2          # after this many returns the level above decides, and returns stop


@dataclass(frozen=True)
class ReturnDecision:
    level: Level
    unit_code: str
    returns_locked: bool          # the level above now decides: no further returns


def decide_return(catalogue: Catalogue, calendar: WorkdayCalendar, *, matter: Matter, community_code: str,
                  level: Level, placed_at: datetime, now: datetime, return_count: int, returns_locked: bool,
                  policy: ReturnPolicy) -> ReturnDecision:
    """Where a returned (退单) item goes, or why it may not be returned.

    A unit may return an item only within the matter's return limit, counted in working days from when the
    item reached it. The catalogue names one entitled desk per level in the community's line, so "another
    unit" is the next level up where the department has a desk. When the returns reach the policy's
    maximum, the level above takes the item to decide, and it cannot be returned again (no ping-pong).
    """
    if returns_locked:
        raise TransitionRefused("returns_exhausted",
                                "the level above has taken this item to decide; it cannot be returned again")
    used = calendar.workdays_between(placed_at.astimezone(SHANGHAI).date(), now.astimezone(SHANGHAI).date())
    if used > matter.return_limit_days:
        raise TransitionRefused("return_limit_passed",
                                f"items may be returned within {matter.return_limit_days} working days; "
                                f"{used} have passed", return_limit_days=matter.return_limit_days)
    line = catalogue.line_of(community_code)
    above = catalogue.desk_level_above(matter, level)
    if above is None:
        raise TransitionRefused("no_unit_above",
                                "this is the top of the line: the district decides and cannot return it")
    return ReturnDecision(level=above, unit_code=line[above].code,
                          returns_locked=return_count + 1 >= policy.max_returns)


def decide_assignment(catalogue: Catalogue, *, returns_locked: bool, deciding_unit: str, item_unit: str,
                      target_unit: str, department_code: str) -> Level:
    """Decide after ping-pong: once the returns reached the limit, the unit now holding the item (the level
    above) assigns it to a unit of its jurisdiction and a department with a desk there. The item stays locked
    against returns. Returns the target unit's level."""
    if not returns_locked:
        raise TransitionRefused("not_returned_to_limit",
                                "the level above assigns an item only after its returns reached the limit")
    if deciding_unit != item_unit:
        raise TransitionRefused("not_deciding_unit", "the unit holding the item (the level above) assigns it",
                                deciding_unit=item_unit)
    if target_unit not in catalogue.units or not catalogue.is_within(target_unit, deciding_unit):
        raise Refusal("unknown_unit", "assign to a unit of your own jurisdiction", status=422)
    if department_code not in catalogue.departments:
        raise Refusal("unknown_department", "no such department", status=422)
    level = catalogue.unit(target_unit).level
    if not catalogue.department(department_code).has_desk_at(level):
        raise Refusal("no_desk_there", "the department has no desk at that level", status=422)
    return level


def resume_after_pause(calendar: WorkdayCalendar, promised_deadline: datetime, paused_at: datetime,
                       resumed_at: datetime) -> datetime:
    """Move the promised deadline on by the working days the clock stood still (the day it stopped counts
    as used, so a supplement the same day moves nothing)."""
    paused_days = calendar.workdays_between(paused_at.astimezone(SHANGHAI).date(),
                                            resumed_at.astimezone(SHANGHAI).date())
    if paused_days <= 0:
        return promised_deadline
    local = promised_deadline.astimezone(SHANGHAI)
    moved = calendar.add_workdays(local.date(), paused_days).date
    return datetime.combine(moved, local.timetz())


def prerequisites_met(waiting_for: Iterable[str], statuses_by_matter: dict[str, str]) -> bool:
    return all(statuses_by_matter.get(matter) == "resolved" for matter in waiting_for)


def prerequisite_failed(waiting_for: Iterable[str], statuses_by_matter: dict[str, str]) -> str | None:
    """The first prerequisite that was rejected or terminated, if any."""
    for matter in waiting_for:
        if statuses_by_matter.get(matter) in ("rejected", "terminated"):
            return matter
    return None


def deferral_reminder_due(calendar: WorkdayCalendar, *, due_date, today, remind_working_days_before: int) -> bool:
    return today <= due_date and calendar.workdays_between(today, due_date) <= remind_working_days_before


def deferral_expired(*, due_date, today) -> bool:
    """A deferred material is due by the end of its due date."""
    return today > due_date


def supplement_expired(*, status: str, due_date, today) -> bool:
    """An item paused for supplementary material (补正) whose due date has passed without it: the application is
    treated as withdrawn (行政许可法 §32 lets the office set the time; past it nothing is owed), so it is closed
    instead of waiting forever. Due by the end of the due date, like a 容缺 material."""
    return status == "supplement_requested" and due_date is not None and today > due_date


def one_trip_delivery(deliveries: list[Delivery], community_name: str) -> Delivery | None:
    """How the resident collects every result of a case in one trip.

    Door delivery if any result goes to the door (the social worker brings everything); the one pickup
    place if all results wait at the same window; otherwise the community's service centre, where the
    results are gathered for her.
    """
    if not deliveries:
        return None
    door = [delivery for delivery in deliveries if delivery.method == "door"]
    if door:
        return door[0]
    places = {delivery.place for delivery in deliveries}
    if len(places) == 1:
        return deliveries[0]
    return Delivery(method="pickup", place=f"{community_name}为民服务中心（结果统一送达）")
