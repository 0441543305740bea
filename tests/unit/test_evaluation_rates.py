"""The rates query on a handful of rows counted by hand (SQLite in memory): periods, districts, exclusions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from services.evaluation.adapters.orm import EVALUATION_TABLES, EvaluationItem, Rating
from services.evaluation.rates import date_period, month_period, tallies
from shared.db import Base
from shared.refusal import Refusal

QIXIA, XUANWU = "320113000000", "320102000000"
STREET, XINHE = "320113003000", "320113003021"
DEC = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)


def row(item_id, *, unit=XINHE, district=QIXIA, routed=DEC, responded=1, due=DEC + timedelta(days=5), concluded=1,
        rated=None, satisfaction=None, level="community", **flags):
    return dict(item_id=item_id, case_id="c", matter_code="m", department_code="police", level=level,
                unit_code=unit, district_code=district, community_code=XINHE, status="resolved", as_of=routed,
                routed_at=routed, responded_in_time=responded, promised_deadline=due, concluded_in_time=concluded,
                rated_at=rated, satisfaction=satisfaction, return_count=0, flag_return_reset=flags.get("ret", 0),
                flag_late_suspension=0, flag_reopened=flags.get("reopened", 0), updated_at=routed)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine, tables=EVALUATION_TABLES)
    with Session(engine) as session:
        yield session


def test_each_rate_counts_its_own_period_and_only_the_district(session):
    session.execute(insert(EvaluationItem), [
        row("a", rated=DEC, satisfaction=1.0),
        row("b", responded=0, concluded=0, rated=DEC, satisfaction=0.6, ret=1),
        row("c", rated=DEC, satisfaction=0.0, reopened=1),
        row("d", routed=DEC - timedelta(days=30), due=DEC),            # routed in November, due in December
        row("e", due=DEC + timedelta(days=40)),                           # due in January
        row("f", unit=STREET, level="street", rated=DEC, satisfaction=1.0),
        row("x", district=XUANWU, unit="320102002001"),                   # another district
    ])
    start, end = month_period("2026-12")
    found = tallies(session, district_code=QIXIA, prefix="320113", start=start, end=end, by="unit",
                    max_ratings_per_rater=5)
    community = found[XINHE]
    assert (community.routed, community.responded_in_time) == (4, 3)       # a b c e
    assert (community.due, community.resolved_in_time) == (4, 3)           # a b c d
    assert (community.rated, round(community.satisfaction_points, 2)) == (3, 1.6)
    assert community.rates() == {"response_rate": 0.75, "resolution_rate": 0.75, "satisfaction_rate": 0.5333}
    assert community.flags["return_reset"] == 1 and community.flags["reopened"] == 1
    assert found[STREET].rates()["satisfaction_rate"] == 1.0
    assert "320102002001" not in found
    by_level = tallies(session, district_code=QIXIA, prefix="320113", start=start, end=end, by="level",
                       max_ratings_per_rater=5)
    assert set(by_level) == {"community", "street"}
    # A street's staff see their own line only.
    street_only = tallies(session, district_code=QIXIA, prefix="320113003", start=start, end=end, by="unit",
                          max_ratings_per_rater=5)
    assert set(street_only) == {XINHE, STREET}


def test_many_ratings_from_one_phone_are_flagged(session):
    session.execute(insert(EvaluationItem), [row(f"i{n}", rated=DEC, satisfaction=1.0) for n in range(4)])
    session.execute(insert(Rating), [dict(rating_id=f"r{n}", item_id=f"i{n}", case_id="c", unit_code=XINHE,
                                          channel="kiosk", level="very_satisfied", reason_codes="[]", comment="",
                                          rater_fingerprint="same-phone", submitted_at=DEC, excluded=False)
                                     for n in range(4)])
    start, end = month_period("2026-12")
    assert tallies(session, district_code=QIXIA, prefix="320113", start=start, end=end, by="unit",
                   max_ratings_per_rater=3)[XINHE].flags["busy_rater_ratings"] == 4
    assert tallies(session, district_code=QIXIA, prefix="320113", start=start, end=end, by="unit",
                   max_ratings_per_rater=5)[XINHE].flags["busy_rater_ratings"] == 0


def test_periods_are_checked():
    start, end = month_period("2026-12")
    assert (start.month, end.year, end.month) == (12, 2027, 1)
    for bad in ("2026-13", "december", ""):
        with pytest.raises(Refusal):
            month_period(bad)
    with pytest.raises(Refusal):
        date_period("2026-12-31", "2026-12-01")
    first, last = date_period("2026-11-01", "2026-12-31")
    assert (last - first).days == 61
