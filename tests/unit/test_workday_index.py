"""The cumulative working-day index (shared/workdays.py ``_WorkdayIndex``) gives exactly what walking the
calendar day by day gave: the walk is written out here as it was before the index, and hypothesis compares
the two on random ranges of up to six years, in covered years, across holidays and 调休 Saturdays, over single
days overridden either way, and into years whose arrangement is not known (derived from the law: provisional).
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.workdays import SHANGHAI, CalendarCoverageWarning, WorkdayCalendar

ONE_DAY = timedelta(days=1)
UNCOVERED_YEAR = max(chinese_calendar.holidays).year + 1
FIRST, LAST = date(2018, 1, 1), date(UNCOVERED_YEAR + 2, 12, 31)

# 2025's arrangement written out in full for the file-covered case, plus single days overridden both ways:
# a Saturday worked (调休) and a Wednesday off, in a library year and in an uncovered one.
OVERRIDES = {
    date(2025, 1, 1): False, date(2025, 1, 28): False, date(2025, 1, 29): False, date(2025, 1, 30): False,
    date(2025, 1, 31): False, date(2025, 2, 3): False, date(2025, 2, 4): False, date(2025, 1, 26): True,
    date(2025, 2, 8): True, date(2025, 10, 1): False, date(2025, 10, 2): False, date(2025, 10, 3): False,
    date(2025, 9, 28): True,
    date(2022, 6, 18): True, date(2023, 3, 15): False,
    date(UNCOVERED_YEAR, 3, 13): True, date(UNCOVERED_YEAR, 3, 17): False,
}


def calendars() -> list[WorkdayCalendar]:
    return [WorkdayCalendar(), WorkdayCalendar(OVERRIDES, covered_years={2025}),
            WorkdayCalendar(OVERRIDES, derive_from_law=False)]


CALENDARS = calendars()


# ── the day-by-day walk, as the calendar counted before the index ─────────────────────────────────────────

def walk_workdays_between(calendar: WorkdayCalendar, start: date, end: date) -> tuple[int, set[int]]:
    earlier, later, sign = (start, end, 1) if start <= end else (end, start, -1)
    count, assumed, day = 0, set(), earlier + ONE_DAY
    while day <= later:
        workday, guessed = calendar._classify(day)
        count += workday
        if guessed:
            assumed.add(day.year)
        day += ONE_DAY
    return sign * count, assumed


def walk_add_workdays(calendar: WorkdayCalendar, start: date, days: int) -> tuple[date, set[int]]:
    assumed = set()

    def workday(day: date) -> bool:
        result, guessed = calendar._classify(day)
        if guessed:
            assumed.add(day.year)
        return result
    day = start
    if days == 0:
        while not workday(day):
            day += ONE_DAY
        return day, assumed
    remaining = days
    while remaining:
        day += ONE_DAY
        if workday(day):
            remaining -= 1
    return day, assumed


def walk_working_seconds(calendar: WorkdayCalendar, begin: datetime, end: datetime) -> tuple[float, set[int]]:
    seconds, assumed, day = 0.0, set(), begin.date()
    while day <= end.date():
        workday, guessed = calendar._classify(day)
        if guessed:
            assumed.add(day.year)
        if workday:
            day_start = datetime.combine(day, time(0), tzinfo=SHANGHAI)
            overlap = min(end, day_start + ONE_DAY) - max(begin, day_start)
            seconds += max(overlap.total_seconds(), 0.0)
        day += ONE_DAY
    return seconds, assumed


def reported_years(call):
    """What a public method returns, and the years its CalendarCoverageWarning named (if it warned)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalendarCoverageWarning)
        result = call()
    years = set()
    for warning in caught:
        if issubclass(warning.category, CalendarCoverageWarning):
            listed = str(warning.message).split(" for ", 1)[1].split(":", 1)[0]
            years |= {int(year) for year in listed.split(", ")}
    return result, years


# ── strategies ───────────────────────────────────────────────────────────────────────────────────────────

days = st.dates(min_value=FIRST, max_value=LAST)
calendar_choice = st.sampled_from(range(len(CALENDARS)))


@st.composite
def date_ranges(draw):
    start = draw(days)
    span = draw(st.one_of(st.integers(-40, 40), st.integers(-6 * 366, 6 * 366)))
    end = min(max(start + timedelta(days=span), FIRST), LAST)
    return start, end


@st.composite
def moments(draw, near: datetime | None = None):
    day = draw(days)
    if near is not None:
        day = min(max(near.date() + timedelta(days=draw(st.integers(-3, 6 * 366))), FIRST), LAST)
    seconds = draw(st.one_of(st.sampled_from([0, 1, 8 * 3600 + 1800, 17 * 3600 + 1800, 86399]),
                             st.integers(0, 86399)))
    micro = draw(st.sampled_from([0, 0, 123456]))
    return datetime.combine(day, time(0), tzinfo=SHANGHAI) + timedelta(seconds=seconds, microseconds=micro)


