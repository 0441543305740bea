"""The escalation rules, pure: working-time arithmetic, 督办 stages, the ladder, 吹哨 desks, the report state table."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.escalation.domain import (
    DeadlineKind,
    ItemClock,
    LoopOutcome,
    ReportAction,
    ReportFacts,
    ReportRefused,
    ReportStatus,
    check_may_close,
    class_limits,
    community_loop_applies,
    community_loop_ends,
    contains_personal_data,
    deferral_reminder_day,
    loop_outcome,
    next_report_status,
    report_number,
    shift_legal_deadline,
    street_loop_ends,
    supervising_level,
    supervision_due,
    whistle_desks,
    whistle_escalation_target,
    working_moment_before,
    working_seconds,
)
from shared.catalogue import Level, load_catalogue
from shared.config import REPO_ROOT
from shared.workdays import SHANGHAI, WorkdayCalendar

CATALOGUE = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
CALENDAR = WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml")
XINHE = "320113003021"


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def clock(**changes) -> ItemClock:
    start, promised = sh(2026, 11, 30, 9), sh(2026, 12, 14, 17, 30)
    values = dict(status="accepted", promised_deadline=promised, legal_deadline=sh(2026, 12, 21, 17, 30),
                  promised_budget_seconds=working_seconds(CALENDAR, start, promised), paused=False)
    return ItemClock(**{**values, **changes})


# ── Working time ────────────────────────────────────────────────────────────────────────────────────


def test_working_seconds_count_working_days_only():
    assert working_seconds(CALENDAR, sh(2026, 12, 4, 12), sh(2026, 12, 7, 12)) == 24 * 3600  # Fri noon to Mon noon
    assert working_seconds(CALENDAR, sh(2026, 10, 1, 0), sh(2026, 10, 8, 0)) == 0             # 国庆 holidays
    assert working_seconds(CALENDAR, sh(2026, 12, 7), sh(2026, 12, 4)) == 0


def test_the_moment_before_a_deadline_skips_weekends_and_agrees_with_used_share():
    deadline = sh(2026, 12, 7, 6)                        # Monday 06:00: six working hours into the day
    assert working_moment_before(CALENDAR, deadline, 6 * 3600) == sh(2026, 12, 7, 0)
    assert working_moment_before(CALENDAR, deadline, 7 * 3600) == sh(2026, 12, 4, 23)   # back over the weekend
    start = sh(2026, 11, 30, 9)
    warning = supervision_due(clock(), calendar=CALENDAR, warning_share=0.8)[DeadlineKind.DEADLINE_WARNING]
    assert CALENDAR.used_share(start, sh(2026, 12, 14, 17, 30), warning) == pytest.approx(0.8)
    assert warning == sh(2026, 12, 10, 15, 48)


# ── 督办 ───────────────────────────────────────────────────────────────────────────────────────────


def test_every_running_item_has_its_three_stages():
    due = supervision_due(clock(), calendar=CALENDAR, warning_share=0.8)
    assert due == {DeadlineKind.DEADLINE_WARNING: sh(2026, 12, 10, 15, 48),
                   DeadlineKind.PROMISED_BREACH: sh(2026, 12, 14, 17, 30),
                   DeadlineKind.LEGAL_BREACH: sh(2026, 12, 21, 17, 30)}
    earlier = supervision_due(clock(), calendar=CALENDAR, warning_share=0.5)[DeadlineKind.DEADLINE_WARNING]
    assert earlier < due[DeadlineKind.DEADLINE_WARNING]


@pytest.mark.parametrize("changes", [{"paused": True}, {"status": "waiting"}, {"status": "resolved"},
                                     {"status": "terminated"}, {"promised_deadline": None}])
def test_no_stage_runs_while_the_clock_cannot(changes):
    assert supervision_due(clock(**changes), calendar=CALENDAR, warning_share=0.8) == {}


def test_without_a_known_start_there_is_no_warning_but_the_breaches_stand():
    due = supervision_due(clock(promised_budget_seconds=None), calendar=CALENDAR, warning_share=0.8)
    assert set(due) == {DeadlineKind.PROMISED_BREACH, DeadlineKind.LEGAL_BREACH}


def test_a_paused_clock_moves_the_legal_deadline_as_far_as_the_promised_one():
    legal = sh(2026, 12, 21, 17, 30)
    assert shift_legal_deadline(CALENDAR, legal, sh(2026, 12, 14, 17, 30), sh(2026, 12, 18, 17, 30)) == (
        sh(2026, 12, 25, 17, 30))
    assert shift_legal_deadline(CALENDAR, legal, sh(2026, 12, 14, 17, 30), sh(2026, 12, 14, 17, 30)) == legal


@pytest.mark.parametrize(("level", "stage", "supervisor"), [
    (Level.COMMUNITY, DeadlineKind.PROMISED_BREACH, Level.STREET),
    (Level.COMMUNITY, DeadlineKind.LEGAL_BREACH, Level.DISTRICT),
    (Level.STREET, DeadlineKind.PROMISED_BREACH, Level.DISTRICT),
    (Level.STREET, DeadlineKind.LEGAL_BREACH, Level.DISTRICT),
    (Level.DISTRICT, DeadlineKind.PROMISED_BREACH, Level.DISTRICT),
])
def test_the_supervising_level(level, stage, supervisor):
    assert supervising_level(level, stage) is supervisor


# ── The ladder ──────────────────────────────────────────────────────────────────────────────────────


def test_only_community_matters_with_a_loop_get_the_time_box():
    complaint = CATALOGUE.matter("property-management-complaint")
    assert community_loop_applies(complaint, Level.COMMUNITY)
    assert not community_loop_applies(complaint, Level.STREET)
    assert not community_loop_applies(CATALOGUE.matter("employment-registration"), Level.COMMUNITY)
    assert community_loop_ends(CALENDAR, complaint, sh(2026, 11, 30, 9)) == sh(2026, 12, 3, 17, 30)
    assert street_loop_ends(CALENDAR, sh(2026, 12, 3, 17, 31), 3) == sh(2026, 12, 8, 17, 30)
    assert street_loop_ends(CALENDAR, sh(2026, 9, 30, 10), 3) == sh(2026, 10, 10, 17, 30)  # over 国庆, 调休 Saturday


@pytest.mark.parametrize(("status", "at", "left_by", "outcome"), [
    ("resolved", sh(2026, 12, 3, 17, 0), None, LoopOutcome.RESOLVED_IN_LOOP),
    ("resolved", sh(2026, 12, 3, 17, 31), None, LoopOutcome.RESOLVED_LATE),
    ("rejected", sh(2026, 12, 1, 9), None, LoopOutcome.CLOSED_UNRESOLVED),
    ("queued", sh(2026, 12, 3, 17, 31), "escalated", LoopOutcome.ESCALATED),
    ("queued", sh(2026, 12, 1, 9), "returned", LoopOutcome.RETURNED),
    ("accepted", sh(2026, 12, 1, 9), None, None),
])
def test_how_a_community_loop_ends(status, at, left_by, outcome):
    assert loop_outcome(status=status, occurred_at=at, loop_ends_at=sh(2026, 12, 3, 17, 30), left_by=left_by) == outcome


def test_an_item_goes_up_only_where_its_department_has_a_desk():
    complaint, permit = CATALOGUE.matter("property-management-complaint"), CATALOGUE.matter("residence-permit")
    assert CATALOGUE.desk_level_above(complaint, Level.COMMUNITY) is Level.STREET
    assert CATALOGUE.desk_level_above(permit, Level.STREET) is Level.DISTRICT
    assert CATALOGUE.desk_level_above(permit, Level.DISTRICT) is None


# ── 吹哨 ───────────────────────────────────────────────────────────────────────────────────────────


def test_the_departments_named_are_called_at_the_level_reached():
    complaint = CATALOGUE.matter("property-management-complaint")
    street = whistle_desks(CATALOGUE, complaint, XINHE, Level.STREET)
    assert [(d.department_code, d.level, d.unit_code) for d in street] == [
        ("housing", Level.STREET, "320113003000"), ("civil", Level.STREET, "320113003000")]
    district = whistle_desks(CATALOGUE, complaint, XINHE, Level.DISTRICT)
    assert {d.unit_code for d in district} == {"320113000000"}
    assert whistle_desks(CATALOGUE, complaint, XINHE, Level.COMMUNITY) == []
    assert whistle_desks(CATALOGUE, CATALOGUE.matter("residence-permit"), XINHE, Level.STREET) == []


def test_a_department_without_a_desk_at_the_level_is_called_at_its_next_desk_up():
    from dataclasses import replace
    from types import MappingProxyType

    from shared.catalogue import Department

    district_only = replace(CATALOGUE, departments=MappingProxyType({
        **CATALOGUE.departments, "housing": Department(code="housing", name="住建", levels=(Level.DISTRICT,))}))
    complaint = CATALOGUE.matter("property-management-complaint")
    desks = whistle_desks(district_only, complaint, XINHE, Level.STREET)
    assert [(d.department_code, d.level, d.unit_code) for d in desks] == [
        ("housing", Level.DISTRICT, "320113000000"), ("civil", Level.STREET, "320113003000")]


def test_an_unacknowledged_call_goes_to_the_level_above_or_the_districts_own_supervision():
    assert whistle_escalation_target(CATALOGUE, XINHE, Level.STREET) == (Level.DISTRICT, "320113000000")
    assert whistle_escalation_target(CATALOGUE, XINHE, Level.DISTRICT) == (Level.DISTRICT, "320113000000")


# ── 办不成事 ────────────────────────────────────────────────────────────────────────────────────────


def test_the_report_state_table():
    assert next_report_status("open", ReportAction.ASSIGN) is ReportStatus.ASSIGNED
    assert next_report_status("open", ReportAction.CLOSE) is ReportStatus.CLOSED
    assert next_report_status("closed", ReportAction.RETURN_VISIT) is ReportStatus.CONFIRMED
    assert next_report_status("closed", ReportAction.RETURN_VISIT, agrees_solved=False,
                              has_specialist=True) is ReportStatus.ASSIGNED
    assert next_report_status("closed", ReportAction.RETURN_VISIT, agrees_solved=False) is ReportStatus.OPEN
    for status, action in (("confirmed", ReportAction.CLASSIFY), ("closed", ReportAction.CLOSE),
                           ("open", ReportAction.RETURN_VISIT), ("open", ReportAction.RECORD_CONTACT)):
        with pytest.raises(ReportRefused) as refused:
            next_report_status(status, action)
        assert (refused.value.reason, refused.value.details["current_status"]) == ("transition_not_allowed", status)


def facts(**changes) -> ReportFacts:
    return ReportFacts(**{**dict(status="assigned", report_class="complex", specialist="sp", owner="staff",
                                 opinion_received=True), **changes})


@pytest.mark.parametrize(("report", "actor", "outcome", "deferral", "reason"), [
    (facts(report_class=None), "sp", "solved", False, "not_classified"),
    (facts(), "staff", "solved", False, "not_report_specialist"),
    (facts(opinion_received=False), "sp", "solved", False, "opinion_missing"),
    (facts(), "sp", "deferral_granted", False, "deferral_mismatch"),
    (facts(), "sp", "solved", True, "deferral_mismatch"),
    (facts(report_class="simple"), "staff", "solved", False, "not_report_specialist"),  # a specialist has it
])
def test_who_may_close_and_when(report, actor, outcome, deferral, reason):
    with pytest.raises(ReportRefused) as refused:
        check_may_close(report, actor, outcome, has_deferral=deferral)
    assert refused.value.reason == reason


def test_a_simple_report_is_closed_on_the_spot_by_the_first_person_asked():
    check_may_close(facts(report_class="simple", specialist=None, status="open"), "staff", "solved",
                    has_deferral=False)
    check_may_close(facts(), "sp", "deferral_granted", has_deferral=True)


def test_what_each_class_owes():
    now = sh(2026, 11, 30, 9)
    assert class_limits(CALENDAR, "simple", now, opinion_days=5, time_limit_days=None) == (None, None)
    assert class_limits(CALENDAR, "complex", now, opinion_days=5, time_limit_days=None) == (
        sh(2026, 12, 7, 17, 30).astimezone(UTC), None)
    assert class_limits(CALENDAR, "special", now, opinion_days=5, time_limit_days=10) == (
        None, sh(2026, 12, 14, 17, 30).astimezone(UTC))
    with pytest.raises(ReportRefused) as refused:
        class_limits(CALENDAR, "special", now, opinion_days=5, time_limit_days=None)
    assert refused.value.reason == "time_limit_missing"


def test_free_text_with_an_id_or_phone_number_is_spotted():
    assert contains_personal_data("请回电13912345678")
    assert contains_personal_data("身份证 11010519491231002X")
    assert not contains_personal_data("居住证跑了三次没办成，第3次窗口说缺房东身份证复印件")


def test_report_numbers_and_reminder_days():
    assert report_number(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "ab12cd34-0000") == "BCS20261201-AB12CD34"
    assert deferral_reminder_day(CALENDAR, date(2026, 12, 7), date(2026, 11, 30)) == date(2026, 12, 4)  # Friday
    assert deferral_reminder_day(CALENDAR, date(2026, 12, 1), date(2026, 12, 1)) == date(2026, 12, 1)
