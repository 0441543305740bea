import re
import warnings
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from shared import workdays as workdays_module
from shared.workdays import (
    SHANGHAI,
    CalendarCoverageWarning,
    CalendarFileError,
    WorkdayCalendar,
    WorkdayResult,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_OVERRIDES = REPO_ROOT / "config" / "calendar-overrides.yaml"

# The first year the installed chinesecalendar has no data for (2027 with the pinned 1.11.0). Derived
# rather than written down so that upgrading the package does not silently turn these tests into tests
# of a covered year.
UNCOVERED_YEAR = max(chinese_calendar.holidays).year + 1


@pytest.fixture
def calendar():
    return WorkdayCalendar()


@pytest.fixture
def no_coverage_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarCoverageWarning)
        yield


def days_in(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def first_weekday_of(year: int, month: int, weekday: int) -> date:
    day = date(year, month, 1)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def at(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def write_overrides(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar-overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the 2026 calendar as published (values checked against chinesecalendar 1.11.0) -----------------


def test_national_day_and_mid_autumn_2026(calendar, no_coverage_warnings):
    for day in days_in(date(2026, 10, 1), date(2026, 10, 7)):
        assert not calendar.is_workday(day), day
    for day in days_in(date(2026, 9, 25), date(2026, 9, 27)):  # Mid-Autumn, Friday to Sunday
        assert not calendar.is_workday(day), day
    assert calendar.is_workday(date(2026, 9, 20))  # Sunday made a workday
    assert calendar.is_workday(date(2026, 10, 10))  # Saturday made a workday
    assert calendar.is_workday(date(2026, 10, 8))
    assert not calendar.is_workday(date(2026, 10, 11))  # an ordinary Sunday


def test_spring_festival_2026(calendar, no_coverage_warnings):
    for day in days_in(date(2026, 2, 15), date(2026, 2, 23)):
        assert not calendar.is_workday(day), day
    assert calendar.is_workday(date(2026, 2, 14))  # Saturday made a workday
    assert calendar.is_workday(date(2026, 2, 28))  # Saturday made a workday
    assert calendar.is_workday(date(2026, 2, 24))


def test_plain_week(calendar, no_coverage_warnings):
    week = days_in(date(2026, 11, 23), date(2026, 11, 29))
    assert [calendar.is_workday(day) for day in week] == [True] * 5 + [False] * 2


def test_covers(calendar):
    assert calendar.covers(2026)
    assert calendar.covers(2004)
    assert not calendar.covers(UNCOVERED_YEAR)
    assert not WorkdayCalendar(library=None).covers(2026)


# --- counting --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # straight over the National Day week
        (date(2026, 9, 30), 2, date(2026, 10, 9)),
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # the make-up Saturday counts
        (date(2026, 9, 30), 4, date(2026, 10, 12)),
        (date(2026, 9, 24), 1, date(2026, 9, 28)),  # over Mid-Autumn and a weekend
        (date(2026, 10, 3), 1, date(2026, 10, 8)),  # starting on a holiday
        (date(2026, 11, 27), 1, date(2026, 11, 30)),  # Friday to Monday
        (date(2026, 11, 23), 15, date(2026, 12, 14)),
    ],
)
def test_add_workdays(calendar, no_coverage_warnings, start, days, expected):
    assert calendar.add_workdays(start, days) == WorkdayResult(expected, frozenset())


def test_add_zero_workdays_is_today_or_the_next_workday(calendar):
    assert calendar.add_workdays(date(2026, 11, 25), 0).date == date(2026, 11, 25)
    assert calendar.add_workdays(date(2026, 10, 3), 0).date == date(2026, 10, 8)
    assert calendar.add_workdays(date(2026, 10, 10), 0).date == date(2026, 10, 10)  # make-up Saturday


def test_add_workdays_refuses_negative_or_non_integer_days(calendar):
    with pytest.raises(ValueError):
        calendar.add_workdays(date(2026, 11, 25), -1)
    with pytest.raises(TypeError):
        calendar.add_workdays(date(2026, 11, 25), 1.5)


def test_workdays_between(calendar, no_coverage_warnings):
    assert calendar.workdays_between(date(2026, 9, 30), date(2026, 10, 12)) == 4  # 8, 9, 10 (Sat), 12
    assert calendar.workdays_between(date(2026, 11, 23), date(2026, 11, 30)) == 5
    assert calendar.workdays_between(date(2026, 10, 1), date(2026, 10, 7)) == 0
    assert calendar.workdays_between(date(2026, 11, 25), date(2026, 11, 25)) == 0
    assert calendar.workdays_between(date(2026, 10, 12), date(2026, 9, 30)) == -4


def test_workdays_between_undoes_add_workdays(calendar):
    for start in days_in(date(2026, 9, 15), date(2026, 10, 15)):
        for days in range(1, 12):
            due = calendar.add_workdays(start, days).date
            assert calendar.workdays_between(start, due) == days, (start, days)
            assert calendar.is_workday(due)


def test_datetimes_are_refused_where_a_date_is_expected(calendar):
    with pytest.raises(TypeError):
        calendar.is_workday(at(2026, 10, 1))
    with pytest.raises(TypeError):
        WorkdayCalendar({at(2026, 10, 9): False})


# --- years nobody has published data for -----------------------------------------------------------


def test_uncovered_year_is_provisional_and_warns(calendar):
    start = first_weekday_of(UNCOVERED_YEAR, 3, 0)  # a Monday
    with pytest.warns(CalendarCoverageWarning, match=str(UNCOVERED_YEAR)):
        result = calendar.add_workdays(start, 5)
    assert result.date == start + timedelta(days=7)  # Monday-Friday rule
    assert result.provisional
    assert result.assumed_years == frozenset({UNCOVERED_YEAR})
    assert calendar.assumed_years_seen == frozenset({UNCOVERED_YEAR})


def test_uncovered_year_is_workday_warns(calendar):
    monday = first_weekday_of(UNCOVERED_YEAR, 1, 0)
    with pytest.warns(CalendarCoverageWarning, match=str(UNCOVERED_YEAR)):
        assert calendar.is_workday(monday)
    with pytest.warns(CalendarCoverageWarning):
        assert not calendar.is_workday(monday - timedelta(days=1))


def test_crossing_into_an_uncovered_year_is_provisional(calendar):
    with pytest.warns(CalendarCoverageWarning):
        result = calendar.add_workdays(date(UNCOVERED_YEAR - 1, 12, 21), 15)
    assert result.assumed_years == frozenset({UNCOVERED_YEAR})
    with pytest.warns(CalendarCoverageWarning):
        calendar.workdays_between(date(UNCOVERED_YEAR - 1, 12, 21), date(UNCOVERED_YEAR, 1, 15))


def test_covered_result_is_not_provisional(calendar, no_coverage_warnings):
    result = calendar.add_workdays(date(2026, 3, 2), 5)
    assert not result.provisional
    assert calendar.assumed_years_seen == frozenset()


def test_an_overridden_day_in_an_uncovered_year_is_known(no_coverage_warnings):
    monday = first_weekday_of(UNCOVERED_YEAR, 1, 0)
    calendar = WorkdayCalendar({monday: False})
    assert not calendar.is_workday(monday)
    assert not calendar.covers(UNCOVERED_YEAR)


# --- the override file -----------------------------------------------------------------------------


def test_override_file_makes_a_year_covered(tmp_path, no_coverage_warnings):
    # Test data, not an official arrangement.
    first_saturday = first_weekday_of(UNCOVERED_YEAR, 2, 5)
    holiday_monday = first_saturday + timedelta(days=2)
    path = write_overrides(
        tmp_path,
        f"years:\n  {UNCOVERED_YEAR}:\n"
        f"    holidays: [{UNCOVERED_YEAR}-01-01, {holiday_monday}]\n"
        f"    workdays: [{first_saturday}]\n",
    )
    calendar = WorkdayCalendar.from_file(path)
    assert calendar.covers(UNCOVERED_YEAR)
    assert not calendar.is_workday(date(UNCOVERED_YEAR, 1, 1))
    assert not calendar.is_workday(holiday_monday)
    assert calendar.is_workday(first_saturday)
    assert calendar.is_workday(holiday_monday + timedelta(days=1))  # an unlisted weekday
    assert not calendar.is_workday(first_saturday + timedelta(days=7))  # an unlisted Saturday
    result = calendar.add_workdays(first_saturday - timedelta(days=1), 2)
    assert result == WorkdayResult(holiday_monday + timedelta(days=1), frozenset())
    assert calendar.covers(2026) and not calendar.is_workday(date(2026, 10, 1))  # library still used


def test_a_year_in_the_file_replaces_the_library_for_that_year(tmp_path):
    calendar = WorkdayCalendar.from_file(
        write_overrides(tmp_path, "years:\n  2026:\n    holidays: [2026-01-01]\n")
    )
    assert calendar.is_workday(date(2026, 10, 1))
    assert not calendar.is_workday(date(2026, 1, 1))
    assert not calendar.is_workday(date(2026, 10, 10))  # library's make-up Saturday is not in the file


def test_single_day_override(tmp_path, no_coverage_warnings):
    path = write_overrides(
        tmp_path, 'overrides:\n  - {date: 2026-10-09, workday: false, note: "test: extra day off"}\n'
    )
    calendar = WorkdayCalendar.from_file(path)
    assert not calendar.is_workday(date(2026, 10, 9))
    assert calendar.is_workday(date(2026, 10, 8))
    assert calendar.add_workdays(date(2026, 9, 30), 2).date == date(2026, 10, 10)


def test_shipped_override_file_loads(no_coverage_warnings):
    calendar = WorkdayCalendar.from_file(SHIPPED_OVERRIDES)
    assert calendar.covers(2026)
    assert calendar.add_workdays(date(2026, 9, 30), 1).date == date(2026, 10, 8)


def test_comment_only_file_is_empty(tmp_path):
    calendar = WorkdayCalendar.from_file(write_overrides(tmp_path, "# nothing yet\n"))
    assert not calendar.is_workday(date(2026, 10, 1))


@pytest.mark.parametrize(
    ("text", "named_entry", "problem"),
    [
        ("years:\n  2027:\n    holidays: [2027-02-30]\n", "years.2027.holidays[0]", "not a real date"),
        ("years:\n  2027:\n    holidays: [2027/01/01]\n", "years.2027.holidays[0]", "YYYY-MM-DD"),
        ("years:\n  2027:\n    holidays: [20270101]\n", "years.2027.holidays[0]", "YYYY-MM-DD"),
        (
            "years:\n  2027:\n    holidays: [2027-01-01, 2027-02-06]\n    workdays: [2027-02-06]\n",
            "years.2027.workdays[0]",
            "years.2027.holidays[1]",
        ),
        ("years:\n  2027:\n    holidays: [2026-12-31]\n", "years.2027.holidays[0]", "not in 2027"),
        (
            "years:\n  2027:\n    holidays: [2027-01-01]\n    workdays: [2027-02-08]\n",
            "years.2027.workdays[0]",
            "Monday",
        ),
        ("years:\n  2027:\n    workdays: [2027-02-06]\n", "years.2027", "no holidays"),
        ("years:\n  2027: {}\n", "years.2027", "no holidays"),
        ("years:\n  2027:\n    holiday: [2027-01-01]\n", "years.2027", "unknown key(s) holiday"),
        ("years:\n  twenty:\n    holidays: [2027-01-01]\n", "years.twenty", "four digits"),
        (
            "years:\n  2027:\n    holidays: [2027-01-01]\n"
            "overrides:\n  - {date: 2027-01-01, workday: true}\n",
            "overrides[0]",
            "years.2027.holidays[0]",
        ),
        (
            "overrides:\n  - {date: 2026-10-09, workday: false}\n  - {date: 2026-10-09, workday: true}\n",
            "overrides[1]",
            "overrides[0]",
        ),
        ("overrides:\n  - {date: 2026-10-32, workday: false}\n", "overrides[0].date", "not a real date"),
        ("overrides:\n  - {date: 2026-10-09}\n", "overrides[0]", "needs both"),
        ("overrides:\n  - {date: 2026-10-09, workday: maybe}\n", "overrides[0].workday", "true or false"),
        ("overrides:\n  - {date: 2026-10-09, workday: true, why: x}\n", "overrides[0]", "unknown key"),
        ("overrides: {date: 2026-10-09}\n", "overrides", "list"),
        ("overide:\n  - {date: 2026-10-09, workday: true}\n", "top level", "unknown key(s) overide"),
        ("- 2027-01-01\n", "top level", "mapping"),
        ("years: [\n", "", "not valid YAML"),
        (
            "years:\n  2027:\n    holidays: [2027-01-01]\n  2027:\n    holidays: [2027-02-11]\n",
            "",
            "duplicate key 2027",
        ),
    ],
)
def test_malformed_override_file(tmp_path, text, named_entry, problem):
    path = write_overrides(tmp_path, text)
    with pytest.raises(CalendarFileError) as caught:
        WorkdayCalendar.from_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {named_entry}")
    assert problem in message


def test_missing_override_file(tmp_path):
    with pytest.raises(CalendarFileError, match="cannot read"):
        WorkdayCalendar.from_file(tmp_path / "absent.yaml")


# --- deadlines -------------------------------------------------------------------------------------


def test_deadline_at_end_of_working_day_in_shanghai(calendar, no_coverage_warnings):
    deadline, provisional = calendar.deadline_at(at(2026, 9, 30, 10), 3)
    assert deadline == at(2026, 10, 10, 17, 30)
    assert deadline.tzinfo is SHANGHAI
    assert provisional is False


def test_deadline_counts_from_the_shanghai_date_of_the_start(calendar):
    # Thursday 20:00 UTC is already Friday 04:00 in Nanjing: one working day later is Monday.
    deadline, _ = calendar.deadline_at(datetime(2026, 11, 26, 20, 0, tzinfo=UTC), 1)
    assert deadline == at(2026, 11, 30, 17, 30)


def test_deadline_with_other_closing_time(calendar):
    deadline, _ = calendar.deadline_at(at(2026, 11, 23, 9), 2, end_of_day=time(17, 0))
    assert deadline == at(2026, 11, 25, 17, 0)


def test_same_day_deadline_never_before_start(calendar):
    assert calendar.deadline_at(at(2026, 11, 27, 10), 0)[0] == at(2026, 11, 27, 17, 30)
    assert calendar.deadline_at(at(2026, 11, 27, 18), 0)[0] == at(2026, 11, 30, 17, 30)
    assert calendar.deadline_at(at(2026, 11, 28, 10), 0)[0] == at(2026, 11, 30, 17, 30)  # Saturday


def test_deadline_in_uncovered_year_is_provisional(calendar):
    start = datetime.combine(first_weekday_of(UNCOVERED_YEAR, 3, 0), time(9), tzinfo=SHANGHAI)
    with pytest.warns(CalendarCoverageWarning):
        deadline, provisional = calendar.deadline_at(start, 5)
    assert provisional is True
    assert deadline == start.replace(hour=17, minute=30) + timedelta(days=7)


def test_deadline_refuses_naive_datetimes(calendar):
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.deadline_at(datetime(2026, 11, 23, 9), 1)
    with pytest.raises(ValueError):
        calendar.deadline_at(at(2026, 11, 23, 9), 1, end_of_day=time(17, 30, tzinfo=UTC))


# --- share of working time used --------------------------------------------------------------------
# Start Monday 2026-11-23 09:00, five working days, deadline Monday 2026-11-30 17:30.
# Working time: 15 h on the 23rd, 4 x 24 h (24th-27th), the weekend not at all, 17.5 h on the 30th = 128.5 h.

START = at(2026, 11, 23, 9)
DEADLINE = at(2026, 11, 30, 17, 30)


def test_five_day_deadline_used_in_share_tests(calendar):
    assert calendar.deadline_at(START, 5) == (DEADLINE, False)


def test_used_share_at_start_and_before(calendar):
    assert calendar.used_share(START, DEADLINE, START) == 0.0
    assert calendar.used_share(START, DEADLINE, START - timedelta(days=3)) == 0.0


def test_used_share_halfway(calendar):
    halfway = at(2026, 11, 26, 1, 15)  # 15 h + 24 h + 24 h + 1.25 h = 64.25 h
    assert calendar.used_share(START, DEADLINE, halfway) == pytest.approx(0.5)


def test_used_share_at_deadline_and_beyond(calendar):
    assert calendar.used_share(START, DEADLINE, DEADLINE) == pytest.approx(1.0)
    one_working_day_late = at(2026, 12, 1, 17, 30)
    assert calendar.used_share(START, DEADLINE, one_working_day_late) == pytest.approx((128.5 + 24) / 128.5)


def test_used_share_does_not_grow_over_a_weekend(calendar):
    friday_midnight = at(2026, 11, 28)
    expected = (15 + 4 * 24) / 128.5
    assert calendar.used_share(START, DEADLINE, friday_midnight) == pytest.approx(expected)
    assert calendar.used_share(START, DEADLINE, at(2026, 11, 29, 12)) == pytest.approx(expected)
    assert calendar.used_share(START, DEADLINE, at(2026, 11, 30)) == pytest.approx(expected)


def test_used_share_does_not_grow_over_national_day(calendar):
    start = at(2026, 9, 30, 12)
    deadline, _ = calendar.deadline_at(start, 2)  # Friday 2026-10-09 17:30
    on_first_holiday = calendar.used_share(start, deadline, at(2026, 10, 1, 12))
    on_last_holiday = calendar.used_share(start, deadline, at(2026, 10, 7, 23))
    assert on_first_holiday == on_last_holiday == pytest.approx(12 / (12 + 24 + 17.5))


def test_used_share_accepts_any_time_zone(calendar):
    in_utc = at(2026, 11, 26, 1, 15).astimezone(UTC)
    assert calendar.used_share(START, DEADLINE, in_utc) == pytest.approx(0.5)


def test_used_share_refuses_bad_intervals(calendar):
    with pytest.raises(ValueError, match="after start"):
        calendar.used_share(DEADLINE, START, START)
    with pytest.raises(ValueError, match="no working time"):
        calendar.used_share(at(2026, 11, 28), at(2026, 11, 29, 12), at(2026, 11, 29))
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.used_share(START, DEADLINE, datetime(2026, 11, 25, 12))


def test_used_share_in_uncovered_year_warns(calendar):
    start = datetime.combine(first_weekday_of(UNCOVERED_YEAR, 3, 0), time(0), tzinfo=SHANGHAI)
    with pytest.warns(CalendarCoverageWarning):
        share = calendar.used_share(start, start + timedelta(days=2), start + timedelta(days=1))
    assert share == pytest.approx(0.5)


def test_module_never_reads_the_clock():
    source = Path(workdays_module.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\.(now|today|utcnow)\(|time\.time\(|monotonic\(", source)
