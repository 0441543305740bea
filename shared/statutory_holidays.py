"""The statutory public holidays of any year, derived from the law and the lunar calendar.

The 全国年节及纪念日放假办法 (State Council, as revised on 2024-11-10, in force from 2025-01-01), article 2,
gives every citizen these days off:

    元旦   1 day   1 January
    春节   4 days  除夕 (the last day of the 12th lunar month) to 初三 (the 3rd day of the 1st lunar month)
    清明节 1 day   the day of the solar term 清明 (sun at 15° ecliptic longitude, Beijing time)
    劳动节 2 days  1 and 2 May
    端午节 1 day   the 5th day of the 5th lunar month
    中秋节 1 day   the 15th day of the 8th lunar month
    国庆节 3 days  1 to 3 October

Article 6: a holiday for all citizens that falls on a Saturday or a Sunday is made up (补假) on a working
day. The law does not say which one; this module implements the rule the State Council has followed
when it does not arrange otherwise: **the days are made up on the first Monday-to-Friday days right after
the holiday period, one for each statutory day on a weekend** (元旦 2028 falls on a Saturday: Monday
3 January 2028 is off). The State Council's yearly notice (关于<year>年部分节假日安排的通知) moves
weekends into working days (调休) and lengthens periods; that arrangement is not derivable from the
law, so a derived year is only ever *provisional* and the official arrangement, once loaded from the
override file or the library, replaces it (see shared/workdays.py).

Lunar dates and the solar term come from ``lunar_python`` (package ``lunar-python``, pure Python, tables
and the 寿星天文历 algorithms, covering years far beyond any deadline).

Years before 2025 were governed by the earlier version of the law (春节 3 days from 初一, 劳动节 1 day);
the calendar library covers them, so this module refuses them rather than apply the wrong law.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar

LAW = "全国年节及纪念日放假办法（2024年11月10日修订，2025年1月1日起施行）"
FIRST_YEAR = 2025  # the revised law's first year
LAST_YEAR = 2200  # far beyond any deadline; guards against a typo such as 20270

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class HolidayPeriod:
    """One festival: its statutory days and the working days that make up for those on a weekend."""

    name: str
    statutory_days: tuple[date, ...]
    make_up_days: tuple[date, ...]

    @property
    def days_off(self) -> tuple[date, ...]:
        return self.statutory_days + self.make_up_days


def _lunar_to_solar(year: int, month: int, day: int) -> date:
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _new_years_eve(gregorian_year: int) -> date:
    """除夕: the day before 初一 of the lunar year starting in ``gregorian_year`` (the 12th month has 29 or
    30 days, so it is computed from 初一 rather than from a fixed 30th)."""
    return _lunar_to_solar(gregorian_year, 1, 1) - _ONE_DAY


def _qingming(year: int) -> date:
    table = Lunar.fromYmd(year, 1, 1).getJieQiTable()
    solar = table["清明"]
    day = date(solar.getYear(), solar.getMonth(), solar.getDay())
    if day.year != year:  # never happens (清明 is 4-6 April), but a wrong table must not pass silently
        raise ValueError(f"清明 of {year} computed as {day}")
    return day


def _span(first: date, days: int) -> tuple[date, ...]:
    return tuple(first + _ONE_DAY * offset for offset in range(days))


def _is_weekend(day: date) -> bool:
    return day.weekday() >= 5


@lru_cache(maxsize=64)
def statutory_periods(year: int) -> tuple[HolidayPeriod, ...]:
    """The holiday periods of ``year`` by the law alone, with their make-up days, in date order.

    A 春节 whose 除夕 falls in the previous Gregorian year (it never has since 1900, but the law does not
    exclude it) keeps only its days inside ``year``; its make-up days are counted with the days inside.
    """
    if isinstance(year, bool) or not isinstance(year, int):
        raise TypeError("year must be an int")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"the statutory holidays are derived for {FIRST_YEAR}-{LAST_YEAR}, not {year}")
    raw = [
        ("元旦", _span(date(year, 1, 1), 1)),
        ("春节", tuple(d for d in _span(_new_years_eve(year), 4) if d.year == year)),
        ("清明节", (_qingming(year),)),
        ("劳动节", _span(date(year, 5, 1), 2)),
        ("端午节", (_lunar_to_solar(year, 5, 5),)),
        ("中秋节", (_lunar_to_solar(year, 8, 15),)),
        ("国庆节", _span(date(year, 10, 1), 3)),
    ]
    raw.sort(key=lambda entry: entry[1][0])
    statutory = {day for _, days in raw for day in days}
    taken: set[date] = set(statutory)
    periods: list[HolidayPeriod] = []
    for name, days in raw:
        owed = sum(1 for day in days if _is_weekend(day))
        make_up: list[date] = []
        candidate = days[-1]
        while len(make_up) < owed:
            candidate += _ONE_DAY
            # The next period's own days cannot serve as a make-up day (e.g. 中秋 right before 国庆).
            if not _is_weekend(candidate) and candidate not in taken:
                make_up.append(candidate)
                taken.add(candidate)
        periods.append(HolidayPeriod(name, days, tuple(make_up)))
    return tuple(periods)


def derived_days_off(year: int) -> dict[date, str]:
    """Every day of ``year`` that is off by the law (statutory days and make-up days), with its festival.

    A make-up day may fall in the next January (a 国庆 can't, but the rule is general): only days inside
    ``year`` are returned, plus those of the previous year's periods that spill into it.
    """
    days: dict[date, str] = {}
    for source_year in (year - 1, year):
        if source_year < FIRST_YEAR:
            continue
        for period in statutory_periods(source_year):
            for day in period.statutory_days:
                if day.year == year:
                    days[day] = period.name
            for day in period.make_up_days:
                if day.year == year:
                    days[day] = f"{period.name}（补假）"
    return dict(sorted(days.items()))

