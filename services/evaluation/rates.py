"""The three rates (三率) and rankings, read from the read model.

A district-wide period is three range scans on covering indexes (routed, due, rated), each grouped in the
database; the rules of each row (what counts as in time, what a 基本满意 is worth) were settled when the
facts arrived, so reading is only counting.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from services.evaluation import domain
from services.evaluation.adapters.orm import EvaluationItem, Rating
from services.evaluation.facts import EvaluationRules
from services.evaluation.schemas import RankingRow, RankingView, RateRow, RatesView
from shared.auth import Principal
from shared.outbox import UnitOfWork
from shared.workdays import SHANGHAI

GROUPINGS = {"unit": EvaluationItem.unit_code, "level": EvaluationItem.level,
             "department": EvaluationItem.department_code}


def month_period(text: str) -> tuple[datetime, datetime]:
    """``2026-12`` -> [1 Dec 00:00, 1 Jan 00:00) Shanghai time."""
    try:
        year, month = (int(part) for part in text.split("-"))
        start = datetime(year, month, 1, tzinfo=SHANGHAI)
    except (ValueError, TypeError):
        raise domain.Refusal("invalid_period", "period is YYYY-MM", status=400) from None
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
    return start, end


def date_period(start: str, end: str) -> tuple[datetime, datetime]:
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise domain.Refusal("invalid_period", "from and to are YYYY-MM-DD", status=400) from None
    if last < first or (last - first).days > 366:
        raise domain.Refusal("invalid_period", "to is on or after from, at most a year later", status=400)
    return (datetime.combine(first, datetime.min.time(), SHANGHAI),
            datetime.combine(last + timedelta(days=1), datetime.min.time(), SHANGHAI))


def tallies(session, *, district_code: str, prefix: str, start: datetime, end: datetime,
            by: str, max_ratings_per_rater: int) -> dict[str, domain.Tally]:
    key = GROUPINGS[by]
    items = EvaluationItem
    out: dict[str, domain.Tally] = {}

    def tally(k: str) -> domain.Tally:
        return out.setdefault(k, domain.Tally(flags={"return_reset": 0, "late_suspension": 0, "reopened": 0,
                                                     "busy_rater_ratings": 0}))

    scope = [items.district_code == district_code, items.unit_code.startswith(prefix)]
    for k, routed, responded, returns, suspensions, reopened in session.execute(
            select(key, func.count(), func.sum(items.responded_in_time), func.sum(items.flag_return_reset),
                   func.sum(items.flag_late_suspension), func.sum(items.flag_reopened))
            .where(*scope, items.routed_at >= start, items.routed_at < end).group_by(key)):
        t = tally(k)
        t.routed, t.responded_in_time = routed, int(responded or 0)
        t.flags.update(return_reset=int(returns or 0), late_suspension=int(suspensions or 0),
                       reopened=int(reopened or 0))
    for k, due, concluded in session.execute(
            select(key, func.count(), func.sum(items.concluded_in_time))
            .where(*scope, items.promised_deadline >= start, items.promised_deadline < end).group_by(key)):
        t = tally(k)
        t.due, t.resolved_in_time = due, int(concluded or 0)
    for k, rated, points in session.execute(
            select(key, func.count(), func.sum(items.satisfaction))
            .where(*scope, items.rated_at >= start, items.rated_at < end, items.satisfaction.is_not(None))
            .group_by(key)):
        t = tally(k)
        t.rated, t.satisfaction_points = rated, float(points or 0.0)
    # Anti-gaming: ratings in the period from a phone that rated more than the limit.
    busy = (select(Rating.rater_fingerprint).where(
        Rating.rater_fingerprint.is_not(None), Rating.unit_code.startswith(prefix),
        Rating.submitted_at >= start, Rating.submitted_at < end)
        .group_by(Rating.rater_fingerprint).having(func.count() > max_ratings_per_rater))
    rating_key = {"unit": Rating.unit_code, "level": items.level, "department": items.department_code}[by]
    for k, count in session.execute(
            select(rating_key, func.count()).select_from(Rating).join(items, items.item_id == Rating.item_id)
            .where(Rating.rater_fingerprint.in_(busy), Rating.submitted_at >= start, Rating.submitted_at < end,
                   items.district_code == district_code).group_by(rating_key)):
        tally(k).flags["busy_rater_ratings"] = count
    return out


def scope_of(principal: Principal, rules: EvaluationRules, district_code: str | None) -> tuple[str, str]:
    """(district, prefix): a district's staff see the whole district, a street's its own line."""
    if principal.kind not in ("staff", "specialist") or principal.unit_code not in rules.catalogue.units:
        raise domain.Forbidden("not_staff", "the rates are for staff and supervisors")
    own_district = principal.unit_code[:6] + "000000"
    district = district_code or own_district
    if district != own_district:
        raise domain.Forbidden("outside_jurisdiction", "the district lies outside your jurisdiction")
    return district, rules.catalogue.jurisdiction_prefix(principal.unit_code)


def rates(principal: Principal, *, unit_of_work: UnitOfWork, rules: EvaluationRules, district_code: str | None,
          start: datetime, end: datetime, by: str) -> RatesView:
    if by not in GROUPINGS:
        raise domain.Refusal("invalid_query", "by is unit, level or department", status=400)
    district, prefix = scope_of(principal, rules, district_code)
    with unit_of_work as uow:
        began = time.perf_counter()
        found = tallies(uow.session, district_code=district, prefix=prefix, start=start, end=end, by=by,
                        max_ratings_per_rater=rules.settings.max_ratings_per_rater)
        elapsed = (time.perf_counter() - began) * 1000
    rows = [RateRow(key=k, routed=t.routed, responded_in_time=t.responded_in_time, due=t.due,
                    concluded_in_time=t.resolved_in_time, rated=t.rated,
                    satisfaction_points=round(t.satisfaction_points, 4), flags=t.flags, **t.rates())
            for k, t in sorted(found.items())]
    return RatesView(district_code=district, period_from=start, period_to=end, by=by, rows=rows,
                     query_ms=round(elapsed, 2))


def rates_csv(view: RatesView) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    flag_names = ["return_reset", "late_suspension", "reopened", "busy_rater_ratings"]
    writer.writerow([view.by, "routed", "responded_in_time", "response_rate", "due", "concluded_in_time",
                     "resolution_rate", "rated", "satisfaction_points", "satisfaction_rate", *flag_names])
    for r in view.rows:
        writer.writerow([r.key, r.routed, r.responded_in_time, _pct(r.response_rate), r.due, r.concluded_in_time,
                         _pct(r.resolution_rate), r.rated, r.satisfaction_points, _pct(r.satisfaction_rate),
                         *(r.flags.get(name, 0) for name in flag_names)])
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def ranking(principal: Principal, *, unit_of_work: UnitOfWork, rules: EvaluationRules, district_code: str | None,
            level: str, start: datetime, end: datetime) -> RankingView:
    """Streets (or communities) of a district ranked by satisfaction, then resolution, then response, with the
    trend of the satisfaction rate against the previous period of the same length."""
    if level not in ("street", "community"):
        raise domain.Refusal("invalid_query", "level is street or community", status=400)
    district, prefix = scope_of(principal, rules, district_code)
    # A calendar month compares with the month before; any other period with the same length before it.
    is_month = start.day == 1 and end == _next_month(start)
    previous_start = _previous_month(start) if is_month else start - (end - start)
    with unit_of_work as uow:
        now_t = tallies(uow.session, district_code=district, prefix=prefix, start=start, end=end, by="unit",
                        max_ratings_per_rater=rules.settings.max_ratings_per_rater)
        then_t = tallies(uow.session, district_code=district, prefix=prefix, start=previous_start, end=start,
                         by="unit", max_ratings_per_rater=rules.settings.max_ratings_per_rater)
    units = [u for u in rules.catalogue.units.values() if str(u.level) == level and u.code.startswith(prefix)
             and u.code.startswith(district[:6])]
    scored = []
    for unit in units:
        current = now_t.get(unit.code, domain.Tally()).rates()
        previous = then_t.get(unit.code, domain.Tally()).rates()
        scored.append((domain.ranking_score(current), unit, current, previous))
    scored.sort(key=lambda s: (s[0] is None, tuple(-v for v in s[0]) if s[0] else (), s[1].code))
    rows = [RankingRow(rank=i + 1, unit_code=unit.code, unit_name=unit.name, **current,
                       previous_satisfaction_rate=previous["satisfaction_rate"],
                       trend=domain.trend(current["satisfaction_rate"], previous["satisfaction_rate"]))
            for i, (_, unit, current, previous) in enumerate(scored)]
    return RankingView(district_code=district, level=level, period_from=start, period_to=end, rows=rows)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


def _previous_month(start: datetime) -> datetime:
    return start.replace(year=start.year - (start.month == 1), month=(start.month - 2) % 12 + 1)
