"""The escalation rules, pure: the internal-loop ladder, 督办 deadlines, 吹哨 calls and the 办不成事 report states.

No nameko, SQLAlchemy or kombu here, and no clock: every "now" is a parameter. The service turns what these
functions decide into deadline rows and events (handlers.py, sweeps.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from shared.catalogue import Catalogue, Level, Matter
from shared.logging import redact_text
from shared.refusal import Refusal
from shared.workdays import SHANGHAI, WorkdayCalendar

OPEN_STATUSES = frozenset({"waiting", "queued", "claimed", "accepted", "supplement_requested"})
FINAL_STATUSES = frozenset({"resolved", "rejected", "terminated"})

_ONE_DAY = timedelta(days=1)
# Walking the calendar back further than this means a broken deadline, not a long limit.
_MAX_DAYS_WALKED = 3 * 366


class DeadlineKind(StrEnum):
    LOOP_COMMUNITY = "loop_community"        # the community's internal-loop time box ran out
    LOOP_STREET = "loop_street"              # the street's time box for an internal-loop matter ran out
    DEADLINE_WARNING = "deadline_warning"    # 督办: the warning share of the promised time is used
    PROMISED_BREACH = "promised_breach"      # 督办: first escalation
    LEGAL_BREACH = "legal_breach"            # 督办: second escalation
    WHISTLE_ACK = "whistle_ack"              # 吹哨: a called department's acknowledgement limit
    REPORT_OPINION = "report_opinion"        # 办不成事, complex: the department's opinion is due
    REPORT_TIME_LIMIT = "report_time_limit"  # 办不成事, special: the limit the person was told
    DEFERRAL_REMINDER = "deferral_reminder"  # 容缺 granted by a specialist: remind before the due date
    DEFERRAL_DUE = "deferral_due"            # … and follow up when it passes without the material


SUPERVISION_KINDS = (DeadlineKind.DEADLINE_WARNING, DeadlineKind.PROMISED_BREACH, DeadlineKind.LEGAL_BREACH)


# ── Working time ────────────────────────────────────────────────────────────────────────────────────


def working_seconds(calendar: WorkdayCalendar, begin: datetime, end: datetime) -> float:
    """Working time between two moments, measured as ``WorkdayCalendar.used_share`` measures it: a working
    day counts midnight to midnight (Shanghai), any other day not at all. Constant time whatever the span
    (the calendar's cumulative working-day index)."""
    return calendar.working_seconds(begin, end)


def working_moment_before(calendar: WorkdayCalendar, end: datetime, seconds: float) -> datetime:
    """The moment that leaves ``seconds`` of working time until ``end``."""
    remaining = max(seconds, 0.0)
    segment_end = end.astimezone(SHANGHAI)
    day = segment_end.date()
    for _ in range(_MAX_DAYS_WALKED):
        day_start = datetime.combine(day, time(0), tzinfo=SHANGHAI)
        available = (segment_end - day_start).total_seconds() if calendar.is_workday(day) else 0.0
        if remaining <= available:
            return segment_end - timedelta(seconds=remaining)
        remaining -= available
        segment_end = day_start
        day -= _ONE_DAY
    raise ValueError("no such moment within three years before the deadline")


# ── 督办: warning, promised breach, legal breach ───────────────────────────────────────────────────


@dataclass(frozen=True)
class ItemClock:
    """Where an item's clock stands, as the escalation service knows it."""

    status: str
    promised_deadline: datetime | None
    legal_deadline: datetime | None
    promised_budget_seconds: float | None   # the working time the promised limit gave when the clock started
    paused: bool


def supervision_due(clock: ItemClock, *, calendar: WorkdayCalendar,
                    warning_share: float) -> dict[DeadlineKind, datetime]:
    """When each 督办 stage falls due, or nothing while it cannot (waiting, paused, closed, deadlines unknown).

    The warning comes when the working time left before the promised deadline is ``1 - warning_share`` of
    the working time the limit gave at the start. Measured backwards from the deadline, it stays right when a
    paused clock moved the deadline on: the pause neither counts as used time nor brings the warning forward.
    """
    if (clock.status not in OPEN_STATUSES or clock.status == "waiting" or clock.paused
            or clock.promised_deadline is None or clock.legal_deadline is None):
        return {}
    due = {DeadlineKind.PROMISED_BREACH: clock.promised_deadline, DeadlineKind.LEGAL_BREACH: clock.legal_deadline}
    if clock.promised_budget_seconds:
        due[DeadlineKind.DEADLINE_WARNING] = working_moment_before(
            calendar, clock.promised_deadline, (1 - warning_share) * clock.promised_budget_seconds)
    return due


def shift_legal_deadline(calendar: WorkdayCalendar, legal: datetime, old_promised: datetime,
                         new_promised: datetime) -> datetime:
    """Routing moves the promised deadline on by the working days a supplement paused the clock; the time
    waiting for the applicant's material does not count against the legal limit either (行政许可法 第四十五条),
    so the legal deadline moves by the same working days."""
    days = calendar.workdays_between(old_promised.astimezone(SHANGHAI).date(),
                                     new_promised.astimezone(SHANGHAI).date())
    if days <= 0:
        return legal
    local = legal.astimezone(SHANGHAI)
    return datetime.combine(calendar.add_workdays(local.date(), days).date, local.timetz())


def supervising_level(level: Level, stage: DeadlineKind) -> Level:
    """Who takes a breach up: the level above the item's for the promised limit, two above for the legal
    limit; the district supervises itself (its own 督办 office), as nothing sits above it in the line."""
    steps = 1 if stage is DeadlineKind.PROMISED_BREACH else 2
    supervising = level
    for _ in range(steps):
        supervising = supervising.above() or Level.DISTRICT
    return supervising


# ── The internal loop and the ladder ────────────────────────────────────────────────────────────────


class LoopOutcome(StrEnum):
    RESOLVED_IN_LOOP = "resolved_in_loop"    # counts for the community
    ESCALATED = "escalated"                  # left the community by an escalation order
    RETURNED = "returned"                    # left the community by a return (退单)
    CLOSED_UNRESOLVED = "closed_unresolved"  # rejected or terminated inside the loop
    RESOLVED_LATE = "resolved_late"          # resolved at the community after its box ran out


def community_loop_applies(matter: Matter, level: Level) -> bool:
    return matter.internal_loop_days is not None and level is Level.COMMUNITY


def community_loop_ends(calendar: WorkdayCalendar, matter: Matter, started_at: datetime) -> datetime:
    """The community's time box: ``internal_loop_days`` working days from routing, at closing time."""
    return calendar.deadline_at(started_at, matter.internal_loop_days)[0]


def street_loop_ends(calendar: WorkdayCalendar, arrived_at: datetime, street_loop_days: int) -> datetime:
    """The street's time box for an internal-loop matter: ``street_loop_days`` working days from its arrival
    at the street, at closing time. When it runs out with the item still open there, it goes to the district."""
    return calendar.deadline_at(arrived_at, street_loop_days)[0]


def loop_outcome(*, status: str, occurred_at: datetime, loop_ends_at: datetime | None,
                 left_by: str | None = None) -> LoopOutcome | None:
    """How a running community loop ended, given the item change that ended it; None if it did not end.

    ``left_by`` is "escalated" or "returned" when the change took the item out of the community."""
    if left_by is not None:
        return LoopOutcome.ESCALATED if left_by == "escalated" else LoopOutcome.RETURNED
    if status == "resolved":
        in_time = loop_ends_at is None or occurred_at <= loop_ends_at
        return LoopOutcome.RESOLVED_IN_LOOP if in_time else LoopOutcome.RESOLVED_LATE
    if status in ("rejected", "terminated"):
        return LoopOutcome.CLOSED_UNRESOLVED
    return None


# ── 吹哨 ───────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Desk:
    department_code: str
    level: Level
    unit_code: str


def whistle_desks(catalogue: Catalogue, matter: Matter, community_code: str, caller_level: Level) -> list[Desk]:
    """The desks called in when an item reaches ``caller_level`` by escalation: each department the matter
    names, at the caller's level or, where it has no desk there, the next level up where it has one."""
    if caller_level is Level.COMMUNITY:
        return []
    return desks_for(catalogue, matter.call_in_departments, community_code, caller_level)


def desks_for(catalogue: Catalogue, department_codes, community_code: str, caller_level: Level) -> list[Desk]:
    """Each department's desk at the caller's level or, where it has none there, the next level up."""
    line = catalogue.line_of(community_code)
    desks = []
    for code in department_codes:
        department = catalogue.department(code)
        level: Level | None = caller_level
        while level is not None and not department.has_desk_at(level):
            level = level.above()
        if level is not None:
            desks.append(Desk(code, level, line[level].code))
    return desks


def whistle_escalation_target(catalogue: Catalogue, community_code: str, caller_level: Level) -> tuple[Level, str]:
    """Where an unacknowledged call goes: the level above the caller; at the district, the district's own
    supervision."""
    target = caller_level.above() or Level.DISTRICT
    return target, catalogue.unit_at(community_code, target).code


# ── 办不成事 reports ────────────────────────────────────────────────────────────────────────────────


class ReportStatus(StrEnum):
    OPEN = "open"              # filed; no specialist yet
    ASSIGNED = "assigned"      # a specialist coordinates
    CLOSED = "closed"          # an outcome is recorded; the return visit is owed
    CONFIRMED = "confirmed"    # the person agreed it is solved: final


class ReportAction(StrEnum):
    CLASSIFY = "classify"
    ASSIGN = "assign"
    RECORD_CONTACT = "record-contact"
    CLOSE = "close"
    RETURN_VISIT = "return-visit"


REPORT_TRANSITIONS: dict[tuple[ReportStatus, ReportAction], ReportStatus] = {
    (ReportStatus.OPEN, ReportAction.CLASSIFY): ReportStatus.OPEN,
    (ReportStatus.ASSIGNED, ReportAction.CLASSIFY): ReportStatus.ASSIGNED,
    (ReportStatus.OPEN, ReportAction.ASSIGN): ReportStatus.ASSIGNED,
    (ReportStatus.ASSIGNED, ReportAction.ASSIGN): ReportStatus.ASSIGNED,   # handed to another specialist
    (ReportStatus.ASSIGNED, ReportAction.RECORD_CONTACT): ReportStatus.ASSIGNED,
    (ReportStatus.OPEN, ReportAction.CLOSE): ReportStatus.CLOSED,          # simple: solved on the spot
    (ReportStatus.ASSIGNED, ReportAction.CLOSE): ReportStatus.CLOSED,
    # The return visit: agreed -> confirmed; not agreed -> reopened (back to its specialist, if any).
    (ReportStatus.CLOSED, ReportAction.RETURN_VISIT): ReportStatus.CONFIRMED,
}

OUTCOMES = ("solved", "explained", "referred", "deferral_granted", "not_solvable")


class ReportRefused(Refusal):
    """The report action is not allowed; ``reason`` is machine-readable, ``status`` the HTTP status."""

    status = 409


def next_report_status(status: str, action: ReportAction, *, agrees_solved: bool = True,
                       has_specialist: bool = False) -> ReportStatus:
    current = ReportStatus(status)
    if current is ReportStatus.CLOSED and action is ReportAction.RETURN_VISIT and not agrees_solved:
        return ReportStatus.ASSIGNED if has_specialist else ReportStatus.OPEN
    try:
        return REPORT_TRANSITIONS[(current, action)]
    except KeyError:
        raise ReportRefused("transition_not_allowed", f"cannot {action} a report that is {status}",
                            current_status=status) from None


@dataclass(frozen=True)
class ReportFacts:
    """What the close rules look at."""

    status: str
    report_class: str | None
    specialist: str | None
    owner: str
    opinion_received: bool


def check_may_close(report: ReportFacts, actor: str, outcome: str, *, has_deferral: bool) -> None:
    """Who may close, and when.

    - The assigned specialist closes; a simple report may also be closed on the spot by the first person
      asked (the owner), before any specialist is involved.
    - A report is classified first: the class decides what is owed.
    - A complex report needs the department's opinion recorded first.
    - 容缺 as an outcome names the item and the missing materials.
    """
    if report.report_class is None:
        raise ReportRefused("not_classified", "classify the report (class and cause) before closing it")
    by_owner_on_the_spot = report.report_class == "simple" and report.specialist is None and actor == report.owner
    if actor != report.specialist and not by_owner_on_the_spot:
        raise ReportRefused("not_report_specialist",
                            "only the assigned specialist closes (or, for a simple report, the first person asked)")
    if report.report_class == "complex" and not report.opinion_received:
        raise ReportRefused("opinion_missing", "a complex report is closed after the department's opinion is recorded")
    if (outcome == "deferral_granted") != has_deferral:
        raise ReportRefused("deferral_mismatch", "the deferral_granted outcome, and only it, comes with a deferral",
                            status=422)


def class_limits(calendar: WorkdayCalendar, report_class: str, now: datetime, *, opinion_days: int,
                 time_limit_days: int | None) -> tuple[datetime | None, datetime | None]:
    """(opinion due, time limit) for a report classified now: complex owes the department's opinion in
    ``opinion_days`` working days; special has the limit given to the person; simple owes nothing (it is
    solved on the spot)."""
    if report_class == "complex":
        return calendar.deadline_at(now, opinion_days)[0].astimezone(UTC), None
    if report_class == "special":
        if time_limit_days is None:
            raise ReportRefused("time_limit_missing", "a special report states the time limit given to the person "
                                "(time_limit_days)", status=422)
        return None, calendar.deadline_at(now, time_limit_days)[0].astimezone(UTC)
    return None, None


def contains_personal_data(text: str) -> bool:
    """Free text recorded here must not carry an ID-card or phone number: those stay in intake."""
    return redact_text(text) != text


def report_number(filed_at: datetime, report_id: str) -> str:
    """办不成事 report number: BCS, the Shanghai date, and the start of the id (unique with the id)."""
    return f"BCS{filed_at.astimezone(SHANGHAI):%Y%m%d}-{report_id.replace('-', '')[:8].upper()}"


def deferral_reminder_day(calendar: WorkdayCalendar, due_date: date, today: date) -> date:
    """The working day before a granted 容缺 material is due (today, if that day has already come)."""
    day = due_date - _ONE_DAY
    while not calendar.is_workday(day) and day > today:
        day -= _ONE_DAY
    return max(day, today)
