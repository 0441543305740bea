"""The rules of 好差评, rectification, appeals, 体验官 findings, 督办单 and the three rates: pure Python.

No nameko, SQLAlchemy or kombu here; time comes in as an argument. Every refusal is a ``Refusal`` with a
machine-readable reason, raised before anything is written.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.catalogue import Catalogue, Level
from shared.events import RECTIFICATION_REASONS
from shared.refusal import Refusal
from shared.workdays import CalendarCoverageWarning, Revision, WorkdayCalendar, revise_deadline

# ── ratings ────────────────────────────────────────────────────────────────────────────────────────────


class RatingLevel(StrEnum):
    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"


LEVEL_NAMES = {
    RatingLevel.VERY_SATISFIED: "非常满意",
    RatingLevel.SATISFIED: "满意",
    RatingLevel.BASICALLY_SATISFIED: "基本满意",
    RatingLevel.DISSATISFIED: "不满意",
    RatingLevel.VERY_DISSATISFIED: "非常不满意",
}
_LEVEL_BY_NAME = {name: level for level, name in LEVEL_NAMES.items()}

BAD_LEVELS = frozenset({RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED})
CHANNELS = ("sms_link", "kiosk", "window_pad", "lookup")
FINAL_ITEM_STATUSES = frozenset({"resolved", "rejected", "terminated"})


class Conflict(Refusal):
    status = 409


class Forbidden(Refusal):
    status = 403


class NotFound(Refusal):
    status = 404


class Gone(Refusal):
    status = 410


def parse_level(text: str) -> RatingLevel:
    """A level by code (``very_dissatisfied``) or by its Chinese name (非常不满意)."""
    if text in _LEVEL_BY_NAME:
        return _LEVEL_BY_NAME[text]
    try:
        return RatingLevel(text)
    except ValueError:
        raise Refusal("unknown_level", "the level is one of 非常满意, 满意, 基本满意, 不满意, 非常不满意",
                      levels=[level.value for level in RatingLevel]) from None


@dataclass(frozen=True)
class ReasonCatalogue:
    praise: frozenset[str]
    complaint: frozenset[str]
    # code -> the Chinese name a rating page shows (rating-reasons.yaml), in the catalogue's order
    names: dict[str, str] = field(default_factory=dict, compare=False)

    def options(self) -> list[tuple[str, str, str]]:
        """(code, name, kind) of every reason, praise first, for a rating page; kind is praise or complaint."""
        codes = [code for code in self.names if code in self.praise | self.complaint]
        codes += sorted((self.praise | self.complaint) - set(codes))
        options = [(code, self.names.get(code, code), "praise" if code in self.praise else "complaint")
                   for code in codes]
        return sorted(options, key=lambda option: option[2] != "praise")  # stable: the catalogue's order

    def check(self, level: RatingLevel, codes: tuple[str, ...]) -> None:
        allowed = self.complaint | (frozenset() if level in BAD_LEVELS else self.praise)
        unknown = sorted(set(codes) - allowed)
        if unknown:
            raise Refusal("unknown_reason", "a reason code is not in the catalogue for this level",
                          unknown=unknown, allowed=sorted(allowed))
        if len(set(codes)) != len(codes):
            raise Refusal("duplicate_reason", "a reason code is listed twice")


@dataclass(frozen=True)
class EvaluationSettings:
    rating_window_days: int = 30
    change_window_hours: int = 24
    rectification_days: int = 5
    escalate_after_days: int = 2
    basic_weight: float = 0.6
    response_working_days: int = 1
    max_ratings_per_rater: int = 5
    attachment_max_bytes: int = 2 * 1024 * 1024
    attachment_types: tuple[str, ...] = ("image/jpeg", "image/png")
    sweep_seconds: float = 60.0


@dataclass(frozen=True)
class RatedItem:
    """What the rules need to know of an item: its status and when its case completed."""

    item_id: str
    case_id: str
    community_code: str
    unit_code: str
    status: str
    case_completed_at: datetime | None


@dataclass(frozen=True)
class PriorRating:
    rating_id: str
    submitted_at: datetime


def decide_rating(item: RatedItem | None, prior: PriorRating | None, *, now: datetime,
                  settings: EvaluationSettings) -> str:
    """``new`` or ``replace`` (a change within the change window); otherwise a refusal that says why."""
    if item is None:
        raise NotFound("unknown_item", "no such item")
    if item.case_completed_at is None or item.status not in FINAL_ITEM_STATUSES:
        raise Conflict("item_not_completed", "an item can be rated once its case is completed",
                       current_status=item.status)
    closes = item.case_completed_at + timedelta(days=settings.rating_window_days)
    if now > closes:
        raise Conflict("rating_window_closed", f"ratings are taken for {settings.rating_window_days} days after "
                       "completion", window_closed_at=closes.isoformat())
    if prior is None:
        return "new"
    if now - prior.submitted_at <= timedelta(hours=settings.change_window_hours):
        return "replace"
    raise Conflict("already_rated", f"this item was rated on this channel; a change is taken within "
                   f"{settings.change_window_hours} hours only", rating_id=prior.rating_id)


def opens_rectification(level: RatingLevel) -> bool:
    return level in BAD_LEVELS


def satisfaction_value(level: RatingLevel, basic_weight: float) -> float:
    """An item's contribution to the satisfaction rate's numerator (its denominator counts 1)."""
    if level in (RatingLevel.VERY_SATISFIED, RatingLevel.SATISFIED):
        return 1.0
    if level is RatingLevel.BASICALLY_SATISFIED:
        return basic_weight
    return 0.0


# ── rectification ──────────────────────────────────────────────────────────────────────────────────────

RESULTS = ("rectified", "explained", "cannot_rectify")   # 整改完成, 解释说明, 无法整改
CALLBACK_OUTCOMES = ("reached_satisfied", "reached_unsatisfied", "not_reached")
# The coded reasons that may go with a result (shared/events.py): what the resident's SMS can say about it.
REASON_CODES = {result: tuple(codes) for result, codes in RECTIFICATION_REASONS.items()}


def rectification_deadline(calendar: WorkdayCalendar, opened_at: datetime, days: int) -> datetime:
    return calendar.deadline_at(opened_at, days)[0]


@dataclass(frozen=True)
class RectificationDue:
    """A rectification's due time (``days`` working days after it opened) and its escalation time
    (``escalate_after_days`` working days after the due time), each with its provisional flag: True when it was
    counted in a year whose holiday arrangement (调休) is not loaded yet."""

    deadline: datetime
    deadline_provisional: bool
    escalate_at: datetime
    escalate_at_provisional: bool


def rectification_due(calendar: WorkdayCalendar, opened_at: datetime, days: int,
                      escalate_after_days: int) -> RectificationDue:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarCoverageWarning)  # the flag says it; the row keeps it
        deadline, deadline_provisional = calendar.deadline_at(opened_at, days)
        escalate_at, escalate_provisional = calendar.deadline_at(deadline, escalate_after_days)
    return RectificationDue(deadline, deadline_provisional, escalate_at, escalate_provisional)


@dataclass(frozen=True)
class RectificationRevision:
    """A stored rectification's times counted again under the calendar in force now (see ``revise_rectification``)."""

    deadline: Revision
    escalate_at: Revision
    escalate_was_provisional: bool

    @property
    def changed(self) -> bool:
        """Whether a time moved."""
        return self.deadline.changed or self.escalate_at.changed

    @property
    def deadline_changed(self) -> bool:
        return self.deadline.changed

    @property
    def needed(self) -> bool:
        """Whether anything is to be stored: a time moved, or a flag cleared."""
        return (self.changed or self.deadline.provisional != self.deadline.was_provisional
                or self.escalate_at.provisional != self.escalate_was_provisional)


