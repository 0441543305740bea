"""The pure rule of revising provisional deadlines once a year's arrangement is loaded (shared/workdays.py)."""

from __future__ import annotations

import os
import warnings
from datetime import date, datetime, time

import pytest

from shared.calendar_revision import RevisionTrigger
from shared.statutory_holidays import derived_days_off
from shared.workdays import (
    SHANGHAI,
    WorkdayCalendar,
    count_for_backfill,
    revise_deadline,
    revise_due_date,
)

SUBMITTED = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
# A 2027 arrangement: the law's days off, and Saturday 9 January worked (a 调休 the law cannot derive).
WORKED_SATURDAY = date(2027, 1, 9)


def arrangement_2027() -> str:
    holidays = ", ".join(day.isoformat() for day in derived_days_off(2027))
    return f"years:\n  2027:\n    holidays: [{holidays}]\n    workdays: [{WORKED_SATURDAY.isoformat()}]\n"


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def override_file(tmp_path):
    path = tmp_path / "calendar-overrides.yaml"
    path.write_text("# 2027 not listed yet\n", encoding="utf-8")
    return path


def load_2027(path) -> None:
    path.write_text(arrangement_2027(), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new stamp even within one tick


def test_a_deadline_crossing_into_an_unloaded_year_is_provisional_and_moves_when_the_arrangement_makes_a_day_worked(
        override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored, provisional = calendar.deadline_at(SUBMITTED, 27)
    assert provisional and stored == datetime(2027, 1, 11, 17, 30, tzinfo=SHANGHAI)

    load_2027(override_file)
    revision = revise_deadline(calendar, start=SUBMITTED, days=27, stored=stored, stored_provisional=True)

    assert revision.after == datetime(2027, 1, 9, 17, 30, tzinfo=SHANGHAI)  # the worked Saturday counts
    assert not revision.provisional and revision.changed and revision.needed


def test_a_date_the_arrangement_does_not_move_only_loses_its_flag(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored, provisional = calendar.deadline_at(SUBMITTED, 25)  # 7 January: before the worked Saturday
    assert provisional
    load_2027(override_file)

    revision = revise_deadline(calendar, start=SUBMITTED, days=25, stored=stored, stored_provisional=True)

    assert revision.after == stored and not revision.changed
    assert revision.was_provisional and not revision.provisional and revision.needed


def test_a_settled_deadline_is_never_recomputed(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    load_2027(override_file)
    stored = datetime(2027, 1, 11, 17, 30, tzinfo=SHANGHAI)  # as it was stored, whatever a recount would say

    revision = revise_deadline(calendar, start=SUBMITTED, days=27, stored=stored, stored_provisional=False)

    assert revision.after == stored and not revision.needed


def test_revising_again_changes_nothing(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored = calendar.add_workdays(date(2026, 12, 2), 27)
    load_2027(override_file)
    first = revise_due_date(calendar, start=date(2026, 12, 2), days=27, stored=stored.date, stored_provisional=True)
    assert first.after == WORKED_SATURDAY and first.changed

    second = revise_due_date(calendar, start=date(2026, 12, 2), days=27, stored=first.after,
                             stored_provisional=first.provisional)
    assert not second.needed and second.after == first.after


def test_a_year_still_not_loaded_keeps_the_date_and_the_flag(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored = calendar.add_workdays(date(2026, 12, 2), 27)

    revision = revise_due_date(calendar, start=date(2026, 12, 2), days=27, stored=stored.date,
                               stored_provisional=True)

    assert revision.provisional and not revision.needed


def test_the_count_of_a_row_stored_before_counts_were_is_read_off_its_dates_while_the_year_is_provisional(
        override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored = calendar.add_workdays(date(2026, 12, 2), 27).date

    assert count_for_backfill(calendar, start=date(2026, 12, 2), stored=stored, fallback=99) == 27


def test_once_the_year_is_loaded_the_count_comes_from_the_rules_or_keeps_the_date(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored = calendar.add_workdays(date(2026, 12, 2), 27).date  # 11 January, counted without the worked Saturday
    load_2027(override_file)

    assert count_for_backfill(calendar, start=date(2026, 12, 2), stored=stored, fallback=27) == 27
    # No rule to fall back on: the count under the loaded calendar, so the date stays and only the flag clears.
    assert count_for_backfill(calendar, start=date(2026, 12, 2), stored=stored) == 28


def test_a_calendar_reports_a_new_version_when_its_file_is_reloaded(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    before = calendar.version
    assert calendar.version == before
    load_2027(override_file)
    assert calendar.version == before + 1


def test_the_trigger_runs_first_on_a_change_and_then_now_and_then(override_file):
    clock = [0.0]
    calendar = WorkdayCalendar.from_file(override_file)
    trigger = RevisionTrigger(full_pass_seconds=600, monotonic=lambda: clock[0])
    version = trigger.due(calendar)
    assert version is not None  # the first tick after a start
    trigger.done(version)
    assert trigger.due(calendar) is None
    load_2027(override_file)
    changed = trigger.due(calendar)
    assert changed == version + 1
    trigger.done(changed)
    assert trigger.due(calendar) is None
    clock[0] = 601
    assert trigger.due(calendar) == changed  # the periodic pass


def test_a_deadline_keeps_its_closing_time(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    stored, _ = calendar.deadline_at(SUBMITTED, 27, time(12, 0))
    load_2027(override_file)
    revision = revise_deadline(calendar, start=SUBMITTED, days=27, stored=stored, stored_provisional=True,
                               end_of_day=time(12, 0))
    assert revision.after.timetz() == time(12, 0, tzinfo=SHANGHAI)
