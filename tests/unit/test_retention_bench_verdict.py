"""bench/retention.py's verdict: flat when the last third's maximum after warm-up is at most 1.2 times the first
third's, per pruned table, in rows and in bytes; it names what grew, and a pipeline that fell behind."""

from __future__ import annotations

from bench.retention import PRUNED, verdict


def series(rows_at, bytes_at=lambda t: 1000, pending_at=lambda t: 0, seconds=300, step=10):
    return [{"t": t, "sizes": {table: {"rows": rows_at(t), "bytes": bytes_at(t)} for table in PRUNED},
             "deliveries": {"sent": 10, "pending": pending_at(t)}} for t in range(0, seconds, step)]


def test_sizes_that_level_off_after_the_warm_up_are_flat():
    result = verdict(series(lambda t: min(t, 60) * 2 + t % 3), warmup_s=80)
    assert result["flat"] is True and "reason" not in result
    assert result["tables"]["outbox_messages"]["rows"]["first_third_max"] == 122
    assert result["pending_deliveries"]["kept_up"] is True


def test_rows_that_keep_growing_are_named():
    result = verdict(series(lambda t: t * 2), warmup_s=80)
    assert result["flat"] is False
    assert "outbox_messages rows" in result["reason"] and "bytes" not in result["reason"]


def test_bytes_growing_with_flat_rows_fail_too():
    result = verdict(series(lambda t: 100, bytes_at=lambda t: 1000 + 50 * t), warmup_s=80)
    assert result["flat"] is False and "processed_messages bytes" in result["reason"]


def test_a_growing_backlog_of_pending_deliveries_is_told_apart():
    result = verdict(series(lambda t: 100 + (3 * t if t > 150 else 0), pending_at=lambda t: 3 * t), warmup_s=80)
    assert result["pending_deliveries"]["kept_up"] is False
    assert "outran the notification sweep" in result["reason"]


def test_too_few_samples_after_the_warm_up_is_no_verdict():
    result = verdict(series(lambda t: 1, seconds=100), warmup_s=80)
    assert result["flat"] is False and "run longer" in result["reason"]