def revise_rectification(calendar: WorkdayCalendar, *, opened_at: datetime, deadline_days: int,
                         escalate_after_days: int, deadline: datetime, deadline_provisional: bool,
                         escalate_at: datetime, escalate_at_provisional: bool) -> RectificationRevision:
    """The due time counted again from ``opened_at`` while it is provisional, then the escalation time from the
    (revised) due time while it is provisional or the due time moved. A settled time stays as stored, so a second
    revision under the same calendar changes nothing."""
    due = revise_deadline(calendar, start=opened_at, days=deadline_days, stored=deadline,
                          stored_provisional=deadline_provisional)
    escalate = revise_deadline(calendar, start=due.after, days=escalate_after_days, stored=escalate_at,
                               stored_provisional=escalate_at_provisional or due.changed)
    return RectificationRevision(due, escalate, escalate_at_provisional)


def order_due(calendar: WorkdayCalendar, issued_at: datetime, days: int) -> tuple[datetime, bool]:
    """A 督办单's due time, ``days`` working days after it was issued, and whether it is provisional."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarCoverageWarning)
        return calendar.deadline_at(issued_at, days)


def overdue_stage(*, state: str, deadline: datetime, escalate_at: datetime, now: datetime) -> str | None:
    """What an open rectification's clock says now: ``warning`` past the deadline, ``escalated`` past the
    grace after it; None while in time, closed, or already at that stage."""
    if state not in ("open", "warned"):
        return None
    if now >= escalate_at and state in ("open", "warned"):
        return "escalated"
    if now >= deadline and state == "open":
        return "warning"
    return None


def check_closure(*, state: str, owner_unit: str, actor_unit: str, callback_recorded: bool, result: str,
                  reason: str | None, reason_code: str | None = None) -> None:
    if actor_unit != owner_unit:
        raise Forbidden("not_owner", "only the unit that owns the rectification closes it")
    if state == "closed":
        raise Conflict("rectification_closed", "the rectification is already closed")
    if result not in RESULTS:
        raise Refusal("unknown_result", "the result is rectified, explained or cannot_rectify")
    if result in ("explained", "cannot_rectify") and not (reason or "").strip():
        raise Refusal("reason_required", "explained and cannot_rectify need a reason")
    if reason_code is not None and reason_code not in REASON_CODES.get(result, ()):
        allowed = ", ".join(REASON_CODES.get(result, ())) or "none"
        raise Refusal("reason_code_mismatch", f"a {result} closing takes the reason codes: {allowed}",
                      field="reason_code")
    if not callback_recorded:
        raise Conflict("callback_missing", "record the call-back to the resident before closing")


def escalation_unit(catalogue: Catalogue, unit_code: str) -> str | None:
    """The unit above (street for a community, district for a street); None at a district."""
    return catalogue.unit(unit_code).parent_code


# ── appeals ────────────────────────────────────────────────────────────────────────────────────────────

APPEAL_GROUNDS = ("wrong_case", "abusive_text", "unrelated_to_service", "malicious")


def deciding_unit(catalogue: Catalogue, unit_code: str) -> str:
    """The level above decides; a district's own appeals are decided by the district's supervision office
    (the same district code: the city level is not modelled)."""
    return catalogue.unit(unit_code).parent_code or unit_code


def check_appeal(*, rating_unit: str, actor_unit: str, open_appeal: bool, excluded: bool) -> None:
    if actor_unit != rating_unit:
        raise Forbidden("not_rated_unit", "only the unit that handled the item may appeal its rating")
    if open_appeal or excluded:
        raise Conflict("appeal_exists", "this rating already has an appeal")


def check_decision(catalogue: Catalogue, *, rating_unit: str, actor_unit: str, state: str) -> None:
    if actor_unit != deciding_unit(catalogue, rating_unit):
        raise Forbidden("not_deciding_unit", "the level above the rated unit decides the appeal",
                        deciding_unit=deciding_unit(catalogue, rating_unit))
    if state != "pending":
        raise Conflict("appeal_decided", "the appeal is already decided")


# ── 体验官 findings ────────────────────────────────────────────────────────────────────────────────────

SEVERITIES = ("low", "medium", "high", "critical")
_MAGIC = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",)}


def check_attachment(content_type: str, data: bytes, settings: EvaluationSettings) -> None:
    if content_type not in settings.attachment_types:
        raise Refusal("attachment_type", "attachments are photos", allowed=list(settings.attachment_types),
                      status=415)
    if len(data) > settings.attachment_max_bytes:
        raise Refusal("attachment_too_large", f"an attachment is at most {settings.attachment_max_bytes} bytes",
                      status=413)
    if not data.startswith(_MAGIC.get(content_type, (b"",))):
        raise Refusal("attachment_type", "the attachment's content is not of its declared type", status=415)


# ── 督办单 ─────────────────────────────────────────────────────────────────────────────────────────────


def check_supervisor(catalogue: Catalogue, *, supervisor_unit: str, kind: str, subject_unit: str,
                     target_unit: str) -> None:
    level = catalogue.unit(supervisor_unit).level
    if kind != "staff" or level is Level.COMMUNITY:
        raise Forbidden("not_supervisor", "supervision orders are issued by street or district staff")
    if not (catalogue.is_within(subject_unit, supervisor_unit) and catalogue.is_within(target_unit, supervisor_unit)):
        raise Forbidden("outside_jurisdiction", "the item and the unit ordered must lie in your jurisdiction")


def order_state(*, answered_at: datetime | None, due_at: datetime, now: datetime) -> str:
    if answered_at is not None:
        return "answered_late" if answered_at > due_at else "answered"
    return "overdue" if now > due_at else "open"


# ── the three rates ────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Tally:
    """Counts for one unit (or level, or department) over a period."""

    routed: int = 0
    responded_in_time: int = 0
    due: int = 0
    resolved_in_time: int = 0
    rated: int = 0
    satisfaction_points: float = 0.0
    flags: dict[str, int] = field(default_factory=dict)

    def rates(self) -> dict[str, float | None]:
        return {
            "response_rate": _share(self.responded_in_time, self.routed),
            "resolution_rate": _share(self.resolved_in_time, self.due),
            "satisfaction_rate": _share(self.satisfaction_points, self.rated),
        }


def _share(numerator: float, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def ranking_score(rates: dict[str, float | None]) -> tuple[float, ...] | None:
    """Rankings order by satisfaction, then resolution, then response (None counts as unknown, last)."""
    values = [rates["satisfaction_rate"], rates["resolution_rate"], rates["response_rate"]]
    return None if all(v is None for v in values) else tuple(-1 if v is None else v for v in values)


def trend(current: float | None, previous: float | None) -> str:
    if current is None or previous is None:
        return "new"
    if abs(current - previous) < 0.005:
        return "steady"
    return "up" if current > previous else "down"


def respond_deadline(calendar: WorkdayCalendar, routed_at: datetime, days: int) -> datetime:
    return calendar.deadline_at(routed_at, days)[0]


def late_suspension(calendar: WorkdayCalendar, *, clock_started_at: datetime, promised_deadline: datetime,
                    paused_at: datetime, share: float = 0.8) -> bool:
    """Anti-gaming: a request for material that stops the clock after ``share`` of the promised time."""
    return calendar.used_share(clock_started_at, promised_deadline, paused_at) >= share
