"""Chinese working-day calendar for legal and promised time limits (法定时限, 承诺时限).

Which day is a working day comes from, in this order of precedence:
  1. single days fixed by the override file (its ``overrides`` entries and the days listed under ``years``);
  2. a year listed in the override file: every other day follows the plain Monday-Friday rule, because
     the file lists that year's whole arrangement (the library is not consulted for it);
  3. the ``chinese_calendar`` library (package ``chinesecalendar``) for the years its data covers;
  4. otherwise the State Council's arrangement is not known yet. The days off are then *derived from the
     law* (shared/statutory_holidays.py: the statutory holidays of the 全国年节及纪念日放假办法 from the
     lunar calendar and the solar term 清明, plus the make-up days of those falling on a weekend), every
     other Monday-Friday is a working day. The weekend days the State Council will move into working days
     (调休) cannot be derived, so such a year is *provisional*: a CalendarCoverageWarning is emitted and
     the year is reported back (WorkdayResult.assumed_years, the provisional flag of deadline_at) so that
     callers flag the deadline instead of presenting a derivation as the official arrangement.

Next year's arrangement is published by the General Office of the State Council late in the year, often
before the library has it; that is what the override file (config/calendar-overrides.yaml) is for. A
calendar loaded with ``from_file`` re-reads that file when it changes (checked on each call), so an operator
installs an arrangement without a release (``sanji calendar load``
validates a file and installs it); a file that turns invalid is refused and the last good one kept.
The change is noticed by the file's modification time and size (one stat per public call, not per day).

This module never reads the clock for dates: every "now" is a parameter. Datetimes must be timezone-aware;
working days are counted on the calendar of Asia/Shanghai whatever zone the datetime is expressed in.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

from shared.statutory_holidays import FIRST_YEAR as LAW_FIRST_YEAR
from shared.statutory_holidays import LAST_YEAR as LAW_LAST_YEAR
from shared.statutory_holidays import derived_days_off

_log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_END_OF_DAY = time(17, 30)

_ONE_DAY = timedelta(days=1)
_NO_OVERRIDES: Mapping[date, bool] = MappingProxyType({})
_NO_DAYS_OFF: Mapping[date, str] = MappingProxyType({})
# Python 3.11's date.fromisoformat also accepts "20270101" and week dates; the file format is stricter.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_YEAR = re.compile(r"\d{4}", re.ASCII)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CalendarCoverageWarning(UserWarning):
    """Working days were computed for a year without an official arrangement (days off derived from the
    law, no 调休 known): the result is provisional."""


class CalendarFileError(ValueError):
    """The calendar override file is unreadable or inconsistent; the message names the file and entry."""


@dataclass(frozen=True)
class WorkdayResult:
    date: date
    # Years for which no official arrangement was known: days off derived from the law, 调休 unknown.
    assumed_years: frozenset[int] = frozenset()

    @property
    def provisional(self) -> bool:
        return bool(self.assumed_years)


class WorkdayCalendar:
    def __init__(
        self,
        overrides: Mapping[date, bool] = _NO_OVERRIDES,
        covered_years: Iterable[int] = (),
        *,
        library: ModuleType | None = chinese_calendar,
        derive_from_law: bool = True,
    ) -> None:
        """``overrides`` maps single days to "is a working day"; ``covered_years`` are years whose whole
        arrangement is in ``overrides``; ``library`` is the chinese_calendar module, or None to use none;
        ``derive_from_law``: for a year covered by neither, take the statutory holidays as days off (False:
        the bare Monday-Friday rule, kept for tests of the precedence)."""
        for day in overrides:
            _require_date(day)
        self._overrides: dict[date, bool] = dict(overrides)
        self._covered_years = frozenset(covered_years)
        self._library = library
        self._derive_from_law = derive_from_law
        self._library_covers_year: dict[int, bool] = {}
        self._derived: dict[int, Mapping[date, str]] = {}
        self._assumed_years_seen: set[int] = set()
        self._source: Path | None = None
        self._source_stamp: tuple[int, int] | None = None
        self._reload_on_change = False
        self._version = 0
        self._index = _WorkdayIndex(self._classify)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, reload_on_change: bool = True) -> WorkdayCalendar:
        """Load an override file (format: config/calendar-overrides.yaml) on top of chinese_calendar.

        With ``reload_on_change`` the calendar re-reads the file when its modification time or size
        changes. A file that became unreadable or invalid is logged and ignored: the last good arrangement
        stays in force."""
        path = Path(path)
        overrides, covered_years = read_calendar_file(path)
        calendar = cls(overrides, covered_years)
        calendar._source = path
        calendar._source_stamp = _file_stamp(path)
        calendar._reload_on_change = reload_on_change
        return calendar

    def reload_if_changed(self, *, force: bool = False) -> bool:
        """Re-read the override file if it changed since it was loaded; True when a new one took effect."""
        if self._source is None or not (force or self._reload_on_change):
            return False
        stamp = _file_stamp(self._source)
        if stamp == self._source_stamp and not force:
            return False
        try:
            overrides, covered_years = read_calendar_file(self._source)
        except CalendarFileError as exc:
            _log.error("calendar override file changed but is not usable; keeping the last good one: %s", exc)
            self._source_stamp = stamp  # do not log the same broken file on every call
            return False
        self._overrides, self._covered_years = overrides, frozenset(covered_years)
        self._index = _WorkdayIndex(self._classify)  # counted again under the new arrangement, when asked
        self._source_stamp = stamp
        self._version += 1
        _log.warning("calendar override file reloaded: %s (years listed: %s)", self._source,
                     ", ".join(str(y) for y in sorted(covered_years)) or "none")
        return True

    @property
    def version(self) -> int:
        """How many times the override file was reloaded since this calendar was built (after checking it
        now): a change tells a service to revise the provisional deadlines it stores (``revise_deadline``)."""
        self.reload_if_changed()
        return self._version

    @property
    def assumed_years_seen(self) -> frozenset[int]:
        """Every year this calendar has had to guess for so far (for health checks and monitoring)."""
        return frozenset(self._assumed_years_seen)

    def covers(self, year: int) -> bool:
        """Whether the official arrangement of ``year`` is known (override file or library)."""
        self.reload_if_changed()
        return year in self._covered_years or self._library_covers(year)

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` is a working day. For a day in an uncovered year (and not overridden) this is
        derived from the law (provisional), with a CalendarCoverageWarning."""
        _require_date(d)
        self.reload_if_changed()
        workday, assumed = self._classify(d)
        if assumed:
            self._report_assumed({d.year})
        return workday

    def add_workdays(self, start: date, days: int) -> WorkdayResult:
        """The day ``days`` working days after ``start``; ``start`` itself is never counted.

        So for ``days`` >= 1 the result is the ``days``-th working day strictly after ``start`` (and
        ``workdays_between(start, result) == days``). ``days == 0`` means "today": ``start`` if it is a
        working day, otherwise the next working day.
        """
        _require_date(start)
        self.reload_if_changed()
        assumed: set[int] = set()
        result = self._add_workdays(start, days, assumed)
        self._report_assumed(assumed)
        return WorkdayResult(result, frozenset(assumed))

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; when ``end`` is before ``start``, minus the working days in
        (end, start]."""
        _require_date(start)
        _require_date(end)
        self.reload_if_changed()
        earlier, later, sign = (start, end, 1) if start <= end else (end, start, -1)
        count = self._index.workdays(earlier, later)
        self._report_assumed(self._index.assumed_years(earlier + _ONE_DAY, later))
        return sign * count

    def deadline_at(
        self, start: datetime, days: int, end_of_day: time = DEFAULT_END_OF_DAY
    ) -> tuple[datetime, bool]:
        """Deadline at ``end_of_day`` (Shanghai time) of the day ``add_workdays`` gives for the Shanghai
        date of ``start``; the bool is True when the deadline is provisional (see module docstring).

        A deadline is never at or before its start: with ``days == 0`` and a start after closing time on
        a working day, the deadline moves to the end of the next working day.
        """
        local_start = _in_shanghai(start, "start")
        self.reload_if_changed()
        if end_of_day.tzinfo is not None:
            raise ValueError("end_of_day must be a naive time; it is read as Asia/Shanghai time")
        assumed: set[int] = set()
        due_day = self._add_workdays(local_start.date(), days, assumed)
        deadline = datetime.combine(due_day, end_of_day, tzinfo=SHANGHAI)
        if deadline <= local_start:
            deadline = datetime.combine(
                self._add_workdays(local_start.date(), 1, assumed), end_of_day, tzinfo=SHANGHAI
            )
        self._report_assumed(assumed)
        return deadline, bool(assumed)

    def used_share(self, start: datetime, deadline: datetime, now: datetime) -> float:
        """Share of the working time between ``start`` and ``deadline`` that has elapsed at ``now``.

        Working time is measured in whole Shanghai calendar days: a working day counts from midnight to
        midnight, a non-working day not at all, and the day of ``start``, of ``deadline`` and of ``now``
        count for the part of them inside the interval. Office hours are deliberately ignored; the figure
        is for thresholds such as "warn at 80 %", not for billing hours. Returns 0.0 before ``start``,
        1.0 at ``deadline`` and more than 1.0 once the deadline has passed (it only grows on working days).
        """
        local_start = _in_shanghai(start, "start")
        local_deadline = _in_shanghai(deadline, "deadline")
        local_now = _in_shanghai(now, "now")
        if local_deadline <= local_start:
            raise ValueError("deadline must be after start")
        budget = self._working_seconds(local_start, local_deadline)
        if budget == 0:
            raise ValueError("there is no working time between start and deadline")
        used = self._working_seconds(local_start, local_now) if local_now > local_start else 0.0
        last_day = max(local_deadline.date(), local_now.date()) if local_now > local_start else local_deadline.date()
        self._report_assumed(self._index.assumed_years(local_start.date(), last_day))
        return used / budget

    def working_seconds(self, begin: datetime, end: datetime) -> float:
        """Working time from ``begin`` to ``end`` as ``used_share`` measures it (a working day counts midnight to
        midnight, Shanghai time; any other day not at all); 0.0 when ``end`` is not after ``begin``."""
        local_begin, local_end = _in_shanghai(begin, "begin"), _in_shanghai(end, "end")
        self.reload_if_changed()
        if local_end <= local_begin:
            return 0.0
        seconds = self._working_seconds(local_begin, local_end)
        self._report_assumed(self._index.assumed_years(local_begin.date(), local_end.date()))
        return seconds

    # --- internals -----------------------------------------------------------------------------------

    def _classify(self, day: date) -> tuple[bool, bool]:
        """(is a working day, whether that was assumed rather than known)."""
        if day in self._overrides:
            return self._overrides[day], False
        if day.year in self._covered_years:
            return _is_monday_to_friday(day), False
        if self._library_covers(day.year):
            return bool(self._library.is_workday(day)), False
        return _is_monday_to_friday(day) and day not in self._law_days_off(day.year), True

    def _law_days_off(self, year: int) -> Mapping[date, str]:
        if not self._derive_from_law or not LAW_FIRST_YEAR <= year <= LAW_LAST_YEAR:
            return _NO_DAYS_OFF
        if year not in self._derived:
            self._derived[year] = MappingProxyType(derived_days_off(year))
        return self._derived[year]

    def provisional_days_off(self, year: int) -> Mapping[date, str]:
        """The days off the law gives in ``year`` (used when the year is not covered), with their names."""
        return self._law_days_off(year)

    def _is_workday(self, day: date, assumed: set[int]) -> bool:
        workday, was_assumed = self._classify(day)
        if was_assumed:
            assumed.add(day.year)
        return workday

    def _library_covers(self, year: int) -> bool:
        if self._library is None:
            return False
        if year not in self._library_covers_year:
            try:
                self._library.is_workday(date(year, 1, 1))
            except NotImplementedError:  # the library's way of saying it has no data for the year
                self._library_covers_year[year] = False
            else:
                self._library_covers_year[year] = True
        return self._library_covers_year[year]

    def _add_workdays(self, start: date, days: int, assumed: set[int]) -> date:
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError("days must be an int")
        if days < 0:
            raise ValueError("days must not be negative")
        # days == 0: the first working day from start on; otherwise the days-th working day after start.
        first = start if days == 0 else start + _ONE_DAY
        day = self._index.nth_workday_from(first, max(days, 1))
        assumed.update(self._index.assumed_years(first, day))
        return day

    def _working_seconds(self, begin: datetime, end: datetime) -> float:
        """Working seconds of [begin, end] (both in Shanghai time), in constant time whatever the span: the part
        of begin's day after begin, the part of end's day before end, and whole days in between counted off
        the cumulative index. Differences of datetimes in one zone are wall-clock differences, so a working
        day is 86,400 s as the day-by-day sum counted it."""
        first_day, last_day = begin.date(), end.date()
        if last_day < first_day:
            return 0.0
        if first_day == last_day:
            return max((end - begin).total_seconds(), 0.0) if self._index.is_workday(first_day) else 0.0
        seconds = 0.0
        if self._index.is_workday(first_day):
            seconds += (datetime.combine(first_day, time(0), tzinfo=SHANGHAI) + _ONE_DAY - begin).total_seconds()
        if self._index.is_workday(last_day):
            seconds += (end - datetime.combine(last_day, time(0), tzinfo=SHANGHAI)).total_seconds()
        whole_days = self._index.workdays(first_day, last_day - _ONE_DAY)
        return seconds + whole_days * 86400.0

    def _report_assumed(self, years: set[int]) -> None:
        if not years:
            return
        self._assumed_years_seen.update(years)
        listed = ", ".join(str(year) for year in sorted(years))
        warnings.warn(
            CalendarCoverageWarning(
                f"no official holiday arrangement loaded for {listed}: its days off are derived from "
                "the law (statutory holidays and make-up days, no 调休), so the result is provisional. "
                "Load the State Council's arrangement with `sanji calendar load FILE` (or add the year to "
                "the file SANJI_CALENDAR_OVERRIDES names) or upgrade chinesecalendar."
            ),
            stacklevel=3,  # point at the caller of the public method
        )


class _WorkdayIndex:
    """Cumulative working days per date, so that counting the working days between two dates costs the same
    for an item of yesterday and one of five years ago (two look-ups and a subtraction), instead of one
    classification per day of the span.

    Built a year at a time, on first use, for a contiguous span of years that grows as dates outside it are
    asked for; a calendar builds a new index when its override file changes (its calendar version), so an
    index always describes one arrangement. For each year: how many of its first k days are working days, and
    how many were *assumed* (an uncovered year's day, derived from the law), so that the years a count had to
    guess for are known without walking the days either.
    """

    def __init__(self, classify):
        self._classify = classify            # day -> (is a working day, was assumed)
        self._first_year: int | None = None
        self._workdays: list[array] = []      # per year: working days among its first k days, k = 0..len
        self._assumed: list[array] = []       # per year: assumed days among its first k days
        self._before: list[int] = []          # per year: working days of the span's years before it
        self._assumed_before: list[int] = []  # per year: assumed days of the span's years before it

    def _year(self, year: int) -> int:
        """The position of ``year`` in the span, extending the span to it first."""
        if self._first_year is None:
            self._first_year = year
            self._add_years([year], at_end=True)
        elif year < self._first_year:
            self._add_years(range(year, self._first_year), at_end=False)
            self._first_year = year
        elif year >= self._first_year + len(self._workdays):
            self._add_years(range(self._first_year + len(self._workdays), year + 1), at_end=True)
        return year - self._first_year

    def _add_years(self, years: Iterable[int], *, at_end: bool) -> None:
        built_workdays, built_assumed = [], []
        for year in years:
            workdays, assumed = array("l", [0]), array("l", [0])
            for day in _days(date(year, 1, 1), date(year, 12, 31)):
                is_workday, was_assumed = self._classify(day)
                workdays.append(workdays[-1] + is_workday)
                assumed.append(assumed[-1] + was_assumed)
            built_workdays.append(workdays)
            built_assumed.append(assumed)
        if at_end:
            self._workdays += built_workdays
            self._assumed += built_assumed
        else:
            self._workdays[:0] = built_workdays
            self._assumed[:0] = built_assumed
        self._before = list(accumulate((counts[-1] for counts in self._workdays[:-1]), initial=0))
        self._assumed_before = list(accumulate((counts[-1] for counts in self._assumed[:-1]), initial=0))

    def _cumulative(self, day: date) -> int:
        """Working days of the span up to and including ``day``."""
        position = self._year(day.year)
        return self._before[position] + self._workdays[position][day.timetuple().tm_yday]

    def is_workday(self, day: date) -> bool:
        counts = self._workdays[self._year(day.year)]
        ordinal = day.timetuple().tm_yday
        return counts[ordinal] > counts[ordinal - 1]

    def workdays(self, after: date, until: date) -> int:
        """Working days in (after, until]; 0 when until is not after ``after``."""
        if until <= after:
            return 0
        self._year(after.year), self._year(until.year)  # the whole span first: positions do not move after
        return self._cumulative(until) - self._cumulative(after)

    def _assumed_cumulative(self, day: date) -> int:
        position = self._year(day.year)
        return self._assumed_before[position] + self._assumed[position][day.timetuple().tm_yday]

    def assumed_years(self, first: date, last: date) -> set[int]:
        """The years of [first, last] with a day whose status was derived, not known."""
        if last < first:
            return set()
        self._year(first.year), self._year(last.year)  # the whole span first: positions do not move after
        if self._assumed_cumulative(last) == self._assumed_cumulative(first - _ONE_DAY):
            return set()  # the usual answer, in two look-ups: every day of the range was known
        years = set()
        for year in range(first.year, last.year + 1):
            assumed = self._assumed[self._year(year)]
            start = first.timetuple().tm_yday if year == first.year else 1
            end = last.timetuple().tm_yday if year == last.year else len(assumed) - 1
            if end >= start and assumed[end] - assumed[start - 1] > 0:
                years.add(year)
        return years

    def nth_workday_from(self, first: date, n: int) -> date:
        """The n-th working day (n >= 1) counting from ``first`` itself."""
        target = self._cumulative(first - _ONE_DAY) + n
        position = self._year(first.year)
        while self._before[position] + self._workdays[position][-1] < target:
            position = self._year(self._first_year + position + 1)
        counts, base = self._workdays[position], self._before[position]
        ordinal = bisect_left(counts, target - base)
        return date(self._first_year + position, 1, 1) + timedelta(days=ordinal - 1)


# --- revising provisional deadlines ------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """A stored deadline (or due date) recomputed under the calendar in force now."""

    before: Any  # datetime for a deadline, date for a due date
    after: Any
    was_provisional: bool
    provisional: bool

    @property
    def changed(self) -> bool:
        """Whether the date itself moved (a resident told the old one gets a correction)."""
        return self.after != self.before

    @property
    def needed(self) -> bool:
        """Whether anything is to be stored: the date moved, or the flag cleared."""
        return self.changed or self.provisional != self.was_provisional


def revise_deadline(calendar: WorkdayCalendar, *, start: datetime, days: int, stored: datetime,
                    stored_provisional: bool, end_of_day: time = DEFAULT_END_OF_DAY) -> Revision:
    """A deadline stored as ``deadline_at(start, days)`` computed again under ``calendar``. A deadline is
    revised only while it is provisional: a settled one stays as stored (the arrangement it was computed
    with is the official one), so running the revision again changes nothing."""
    if not stored_provisional:
        return Revision(stored, stored, False, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarCoverageWarning)  # still provisional is a normal outcome
        after, provisional = calendar.deadline_at(start, days, end_of_day)
    if after == stored:
        after = stored  # keep the stored instant's zone: equal instants are the same deadline
    return Revision(stored, after, True, provisional)


def revise_due_date(calendar: WorkdayCalendar, *, start: date, days: int, stored: date,
                    stored_provisional: bool) -> Revision:
    """A due date stored as ``add_workdays(start, days)`` computed again under ``calendar`` (see
    ``revise_deadline``)."""
    if not stored_provisional:
        return Revision(stored, stored, False, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarCoverageWarning)
        result = calendar.add_workdays(start, days)
    return Revision(stored, result.date, True, result.provisional)


def count_for_backfill(calendar: WorkdayCalendar, *, start: date, stored: date,
                       fallback: int | None = None) -> int:
    """The working-day count of a due date stored before counts were stored: ``stored`` was
    ``add_workdays(start, n)``, so ``n`` is the working days in (start, stored] under the calendar it was
    computed with. While that span is still provisional the calendar in force is that calendar, and the
    count is exact. Once the arrangement is loaded the count can no longer be read off the dates: then
    ``fallback`` (the count the rules give, e.g. the catalogue's days) when there is one, else the count
    under the calendar in force (the date is kept; only its flag clears)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarCoverageWarning)
        counted = calendar.workdays_between(start, stored)
        still_provisional = calendar.add_workdays(start, max(counted, 0)).provisional
    if still_provisional or fallback is None:
        return max(counted, 0)
    return fallback


def read_calendar_file(path: str | os.PathLike[str]) -> tuple[dict[date, bool], set[int]]:
    """Read and check an override file: (single days -> is a working day, years fully listed).
    Raises CalendarFileError naming the file and the entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(f"{path}: cannot read the calendar file: {exc}") from exc
    try:
        document = yaml.load(text, Loader=_DatesAsTextLoader)
    except yaml.YAMLError as exc:
        raise CalendarFileError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return _parse_calendar_document(document)
    except _EntryProblem as problem:
        raise CalendarFileError(f"{path}: {problem}") from None


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _is_monday_to_friday(day: date) -> bool:
    return day.weekday() < 5


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


def _require_date(value: object) -> None:
    # datetime is a subclass of date, but an aware datetime's .date() depends on its zone, and
    # datetime(...) == date(...) is always False, so overrides would silently miss.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"expected a datetime.date, got {type(value).__name__}")


def _in_shanghai(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(SHANGHAI)


# --- the override file -------------------------------------------------------------------------------


class _DatesAsTextLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so that an impossible date such as 2027-02-30 is reported
    with the entry it is in instead of failing inside the YAML parser, and that refuses duplicate keys,
    which plain YAML loading resolves silently by keeping the last one (two ``2027:`` blocks would lose
    the first)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first_char: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _EntryProblem(Exception):
    """Raised while reading the document; from_file turns it into a CalendarFileError naming the file."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def _parse_calendar_document(document: Any) -> tuple[dict[date, bool], set[int]]:
    if document is None:  # a file holding only comments
        return {}, set()
    if not isinstance(document, dict):
        raise _EntryProblem("top level", "expected a mapping with the keys 'years' and 'overrides'")
    _reject_unknown_keys(document, {"years", "overrides"}, "top level")

    fixed_days: dict[date, bool] = {}
    fixed_by: dict[date, str] = {}  # which entry fixed each day, to name both sides of a contradiction
    covered_years: set[int] = set()

    def fix(day: date, workday: bool, where: str) -> None:
        if day in fixed_days and fixed_days[day] != workday:
            raise _EntryProblem(where, f"{day} is also given the opposite status by {fixed_by[day]}")
        fixed_days[day] = workday
        fixed_by.setdefault(day, where)

    years = document.get("years") or {}
    if not isinstance(years, dict):
        raise _EntryProblem("years", "expected a mapping from year to its arrangement")
    for year_key, arrangement in years.items():
        year = _parse_year(year_key)
        where = f"years.{year}"
        if not isinstance(arrangement, dict):
            raise _EntryProblem(where, "expected a mapping with the keys 'holidays' and 'workdays'")
        _reject_unknown_keys(arrangement, {"holidays", "workdays"}, where)
        holidays = _parse_date_list(arrangement.get("holidays"), f"{where}.holidays")
        workdays = _parse_date_list(arrangement.get("workdays"), f"{where}.workdays")
        if not holidays:
            # Listing a year makes it count as covered; an empty placeholder would hide the gap.
            raise _EntryProblem(where, "lists no holidays; give the year's whole arrangement or leave it out")
        for entry_where, day in holidays + workdays:
            if day.year != year:
                raise _EntryProblem(entry_where, f"{day} is not in {year}")
        for entry_where, day in workdays:
            if _is_monday_to_friday(day):
                raise _EntryProblem(
                    entry_where,
                    f"{day} is a {_WEEKDAY_NAMES[day.weekday()]}; "
                    "'workdays' lists weekend days made into working days (调休)",
                )
        for entry_where, day in holidays:
            fix(day, False, entry_where)
        for entry_where, day in workdays:
            fix(day, True, entry_where)
        covered_years.add(year)

    overrides = document.get("overrides") or []
    if not isinstance(overrides, list):
        raise _EntryProblem("overrides", "expected a list of {date, workday, note} entries")
    for index, entry in enumerate(overrides):
        where = f"overrides[{index}]"
        if not isinstance(entry, dict):
            raise _EntryProblem(
                where, "expected a mapping with the keys 'date', 'workday' and optionally 'note'"
            )
        _reject_unknown_keys(entry, {"date", "workday", "note"}, where)
        if "date" not in entry or "workday" not in entry:
            raise _EntryProblem(where, "needs both 'date' and 'workday'")
        day = _parse_date(entry["date"], f"{where}.date")
        if not isinstance(entry["workday"], bool):
            raise _EntryProblem(f"{where}.workday", "must be true or false")
        if "note" in entry and not isinstance(entry["note"], str):
            raise _EntryProblem(f"{where}.note", "must be text")
        fix(day, entry["workday"], where)

    return fixed_days, covered_years


def _reject_unknown_keys(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in mapping if key not in allowed)
    if unknown:
        raise _EntryProblem(
            where, f"unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}"
        )


def _parse_year(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not _YEAR.fullmatch(str(value)):
        raise _EntryProblem(f"years.{value}", "a year must be written as four digits, e.g. 2027")
    return int(value)


def _parse_date_list(value: Any, where: str) -> list[tuple[str, date]]:
    """The dates of a list, each paired with its entry name for error messages."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _EntryProblem(where, "expected a list of YYYY-MM-DD dates")
    return [(f"{where}[{index}]", _parse_date(item, f"{where}[{index}]")) for index, item in enumerate(value)]


def _parse_date(value: Any, where: str) -> date:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _EntryProblem(where, f"{value!r} is not a real date") from None
    raise _EntryProblem(where, f"{value!r} is not a date written as YYYY-MM-DD")
