"""A month of escalation data with figures counted by hand, for `sanji report` (December 2026, Shanghai dates).

The expected figures below are written out by hand from the rows, not computed: the test compares what the
report says with them. Each row says in its comment why it counts or does not.
"""

from __future__ import annotations

import json
from datetime import datetime

from services.escalation.adapters.orm import EscalationAction, EscalationItem, FailureReport
from services.escalation.analysis import ActionRow, ItemRow, ReportRow
from shared.workdays import SHANGHAI

PERIOD = ("2026-12-01", "2026-12-31")
XINHE, WANSHOU, STREET, DISTRICT = "320113003021", "320113003002", "320113003000", "320113000000"


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# (filed_at, class, cause, matter, department, unit, item level, overdue, reopen_count)
REPORTS = [
    (sh(2026, 12, 2, 10), "simple", "unclear-guidance", "residence-permit", "police", STREET, "street", False, 0),
    (sh(2026, 12, 3, 11), "complex", "buck-passing", "residence-permit", "police", STREET, "street", True, 0),
    (sh(2026, 12, 5, 9), "complex", "missing-material", "employment-registration", "hrss", XINHE, "community",
     False, 1),
    # No item named: its level is the reporting unit's (a community).
    (sh(2026, 12, 10, 15), "special", "policy-gap", None, None, XINHE, None, True, 0),
    # Filed at the kiosk, not yet classified.
    (sh(2026, 12, 15, 16), None, None, "property-management-complaint", "grid", XINHE, "community", False, 0),
    # The last evening of the period still counts (both ends are included).
    (sh(2026, 12, 31, 23, 30), "simple", "attitude", None, None, DISTRICT, None, False, 0),
    # Outside the period: the minute before it starts, and the first minute after it.
    (sh(2026, 11, 30, 23, 59), "complex", "system-problem", "residence-permit", "police", STREET, "street", True, 0),
    (sh(2027, 1, 1, 0, 0), "simple", "attitude", None, None, XINHE, None, False, 0),
]

# (community, promised deadline, promised limit broken, loop outcome, loop ended at)
ITEMS = [
    (XINHE, sh(2026, 12, 14, 17, 30), True, None, None),            # due in December, broken
    (XINHE, sh(2026, 12, 14, 17, 30), False, None, None),           # due in December, kept
    (XINHE, sh(2026, 12, 20, 17, 30), True, None, None),           # due in December, broken
    (XINHE, sh(2026, 11, 28, 17, 30), True, None, None),            # due in November: not counted
    (XINHE, sh(2027, 1, 5, 17, 30), False, None, None),             # due in January: not counted
    (WANSHOU, sh(2026, 12, 31, 17, 30), False, None, None),         # due on the last day, kept
    # Community loops (their promised deadlines fall outside the period):
    (XINHE, sh(2027, 1, 20, 17, 30), False, "resolved_in_loop", sh(2026, 12, 2, 16)),
    (XINHE, sh(2027, 1, 20, 17, 30), False, "escalated", sh(2026, 12, 4, 17, 31)),
    (WANSHOU, sh(2027, 1, 20, 17, 30), False, "resolved_in_loop", sh(2026, 12, 9, 11)),
    (WANSHOU, sh(2027, 1, 20, 17, 30), False, "resolved_in_loop", sh(2026, 11, 29, 11)),   # ended in November
    (XINHE, sh(2027, 1, 20, 17, 30), False, "returned", sh(2026, 12, 20, 10)),
]

# (kind, at, level, reason)
ACTIONS = [
    ("escalation_ordered", sh(2026, 12, 4, 17, 31), "community", "internal_loop_expired"),
    ("escalation_ordered", sh(2026, 12, 7, 17, 31), "community", "internal_loop_expired"),
    ("escalation_ordered", sh(2026, 12, 10, 17, 31), "street", "internal_loop_expired"),
    ("escalation_ordered", sh(2026, 12, 8, 18, 2), "street", "whistle_unacknowledged"),
    *[("item_escalated", sh(2026, 12, day, 17, 32), "street", "internal_loop_expired") for day in (4, 7, 8, 10)],
    *[("deadline_warning", sh(2026, 12, day, 15, 48), "street", None) for day in (10, 11, 16)],
    *[("supervision_promised_breach", sh(2026, 12, day, 17, 31), "street", None) for day in (14, 18)],
    ("supervision_legal_breach", sh(2026, 12, 21, 17, 31), "street", None),
    *[("whistle_called", sh(2026, 12, day, 17, 32), "street", None) for day in (4, 7, 8, 10)],
    *[("whistle_acknowledged", sh(2026, 12, day, 17, 50), "street", None) for day in (4, 7, 10)],
    ("whistle_escalated", sh(2026, 12, 8, 18, 2), "street", None),
    *[("report_overdue", sh(2026, 12, day, 17, 31), None, None) for day in (10, 24)],
    # Outside the period:
    ("escalation_ordered", sh(2026, 11, 30, 10, 0), "community", "internal_loop_expired"),
    ("deadline_warning", sh(2027, 1, 1, 1, 0), "street", None),
]

