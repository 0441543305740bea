"""`make bench-retention`: do the tables the retention job prunes stay flat over a long run under steady load?

How it measures (printed with the figures; the last line printed is one JSON object):
- The stack (intake, routing, notification; one process each, `sanji serve`, on PostgreSQL, in a vhost and
  database of its own) runs with short retention: published outbox rows RETENTION s, processed-message records
  1.5 x RETENTION, finished deliveries and inbox messages 2 x RETENTION, a retention pass every INTERVAL s in
  each service. The production defaults are days; only the time scale differs.
- A kiosk load at a fixed rate (open loop: arrivals do not slow down when answers do) for the whole run.
- Every SAMPLE s, each table's row count (exact) and on-disk size (`pg_total_relation_size`, indexes and TOAST
  included), by bench/table_sizes.py.
- Warm-up: the longest retention plus two intervals, after which every pruned kind has reached its steady state
  (rows older than their retention exist and are being deleted). The samples after warm-up are cut into thirds.
- Verdict per pruned table and measure: flat when the last third's maximum is at most the first third's
  maximum x 1.2. The run is "flat" when every pruned table is flat in rows and in bytes. The business tables
  (cases, items, their history) are shown as the control: they grow with the load, as they must.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import datetime

from sqlalchemy import create_engine, text

from bench.load import open_loop
from bench.stack import REPO, Stack
from bench.table_sizes import table_sizes
from shared.db import normalise_url

PRUNED = ("outbox_messages", "processed_messages", "notification_deliveries", "notification_attempts",
          "notification_inbox")
CONTROL = ("intake_cases", "routing_items", "routing_item_history")
TOLERANCE = 1.2
SECONDS_PER_DAY = 86400.0


def say(message: str) -> None:
    print(f"[bench-retention {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def delivery_statuses(engine) -> dict[str, int]:
    """Notification's deliveries by status: ``pending`` ones are still owed (never pruned), so a growing pending
    count means the load outran the sweep, not that retention failed."""
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT status, COUNT(*) FROM notification_deliveries GROUP BY status"))
                    .all())


def retention_env(retention_s: float, interval_s: float) -> dict[str, str]:
    def days(seconds: float) -> str:
        return repr(seconds / SECONDS_PER_DAY)

    return {
        # As bench/run.py: the bench measures the system, not an SMS provider's contract or the night-time hold.
        "SANJI_NOTIFICATION_QUIET_HOURS": "off",
        "SANJI_NOTIFICATION_RATE_LIMITS": "sms=100000,email=100000,webhook=100000",
        "SANJI_NOTIFICATION_SWEEP_SECONDS": "0.5",
        "SANJI_RETENTION_OUTBOX_DAYS": days(retention_s),
        "SANJI_RETENTION_PROCESSED_DAYS": days(1.5 * retention_s),
        "SANJI_NOTIFICATION_RETENTION_DAYS": days(2 * retention_s),
        "SANJI_NOTIFICATION_INBOX_RETENTION_DAYS": days(2 * retention_s),
        "SANJI_RETENTION_INTERVAL_SECONDS": str(interval_s),
    }


def verdict(series: list[dict], warmup_s: float, tolerance: float = TOLERANCE,
            tables: tuple[str, ...] = PRUNED) -> dict:
    """Per table and measure (rows, bytes): the first and last third's maxima after warm-up, their ratio, flat or
    not. ``series``: samples ``{"t": seconds since the start, "sizes": {table: {"rows", "bytes"}}}``."""
    steady = [sample for sample in series if sample["t"] >= warmup_s]
    if len(steady) < 3:
        return {"flat": False, "reason": f"only {len(steady)} sample(s) after the {warmup_s:.0f}s warm-up: run longer",
                "tables": {}}
    third = len(steady) // 3
    first, last = steady[:third], steady[-third:]
    tables_report, flat = {}, True
    for table in tables:
        report = {}
        for measure in ("rows", "bytes"):
            first_max = max(sample["sizes"][table][measure] or 0 for sample in first)
            last_max = max(sample["sizes"][table][measure] or 0 for sample in last)
            ok = last_max <= first_max * tolerance
            flat = flat and ok
            report[measure] = {"first_third_max": first_max, "last_third_max": last_max,
                               "ratio": round(last_max / first_max, 3) if first_max else None, "flat": ok}
        tables_report[table] = report
    result = {"flat": flat, "samples_after_warmup": len(steady), "per_third": third, "tables": tables_report}
    if all("deliveries" in sample for sample in steady):
        # Pending deliveries are owed, never pruned: a growing count is a pipeline that fell behind the load.
        first_pending = max(sample["deliveries"].get("pending", 0) for sample in first)
        last_pending = max(sample["deliveries"].get("pending", 0) for sample in last)
        result["pending_deliveries"] = {"first_third_max": first_pending, "last_third_max": last_pending,
                                        "kept_up": last_pending <= max(first_pending * tolerance, 50)}
    growing = [f"{table} {measure}" for table, report in tables_report.items()
               for measure, figures in report.items() if not figures["flat"]]
    if growing:
        result["reason"] = "growing: " + ", ".join(growing)
        if not result.get("pending_deliveries", {}).get("kept_up", True):
            result["reason"] += ("; the load outran the notification sweep (pending deliveries, which are owed and "
                                 "never pruned, grew): run at a lower --rate or on a quieter machine")
    return result


def print_series(series: list[dict], tables: tuple[str, ...]) -> None:
    header = "t_s " + " ".join(f"{table}(rows/kB)" for table in tables)
    print(header, file=sys.stderr)
    for sample in series:
        cells = [f"{sample['sizes'][t]['rows']}/{(sample['sizes'][t]['bytes'] or 0) // 1024}" for t in tables]
        print(f"{sample['t']:>4.0f} " + " ".join(cells), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="length of the run under load (default 300)")
    parser.add_argument("--rate", type=float, default=2.0, help="kiosk submissions per second (default 2)")
    parser.add_argument("--retention", type=float, default=30.0,
                        help="published outbox retention in seconds; the other kinds are 1.5x and 2x (default 30)")
    parser.add_argument("--interval", type=float, default=10.0, help="retention pass interval, seconds (default 10)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    args = parser.parse_args()
    warmup_s = 2 * args.retention + 2 * args.interval
    if args.seconds < warmup_s + 3 * args.sample:
        parser.error(f"--seconds must leave at least three samples after the {warmup_s:.0f}s warm-up")
    report: dict = {"started": datetime.now().isoformat(timespec="seconds"),
                    "method": __doc__.split("\n\n", 1)[1].strip(),
                    "settings": {"seconds": args.seconds, "rate": args.rate, "retention_s": args.retention,
                                 "interval_s": args.interval, "sample_s": args.sample, "warmup_s": warmup_s,
                                 "tolerance": TOLERANCE}}
    stack = Stack("retention", replicas={"intake": 1, "routing": 1, "notification": 1},
                  extra_env=retention_env(args.retention, args.interval)).create()
    series: list[dict] = []
    try:
        say("starting intake, routing and notification on PostgreSQL with short retention ...")
        stack.start()
        engine = create_engine(normalise_url(stack.database_url))
        loaded = {}

        def load():
            loaded["result"] = open_loop([stack.url("intake")], seconds=args.seconds, rate=args.rate)

        say(f"{args.rate:g} submissions/s for {args.seconds:.0f}s; sampling every {args.sample:g}s "
            f"(warm-up {warmup_s:.0f}s) ...")
        loader = threading.Thread(target=load, daemon=True)
        start = time.monotonic()
        loader.start()
        while time.monotonic() - start < args.seconds:
            t = time.monotonic() - start
            sizes = table_sizes(engine, list(PRUNED + CONTROL))
            statuses = delivery_statuses(engine)
            series.append({"t": round(t, 1), "sizes": sizes, "deliveries": statuses})
            say(f"t={t:>4.0f}s " + " ".join(f"{name}={sizes[name]['rows']}" for name in PRUNED + CONTROL[:1])
                + f" deliveries={statuses}")
            time.sleep(max(0.0, args.sample - (time.monotonic() - start - t)))
        loader.join(timeout=60)
        engine.dispose()
        result = loaded.get("result")
        report["load"] = {"submitted": len(result.submissions) if result else None,
                          "acknowledged": len(result.acknowledged) if result else None}
        report["liveness"] = {name: proc["running"] for name, proc in stack.liveness().items()}
    finally:
        stack.destroy()

    report["series"] = series
    report["verdict"] = verdict(series, warmup_s)
    print_series(series, PRUNED + CONTROL)
    for table, measures in report["verdict"]["tables"].items():
        print(f"{table}: rows {measures['rows']['first_third_max']} -> {measures['rows']['last_third_max']} "
              f"({'flat' if measures['rows']['flat'] else 'GROWING'}), bytes {measures['bytes']['first_third_max']} "
              f"-> {measures['bytes']['last_third_max']} ({'flat' if measures['bytes']['flat'] else 'GROWING'})",
              file=sys.stderr)
    control = {table: [series[0]["sizes"][table]["rows"], series[-1]["sizes"][table]["rows"]]
               for table in CONTROL} if series else {}
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"retention-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    say(f"report written to {path.relative_to(REPO)}")
    summary = {"flat": report["verdict"]["flat"], "reason": report["verdict"].get("reason"),
               **report["settings"], **report.get("load", {}),
               "pending_deliveries": report["verdict"].get("pending_deliveries"),
               "pruned_rows_last_third_max": {table: m["rows"]["last_third_max"]
                                              for table, m in report["verdict"]["tables"].items()},
               "pruned_ratio_rows": {table: m["rows"]["ratio"] for table, m in report["verdict"]["tables"].items()},
               "pruned_ratio_bytes": {table: m["bytes"]["ratio"] for table, m in report["verdict"]["tables"].items()},
               "control_rows_first_last": control}
    print(json.dumps(summary))
    return 0 if report["verdict"]["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
