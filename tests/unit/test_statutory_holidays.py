"""The calendar beyond the library: statutory holidays derived from the law and the lunar calendar."""

import os
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from shared.statutory_holidays import derived_days_off, statutory_periods
from shared.workdays import SHANGHAI, CalendarCoverageWarning, CalendarFileError, WorkdayCalendar, read_calendar_file

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_OVERRIDES = REPO_ROOT / "config" / "calendar-overrides.yaml"


def period(year: int, name: str):
    return next(p for p in statutory_periods(year) if p.name == name)


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarCoverageWarning)
        yield


# ── 2027, by the law ───────────────────────────────────────────────────────────────────────────────


def test_2027_statutory_days_from_the_law_and_the_lunar_calendar():
    assert period(2027, "元旦").statutory_days == (date(2027, 1, 1),)
    # 除夕 of the year of the goat is Friday 5 February 2027; 初一 is the 6th.
    assert period(2027, "春节").statutory_days == tuple(date(2027, 2, d) for d in (5, 6, 7, 8))
    assert period(2027, "清明节").statutory_days == (date(2027, 4, 5),)  # the solar term
    assert period(2027, "劳动节").statutory_days == (date(2027, 5, 1), date(2027, 5, 2))
    assert period(2027, "端午节").statutory_days == (date(2027, 6, 9),)  # 五月初五
    assert period(2027, "中秋节").statutory_days == (date(2027, 9, 15),)  # 八月十五
    assert period(2027, "国庆节").statutory_days == (date(2027, 10, 1), date(2027, 10, 2), date(2027, 10, 3))


def test_2027_weekend_holidays_are_made_up_on_the_next_working_days():
    # 春节: Sat 6 and Sun 7 February are statutory days -> Tue 9 and Wed 10 off.
    assert period(2027, "春节").make_up_days == (date(2027, 2, 9), date(2027, 2, 10))
    # 劳动节: Sat 1 and Sun 2 May -> Mon 3 and Tue 4.
    assert period(2027, "劳动节").make_up_days == (date(2027, 5, 3), date(2027, 5, 4))
    # 国庆: Sat 2 and Sun 3 October -> Mon 4 and Tue 5.
    assert period(2027, "国庆节").make_up_days == (date(2027, 10, 4), date(2027, 10, 5))
    # 元旦 is a Friday, 清明 a Monday, 端午 and 中秋 Wednesdays: nothing to make up.
    for name in ("元旦", "清明节", "端午节", "中秋节"):
        assert period(2027, name).make_up_days == ()


def test_2027_days_off_count_14_working_days_lost(quiet):
    days_off = derived_days_off(2027)
    weekdays_off = [d for d in days_off if d.weekday() < 5]
    # 13 statutory days, of which 6 fall on a weekend and are made up: 7 + 6 = 13 weekdays off.
    assert sum(len(p.statutory_days) for p in statutory_periods(2027)) == 13
    assert len(weekdays_off) == 13
    calendar = WorkdayCalendar()
    assert not calendar.covers(2027)
    for day in days_off:
        assert not calendar.is_workday(day), day


def test_2027_in_the_working_day_calendar(quiet):
    calendar = WorkdayCalendar()
    assert not calendar.is_workday(date(2027, 1, 1))
    assert calendar.is_workday(date(2027, 1, 4))
    for day in range(5, 11):
        assert not calendar.is_workday(date(2027, 2, day))
    assert calendar.is_workday(date(2027, 2, 11))
    assert not calendar.is_workday(date(2027, 4, 5))
    assert not calendar.is_workday(date(2027, 6, 9))
    assert not calendar.is_workday(date(2027, 9, 15))


# ── 2030 ───────────────────────────────────────────────────────────────────────────────────────────


def test_2030_statutory_days_and_make_up_days():
    # 除夕 2030 is Saturday 2 February (初一 Sunday the 3rd): two weekend days, made up Wed 6 and Thu 7.
    spring = period(2030, "春节")
    assert spring.statutory_days == tuple(date(2030, 2, d) for d in (2, 3, 4, 5))
    assert spring.make_up_days == (date(2030, 2, 6), date(2030, 2, 7))
    assert period(2030, "清明节").statutory_days == (date(2030, 4, 5),)
    assert period(2030, "端午节").statutory_days == (date(2030, 6, 5),)
    assert period(2030, "中秋节").statutory_days == (date(2030, 9, 12),)
    assert period(2030, "元旦").make_up_days == ()  # a Tuesday
    assert period(2030, "国庆节").make_up_days == ()  # Tuesday to Thursday


def test_a_new_years_day_on_a_saturday_is_made_up_on_monday():
    assert date(2028, 1, 1).weekday() == 5
    assert period(2028, "元旦").make_up_days == (date(2028, 1, 3),)


def test_the_derivation_agrees_with_the_official_arrangements_the_library_holds():
    """For 2025 and 2026 (the revised law, in the library) every day the law gives off is off officially."""
    for year in (2025, 2026):
        for day, name in derived_days_off(year).items():
            assert not chinese_calendar.is_workday(day), (day, name)
        # …and every statutory day itself is an official holiday.
        for p in statutory_periods(year):
            for day in p.statutory_days:
                assert chinese_calendar.is_holiday(day), (day, p.name)


def test_years_outside_the_revised_law_are_refused():
    with pytest.raises(ValueError, match="2024"):
        statutory_periods(2024)
    with pytest.raises(TypeError):
        statutory_periods("2027")


# ── provisional, and the issue's scenario ──────────────────────────────────────────────────────────


