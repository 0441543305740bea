"""The periodic analysis (办成一件事 → 解决一类事): which kinds of failure come most, how often limits are broken,
how much goes up the levels, and how much the communities solve inside their own loop.

Pure: rows in, figures out. ``reporting.py`` reads the rows from the database and writes the files. What each
figure counts is stated here once, and in docs/escalation.md:

- **Reports**: 办不成事 reports filed in the period (Shanghai dates, both ends included), counted by class
  (``unclassified`` until someone classifies it), cause, matter, department, unit (where it was first asked) and
  level (of the item concerned; of the reporting unit when no item is named).
- **Item overdue rate**: of the items whose promised deadline fell in the period, the share whose promised limit
  was broken (the 督办 first escalation fired).
- **Report overdue rate**: of the complex and special reports filed in the period, the share that missed the
  department's opinion or the time limit told to the person.
- **Escalations**: what the escalation service did in the period, by kind; orders up the line also by the level
  they were made from.
- **Internal-loop resolution rate**: of the community loops that ended in the period, the share resolved inside
  the loop (in time, at the community); also per community.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.workdays import SHANGHAI

NONE_KEY = "none"
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class ReportRow:
    filed_at: datetime
    report_class: str | None
    cause_code: str | None
    matter_code: str | None
    department_code: str | None
    unit_code: str
    level: str | None            # already resolved: the item's level, or the reporting unit's
    overdue: bool
    reopen_count: int = 0


@dataclass(frozen=True)
class ItemRow:
    community_code: str
    promised_deadline: datetime | None
    promised_breached: bool
    loop_outcome: str | None
    loop_ended_at: datetime | None


@dataclass(frozen=True)
class ActionRow:
    kind: str
    at: datetime
    level: str | None
    reason: str | None = None    # escalation orders: internal_loop_expired | whistle_unacknowledged


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class Figures:
    date_from: date
    date_to: date
    reports_total: int = 0
    by_dimension: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # dimension -> [(key, count)]
    reports_reopened: int = 0
    item_overdue: Rate = Rate(0, 0)
    report_overdue: Rate = Rate(0, 0)
    escalations: list[tuple[str, int]] = field(default_factory=list)
    orders_by_level: list[tuple[str, int]] = field(default_factory=list)
    loop: Rate = Rate(0, 0)
    loop_outcomes: list[tuple[str, int]] = field(default_factory=list)
    loop_by_community: list[tuple[str, Rate]] = field(default_factory=list)


DIMENSIONS = ("class", "cause", "matter", "department", "unit", "level")

# The order escalation kinds are listed in, ladder first.
ESCALATION_KINDS = (
    "escalation_ordered:internal_loop_expired",
    "escalation_ordered:whistle_unacknowledged",
    "item_escalated",
    "deadline_warning",
    "supervision_promised_breach",
    "supervision_legal_breach",
    "whistle_called",
    "whistle_acknowledged",
    "whistle_escalated",
    "report_overdue",
)
LEVEL_ORDER = ("community", "street", "district")


def in_period(moment: datetime | None, date_from: date, date_to: date) -> bool:
    return moment is not None and date_from <= moment.astimezone(SHANGHAI).date() <= date_to


def _sorted_counts(counter: Counter) -> list[tuple[str, int]]:
    """Most first; ties by key, so the files are stable."""
    return sorted(counter.items(), key=lambda pair: (-pair[1], pair[0]))


def compute_figures(*, reports: list[ReportRow], items: list[ItemRow], actions: list[ActionRow],
                    date_from: date, date_to: date) -> Figures:
    if date_to < date_from:
        raise ValueError("the period ends before it starts")
    figures = Figures(date_from=date_from, date_to=date_to)

    filed = [report for report in reports if in_period(report.filed_at, date_from, date_to)]
    figures.reports_total = len(filed)
    keys = {
        "class": lambda r: r.report_class or UNCLASSIFIED,
        "cause": lambda r: r.cause_code or UNCLASSIFIED,
        "matter": lambda r: r.matter_code or NONE_KEY,
        "department": lambda r: r.department_code or NONE_KEY,
        "unit": lambda r: r.unit_code,
        "level": lambda r: r.level or NONE_KEY,
    }
    for dimension in DIMENSIONS:
        counts = _sorted_counts(Counter(keys[dimension](report) for report in filed))
        if dimension == "level":
            counts.sort(key=lambda pair: LEVEL_ORDER.index(pair[0]) if pair[0] in LEVEL_ORDER else len(LEVEL_ORDER))
        figures.by_dimension[dimension] = counts
    figures.reports_reopened = sum(1 for report in filed if report.reopen_count)
    with_limit = [report for report in filed if report.report_class in ("complex", "special")]
    figures.report_overdue = Rate(sum(1 for report in with_limit if report.overdue), len(with_limit))

    due = [item for item in items if in_period(item.promised_deadline, date_from, date_to)]
    figures.item_overdue = Rate(sum(1 for item in due if item.promised_breached), len(due))

    in_window = [action for action in actions if in_period(action.at, date_from, date_to)]
    kinds = Counter(f"{a.kind}:{a.reason}" if a.kind == "escalation_ordered" else a.kind for a in in_window)
    figures.escalations = [(kind, kinds.get(kind, 0)) for kind in ESCALATION_KINDS]
    orders = Counter(a.level or NONE_KEY for a in in_window if a.kind == "escalation_ordered")
    figures.orders_by_level = [(level, orders.get(level, 0)) for level in LEVEL_ORDER]

    ended = [item for item in items if item.loop_outcome and in_period(item.loop_ended_at, date_from, date_to)]
    figures.loop = Rate(sum(1 for item in ended if item.loop_outcome == "resolved_in_loop"), len(ended))
    figures.loop_outcomes = _sorted_counts(Counter(item.loop_outcome for item in ended))
    by_community: dict[str, list[int]] = {}
    for item in ended:
        tally = by_community.setdefault(item.community_code, [0, 0])
        tally[0] += item.loop_outcome == "resolved_in_loop"
        tally[1] += 1
    figures.loop_by_community = [(code, Rate(*tally)) for code, tally in sorted(by_community.items())]
    return figures
