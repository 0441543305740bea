"""The development clock hook (SANJI_CLOCK_OFFSET_FILE): the chaos suite jumps the services' clock with it, and
the production profile refuses to start with it set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.clock import SystemClock
from shared.config import Settings
from shared.production import production_problems


def test_the_clock_runs_ahead_by_the_seconds_in_the_file_and_follows_a_change(tmp_path, monkeypatch):
    offset = tmp_path / "offset"
    offset.write_text("86400")
    clock = SystemClock(str(offset))
    assert abs(clock.now() - (datetime.now(UTC) + timedelta(days=1))) < timedelta(seconds=5)
    offset.write_text("-3600")
    monkeypatch.setattr(clock, "_checked_at", 0.0)  # past the half-second re-read interval
    assert abs(clock.now() - (datetime.now(UTC) - timedelta(hours=1))) < timedelta(seconds=5)


def test_without_the_variable_the_clock_is_the_machines(monkeypatch):
    monkeypatch.delenv("SANJI_CLOCK_OFFSET_FILE", raising=False)
    assert abs(SystemClock().now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_an_unreadable_offset_file_means_no_offset(tmp_path):
    (tmp_path / "offset").write_text("not a number")
    assert abs(SystemClock(str(tmp_path / "offset")).now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_production_refuses_the_clock_hook(tmp_path, monkeypatch):
    monkeypatch.setenv("SANJI_CLOCK_OFFSET_FILE", str(tmp_path / "offset"))
    problems = production_problems("routing", Settings())
    assert any("SANJI_CLOCK_OFFSET_FILE" in problem for problem in problems)
    monkeypatch.delenv("SANJI_CLOCK_OFFSET_FILE")
    assert not any("SANJI_CLOCK_OFFSET_FILE" in problem for problem in production_problems("routing", Settings()))
