"""The item state table and the pure rules around it: returns, paused clocks, one-trip delivery."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.routing.lifecycle import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    ReturnPolicy,
    TransitionRefused,
    decide_return,
    next_status,
    one_trip_delivery,
    prerequisite_failed,
    prerequisites_met,
    resume_after_pause,
)
from shared.catalogue import Level, load_catalogue
from shared.config import REPO_ROOT
from shared.events import Delivery
from shared.workdays import SHANGHAI, WorkdayCalendar

CATALOGUE = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
CALENDAR = WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml")
XINHE = "320113003021"
ALL_STATUSES = sorted(OPEN_STATUSES | FINAL_STATUSES)
DISALLOWED = [(status, action) for status in ALL_STATUSES for action in Action
              if (status, action) not in TRANSITIONS]


def shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("status", "action"), DISALLOWED, ids=[f"{s}-{a}" for s, a in DISALLOWED])
def test_every_transition_not_in_the_table_is_refused_with_the_current_status(status, action):
    with pytest.raises(TransitionRefused) as refused:
        next_status(status, action)
    assert refused.value.reason == "transition_not_allowed"
    assert refused.value.details["current_status"] == status


@pytest.mark.parametrize(("status", "action"), sorted(TRANSITIONS), ids=[f"{s}-{a}" for s, a in sorted(TRANSITIONS)])
def test_every_transition_in_the_table_leads_where_the_table_says(status, action):
    assert next_status(status, action) == TRANSITIONS[(status, action)]


def test_final_statuses_allow_nothing():
    assert not [key for key in TRANSITIONS if key[0] in FINAL_STATUSES]
    assert len(DISALLOWED) > len(TRANSITIONS)  # the generated refusal test really covers ground


def test_every_open_status_can_be_terminated_by_rule():
    assert {status for status, action in TRANSITIONS if action is Action.TERMINATE} == OPEN_STATUSES


MONDAY_MORNING = shanghai(2026, 11, 30, 9)
TUESDAY_MORNING = shanghai(2026, 12, 1, 9)


def _return(matter_code="employment-registration", level=Level.COMMUNITY, placed=MONDAY_MORNING,
            now=TUESDAY_MORNING, count=0, locked=False, max_returns=2):
    return decide_return(CATALOGUE, CALENDAR, matter=CATALOGUE.matter(matter_code), community_code=XINHE,
                         level=level, placed_at=placed, now=now, return_count=count, returns_locked=locked,
                         policy=ReturnPolicy(max_returns=max_returns))


def test_a_return_within_the_limit_goes_to_the_next_level_up_in_the_line():
    decision = _return()
    assert (decision.level, decision.unit_code, decision.returns_locked) == (Level.STREET, "320113003000", False)


def test_a_return_on_the_last_day_of_the_limit_is_allowed_and_the_day_after_is_not():
    # Placed Monday 11-30; the limit is 2 working days: Wednesday 12-02 is the last day.
    assert _return(now=shanghai(2026, 12, 2, 17)).level is Level.STREET
    with pytest.raises(TransitionRefused) as refused:
        _return(now=shanghai(2026, 12, 3, 9))
    assert refused.value.reason == "return_limit_passed"


def test_the_return_limit_counts_working_days_not_calendar_days():
    # Placed Friday 12-04: Saturday and Sunday do not count, so Tuesday 12-08 is still inside the limit.
    assert _return(placed=shanghai(2026, 12, 4, 16), now=shanghai(2026, 12, 8, 10)).level is Level.STREET


def test_reaching_the_maximum_returns_locks_the_item_at_the_level_above():
    decision = _return(level=Level.STREET, count=1)
    assert (decision.level, decision.returns_locked) == (Level.DISTRICT, True)
    with pytest.raises(TransitionRefused) as refused:
        _return(level=Level.DISTRICT, count=2, locked=True)
    assert refused.value.reason == "returns_exhausted"


def test_the_district_cannot_return_upwards():
    with pytest.raises(TransitionRefused) as refused:
        _return(matter_code="social-insurance-stop", level=Level.DISTRICT)
    assert refused.value.reason == "no_unit_above"


def test_a_paused_clock_moves_the_promised_deadline_by_the_working_days_it_stood_still():
    deadline = shanghai(2026, 12, 10, 17, 30)
    # Paused Monday 11-30, resumed Thursday 12-03: three working days stood still.
    moved = resume_after_pause(CALENDAR, deadline, shanghai(2026, 11, 30, 10), shanghai(2026, 12, 3, 11))
    assert moved == shanghai(2026, 12, 15, 17, 30)
    assert resume_after_pause(CALENDAR, deadline, shanghai(2026, 11, 30, 10), shanghai(2026, 11, 30, 16)) == deadline


def test_prerequisites():
    assert prerequisites_met(["residence-permit"], {"residence-permit": "resolved"})
    assert not prerequisites_met(["residence-permit"], {"residence-permit": "accepted"})
    assert prerequisite_failed(["residence-permit"], {"residence-permit": "rejected"}) == "residence-permit"
    assert prerequisite_failed(["residence-permit"], {"residence-permit": "queued"}) is None


def test_one_trip_delivery():
    window = Delivery(method="pickup", place="迈皋桥街道为民服务中心 7号窗口")
    other_window = Delivery(method="pickup", place="栖霞区政务服务中心")
    door = Delivery(method="door", agent_id="sw-017")
    assert one_trip_delivery([], "馨合家园社区") is None
    assert one_trip_delivery([window, window], "馨合家园社区") == window
    assert one_trip_delivery([window, door], "馨合家园社区") == door
    gathered = one_trip_delivery([window, other_window], "馨合家园社区")
    assert gathered.method == "pickup" and gathered.place.startswith("馨合家园社区")
