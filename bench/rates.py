"""How fast the rates read model answers a district-wide month: load N items, then time the query.

    .venv/bin/python -m bench.rates                     # 1,000,000 items into a fresh SQLite file under var/
    .venv/bin/python -m bench.rates --items 200000      # fewer, when time is short
    .venv/bin/python -m bench.rates --database-url postgresql://postgres@127.0.0.1:5432/sanji_bench

What it does: migrates a fresh database (the evaluation branch), bulk-inserts N item rows spread evenly over
12 months, the 8 districts of the sample catalogue and every street and community of each (with ratings on a
third of them, as the read model would hold after the events), ANALYZEs, then runs the service's own query
(``services.evaluation.rates.tallies``: three grouped range scans, by unit) for one district and one month,
``--repeat`` times after one warm-up run, and prints the minimum, median and maximum wall time. The loading is
not timed. The target is under 100 ms for a district-wide month on 1 million items.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from services.evaluation.adapters.orm import EvaluationItem
from services.evaluation.rates import month_period, tallies
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.db import create_db_engine, session_factory
from shared.migrate import migrate


def _units(catalogue) -> list[tuple[str, str, str, str]]:
    """(district, level, unit, community) for every street and community desk of the sample catalogue."""
    units = []
    for unit in catalogue.units.values():
        if str(unit.level) == "community":
            units.append((unit.code[:6] + "000000", "community", unit.code, unit.code))
            units.append((unit.code[:6] + "000000", "street", unit.parent_code, unit.code))
    return units


def load(url: str, n: int, seed: int = 13) -> None:
    engine = create_db_engine(url)
    units = _units(load_catalogue(REPO_ROOT / "catalogue" / "nanjing"))
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch, written = [], 0
    began = time.perf_counter()
    connection = engine.connect()
    try:
        for i in range(n):
            district, level, unit, community = units[i % len(units)]
            routed = start + timedelta(seconds=rng.randrange(365 * 86400))
            rated = rng.random() < 1 / 3
            batch.append({
                "item_id": f"bench-{i:09d}", "case_id": f"case-{i // 3:09d}", "matter_code": "residence-permit",
                "department_code": rng.choice(("police", "hrss", "housing", "civil")), "level": level,
                "unit_code": unit, "district_code": district, "community_code": community, "status": "resolved",
                "as_of": routed, "routed_at": routed, "respond_by": routed + timedelta(days=1),
                "responded_at": routed + timedelta(hours=2), "responded_in_time": int(rng.random() < 0.9),
                "clock_started_at": routed, "promised_deadline": routed + timedelta(days=14),
                "closed_at": routed + timedelta(days=5), "concluded_in_time": int(rng.random() < 0.85),
                "return_count": 0, "flag_return_reset": 0, "flag_late_suspension": int(rng.random() < 0.01),
                "flag_reopened": 0, "rated_at": routed + timedelta(days=6) if rated else None,
                "satisfaction": rng.choice((1.0, 1.0, 1.0, 0.6, 0.0)) if rated else None, "updated_at": routed})
            if len(batch) == 20000:
                connection.execute(insert(EvaluationItem), batch)
                connection.commit()
                written += len(batch)
                batch = []
        if batch:
            connection.execute(insert(EvaluationItem), batch)
            written += len(batch)
        connection.execute(text("ANALYZE"))
        connection.commit()
    finally:
        connection.close()
    print(f"loaded {written:,} items in {time.perf_counter() - began:.1f} s (not part of the measurement)")
    engine.dispose()


def measure(url: str, district: str, period: str, repeat: int) -> list[float]:
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    start, end = month_period(period)
    timings = []
    with sessions() as session:
        for run in range(repeat + 1):
            began = time.perf_counter()
            found = tallies(session, district_code=district, prefix=district[:6], start=start, end=end, by="unit",
                            max_ratings_per_rater=5)
            elapsed = (time.perf_counter() - began) * 1000
            if run:  # the first run warms the caches
                timings.append(elapsed)
    routed = sum(t.routed for t in found.values())
    print(f"district {district}, {period}: {len(found)} units, {routed:,} items routed in the month")
    engine.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--district", default="320113000000")
    parser.add_argument("--period", default="2026-06")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="measure the database of an earlier run again")
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        path = REPO_ROOT / "var" / "bench-rates.db"
        path.parent.mkdir(exist_ok=True)
        if not args.reuse:
            Path(path).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    if not args.reuse:
        migrate("evaluation", url)
        load(url, args.items)
    timings = measure(url, args.district, args.period, args.repeat)
    print(f"district-wide month, {args.repeat} runs after a warm-up: min {min(timings):.1f} ms, "
          f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