# Counted by hand from the rows above.
EXPECTED = {
    "reports_filed": 6,
    "reports_reopened": 1,
    "by_class": {"complex": 2, "simple": 2, "special": 1, "unclassified": 1},
    "by_cause": {"unclear-guidance": 1, "buck-passing": 1, "missing-material": 1, "policy-gap": 1,
                 "unclassified": 1, "attitude": 1},
    "by_matter": {"residence-permit": 2, "employment-registration": 1, "property-management-complaint": 1,
                  "none": 2},
    "by_department": {"police": 2, "hrss": 1, "grid": 1, "none": 2},
    "by_unit": {STREET: 2, XINHE: 3, DISTRICT: 1},
    "by_level": {"community": 3, "street": 2, "district": 1},
    "item_overdue": (2, 4),          # broken / due in the period
    "report_overdue": (2, 3),        # overdue / complex and special
    "loop": (2, 4),                  # resolved in the loop / loops ended in the period
    "loop_by_community": {XINHE: (1, 3), WANSHOU: (1, 1)},
    "escalations": {
        "escalation_ordered:internal_loop_expired": 3, "escalation_ordered:whistle_unacknowledged": 1,
        "item_escalated": 4, "deadline_warning": 3, "supervision_promised_breach": 2,
        "supervision_legal_breach": 1, "whistle_called": 4, "whistle_acknowledged": 3, "whistle_escalated": 1,
        "report_overdue": 2,
    },
    "orders_by_level": {"community": 2, "street": 2, "district": 0},
}


def orm_rows() -> list:
    rows: list = []
    for index, (filed_at, report_class, cause, matter, department, unit, level, overdue, reopened) in enumerate(
            REPORTS, start=1):
        rows.append(FailureReport(
            report_id=f"report-{index}", report_number=f"BCS-FIXTURE-{index}", channel="staff",
            district_code=DISTRICT, unit_code=unit, community_code=None, case_id=None, item_id=None,
            matter_code=matter, department_code=department, level=level, report_class=report_class,
            cause_code=cause, owner="fixture", status="closed", reopen_count=reopened, note="",
            overdue_at=filed_at if overdue else None, filed_at=filed_at, updated_at=filed_at))
    for index, (community, promised, broken, loop_outcome, loop_ended) in enumerate(ITEMS, start=1):
        rows.append(EscalationItem(
            item_id=f"item-{index}", case_id=f"case-{index}", case_number=f"SJ-FIXTURE-{index}",
            matter_code="residence-permit", department_code="police", community_code=community,
            district_code=DISTRICT, level="street", unit_code=STREET, status="resolved", as_of=promised,
            clock_cycle=0, promised_deadline=promised, promised_breached_at=promised if broken else None,
            loop_outcome=loop_outcome, loop_ended_at=loop_ended, updated_at=promised))
    for kind, at, level, reason in ACTIONS:
        rows.append(EscalationAction(kind=kind, at=at, level=level, details=json.dumps(
            {"reason": reason} if reason else {})))
    return rows


def analysis_rows() -> tuple[list[ReportRow], list[ItemRow], list[ActionRow]]:
    """The same rows as the pure analysis takes them (levels resolved as reporting.load_rows resolves them)."""
    unit_levels = {STREET: "street", XINHE: "community", DISTRICT: "district"}
    reports = [ReportRow(filed_at=f, report_class=c, cause_code=cause, matter_code=m, department_code=d, unit_code=u,
                         level=level or unit_levels[u], overdue=o, reopen_count=r)
               for f, c, cause, m, d, u, level, o, r in REPORTS]
    items = [ItemRow(community_code=c, promised_deadline=p, promised_breached=b, loop_outcome=lo, loop_ended_at=le)
             for c, p, b, lo, le in ITEMS]
    actions = [ActionRow(kind=k, at=at, level=level, reason=reason) for k, at, level, reason in ACTIONS]
    return reports, items, actions