def test_the_issue_scenario_22_working_days_from_2_december_2026_skip_new_years_day():
    calendar = WorkdayCalendar.from_file(SHIPPED_OVERRIDES)
    with pytest.warns(CalendarCoverageWarning, match="2027"):
        due = calendar.add_workdays(date(2026, 12, 2), 22)
    # 21 working days take it to Thu 31 December; 1 January is 元旦: the 22nd is Monday 4 January.
    assert due.date == date(2027, 1, 4)
    assert due.provisional
    assert due.assumed_years == frozenset({2027})


def test_a_deadline_inside_a_covered_year_is_not_provisional(quiet):
    calendar = WorkdayCalendar.from_file(SHIPPED_OVERRIDES)
    due = calendar.add_workdays(date(2026, 12, 2), 5)
    assert due.date == date(2026, 12, 9) and not due.provisional


ARRANGEMENT_2027 = """\
# Invented for the tests (the real one is the State Council's notice): every statutory day is off.
years:
  2027:
    holidays: [2027-01-01, 2027-01-02, 2027-01-03,
               2027-02-05, 2027-02-06, 2027-02-07, 2027-02-08, 2027-02-09, 2027-02-10, 2027-02-11, 2027-02-12,
               2027-04-03, 2027-04-04, 2027-04-05,
               2027-05-01, 2027-05-02, 2027-05-03, 2027-05-04, 2027-05-05,
               2027-06-09, 2027-09-15,
               2027-10-01, 2027-10-02, 2027-10-03, 2027-10-04, 2027-10-05, 2027-10-06, 2027-10-07]
    workdays: [2027-02-14, 2027-02-20, 2027-04-25, 2027-09-26, 2027-10-09]
overrides: []
"""

def test_loading_the_arrangement_ends_the_provisional_state_without_a_restart(tmp_path):
    path = tmp_path / "calendar-overrides.yaml"
    path.write_text("years: {}\noverrides: []\n", encoding="utf-8")
    calendar = WorkdayCalendar.from_file(path)
    with pytest.warns(CalendarCoverageWarning):
        assert calendar.add_workdays(date(2026, 12, 2), 22).provisional

    # An operator installs the State Council's arrangement (a made-up one here: the test is about loading).
    path.write_text(ARRANGEMENT_2027, encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarCoverageWarning)
        due = calendar.add_workdays(date(2026, 12, 2), 22)
        assert calendar.covers(2027)
        assert calendar.is_workday(date(2027, 2, 14))  # a Sunday made into a working day (调休)
        assert not calendar.is_workday(date(2027, 2, 11))
    assert due.date == date(2027, 1, 4) and not due.provisional


def test_a_broken_file_installed_later_is_refused_and_the_last_good_one_kept(tmp_path):
    path = tmp_path / "calendar-overrides.yaml"
    path.write_text(ARRANGEMENT_2027, encoding="utf-8")
    calendar = WorkdayCalendar.from_file(path)
    path.write_text("years:\n  2027:\n    holidays: [2027-02-30]\n", encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert calendar.reload_if_changed() is False
    assert calendar.covers(2027)
    with pytest.raises(CalendarFileError, match="2027-02-30"):
        read_calendar_file(path)


def test_deadline_at_in_2027_is_flagged_and_skips_the_spring_festival():
    calendar = WorkdayCalendar()
    start = datetime(2027, 2, 4, 9, 0, tzinfo=SHANGHAI)  # Thursday before 除夕
    with pytest.warns(CalendarCoverageWarning):
        deadline, provisional = calendar.deadline_at(start, 1)
    assert provisional
    assert deadline.date() == date(2027, 2, 11)
    assert deadline.date() - start.date() == timedelta(days=7)


# ── the operator's command ─────────────────────────────────────────────────────────────────────────


def test_sanji_calendar_load_validates_and_installs_atomically(tmp_path, capsys):
    from sanji.cli import main

    target = tmp_path / "installed.yaml"
    target.write_text("years: {}\noverrides: []\n", encoding="utf-8")
    running = WorkdayCalendar.from_file(target)  # a service's calendar, already running
    assert not running.covers(2027)

    bad = tmp_path / "bad.yaml"
    bad.write_text("years:\n  2027:\n    holidays: [2027-13-01]\n", encoding="utf-8")
    assert main(["calendar", "load", str(bad), "--target", str(target)]) == 1
    assert "2027-13-01" in capsys.readouterr().err
    # An arrangement that would have people work on a statutory holiday (元旦 left out) is refused too.
    against_the_law = tmp_path / "against.yaml"
    against_the_law.write_text(ARRANGEMENT_2027.replace("2027-01-01, ", ""), encoding="utf-8")
    assert main(["calendar", "load", str(against_the_law), "--target", str(target)]) == 1
    assert "元旦" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "years: {}\noverrides: []\n"

    good = tmp_path / "arrangement-2027.yaml"
    good.write_text(ARRANGEMENT_2027, encoding="utf-8")
    assert main(["calendar", "load", str(good), "--target", str(target)]) == 0
    assert "2027" in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == ARRANGEMENT_2027
    assert running.covers(2027)  # picked up without a restart


def test_sanji_calendar_show_marks_a_derived_year_provisional(capsys):
    from sanji.cli import main

    assert main(["calendar", "show", "2030"]) == 0
    out = capsys.readouterr().out
    assert "PROVISIONAL" in out
    assert "2030-02-04 Mon  off   春节" in out
    assert "2030-02-06 Wed  off   春节（补假）" in out