# ── the comparisons ──────────────────────────────────────────────────────────────────────────────────────

@settings(max_examples=200, deadline=None)
@given(calendar_choice, date_ranges())
def test_workdays_between_counts_what_the_walk_counted(which, span):
    calendar = CALENDARS[which]
    start, end = span
    (count, years) = reported_years(lambda: calendar.workdays_between(start, end))
    assert (count, years) == walk_workdays_between(calendar, start, end)


@settings(max_examples=200, deadline=None)
@given(calendar_choice, days, st.one_of(st.integers(0, 30), st.integers(0, 1200)))
def test_add_workdays_lands_where_the_walk_landed(which, start, count):
    calendar = CALENDARS[which]
    result, years = reported_years(lambda: calendar.add_workdays(start, count))
    expected_day, expected_years = walk_add_workdays(calendar, start, count)
    assert (result.date, set(result.assumed_years), years) == (expected_day, expected_years, expected_years)


@settings(max_examples=200, deadline=None)
@given(calendar_choice, st.data())
def test_working_seconds_and_used_share_equal_the_walk(which, data):
    calendar = CALENDARS[which]
    begin = data.draw(moments())
    end = data.draw(moments(near=begin))
    seconds, years = reported_years(lambda: calendar.working_seconds(begin, end))
    expected, expected_years = walk_working_seconds(calendar, begin, end) if end > begin else (0.0, set())
    assert seconds == pytest.approx(expected, rel=1e-12, abs=1e-6)
    assert years == expected_years

    now = data.draw(moments(near=begin))
    budget, budget_years = walk_working_seconds(calendar, begin, end)
    if end > begin and budget > 0:
        share, share_years = reported_years(lambda: calendar.used_share(begin, end, now))
        used, used_years = walk_working_seconds(calendar, begin, now) if now > begin else (0.0, set())
        assert share == pytest.approx(used / budget, rel=1e-12, abs=1e-12)
        assert share_years == budget_years | used_years


@given(calendar_choice, days, st.integers(0, 20))
@settings(max_examples=200, deadline=None)
def test_deadline_at_matches_the_walk(which, day, count):
    calendar = CALENDARS[which]
    start = datetime.combine(day, time(18, 0), tzinfo=SHANGHAI)  # after closing: the 0-day rule moves it
    (deadline, provisional), _ = reported_years(lambda: calendar.deadline_at(start, count))
    due, assumed = walk_add_workdays(calendar, day, count)
    if datetime.combine(due, time(17, 30), tzinfo=SHANGHAI) <= start:
        due, more = walk_add_workdays(calendar, day, 1)
        assumed |= more
    assert (deadline, provisional) == (datetime.combine(due, time(17, 30), tzinfo=SHANGHAI), bool(assumed))


def test_a_reloaded_arrangement_is_counted_afresh(tmp_path):
    """The index belongs to one arrangement: after the override file changes, counts follow the new file."""
    path = tmp_path / "calendar-overrides.yaml"
    path.write_text("overrides: []\n", encoding="utf-8")
    calendar = WorkdayCalendar.from_file(path)
    week = (date(2024, 4, 7), date(2024, 4, 14))   # a Sunday to the next: five working days
    assert calendar.workdays_between(*week) == 5
    path.write_text("overrides:\n  - {date: 2024-04-10, workday: false, note: local decision}\n"
                    "  - {date: 2024-04-13, workday: true, note: local decision}\n", encoding="utf-8")
    calendar.reload_if_changed(force=True)
    assert calendar.workdays_between(*week) == walk_workdays_between(calendar, *week)[0] == 5
    assert not calendar.is_workday(date(2024, 4, 10)) and calendar.is_workday(date(2024, 4, 13))
    assert calendar.add_workdays(date(2024, 4, 9), 1).date == date(2024, 4, 11)


def test_the_cost_does_not_grow_with_the_span():
    """An item five years old costs what one of last week costs: the calendar is asked per year, not per day."""
    calendar = WorkdayCalendar()
    asked = []
    classify = calendar._classify
    calendar._index._classify = lambda day: (asked.append(day), classify(day))[1]
    now = datetime(2026, 6, 1, 10, tzinfo=SHANGHAI)
    calendar.used_share(datetime(2021, 3, 1, 9, tzinfo=SHANGHAI), datetime(2021, 3, 15, 17, 30, tzinfo=SHANGHAI),
                        now)
    built = len(asked)
    assert built == sum(366 if year % 4 == 0 else 365 for year in range(2021, 2027))  # each year once
    for start_year in (2021, 2023, 2026):
        calendar.used_share(datetime(start_year, 3, 1, 9, tzinfo=SHANGHAI),
                            datetime(start_year, 3, 15, 17, 30, tzinfo=SHANGHAI), now)
        calendar.workdays_between(date(start_year, 1, 5), date(2026, 5, 30))
    assert len(asked) == built                                          # and never day by day again
