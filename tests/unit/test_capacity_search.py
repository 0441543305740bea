"""The bench's open-loop capacity search (bench/run.py ``open_loop_capacity``) against a fake system whose true
capacity is known: it reports the highest rate it saw sustained, within 25 % of the lowest it saw fail."""

from __future__ import annotations

import pytest

from bench import run


@pytest.fixture
def system(monkeypatch):
    """A fake stack that sustains every rate up to ``limit``; records the rates tried."""
    tried: list[float] = []
    state = {"limit": 0.0}

    def capacity_step(stack, rate, seconds):
        tried.append(rate)
        ok = rate <= state["limit"]
        return {"rate": rate, "routed_p99_ms": 50.0 if ok else 150.0, "errors": 0, "growing": [], "sustained": ok}

    monkeypatch.setattr(run, "capacity_step", capacity_step)
    monkeypatch.setattr(run, "settle", lambda stack: None)
    monkeypatch.setattr(run, "say", lambda message: None)

    def search(limit: float, closed_loop_rate: float):
        state["limit"] = limit
        tried.clear()
        return run.open_loop_capacity(object(), closed_loop_rate, seconds=1), list(tried)

    return search


@pytest.mark.parametrize(("limit", "closed_loop_rate"), [(4.2, 10.9), (2.6, 10.9), (30.0, 37.7), (9.0, 12.0)])
def test_the_figure_is_sustained_and_within_a_quarter_of_a_rate_that_failed(system, limit, closed_loop_rate):
    found, tried = system(limit, closed_loop_rate)
    figure = found["sustainable_cases_per_s"]
    assert 0 < figure <= limit
    failed_above = [rate for rate in tried if rate > limit]
    assert failed_above, tried
    assert min(failed_above) <= figure * 1.25 or len(tried) == 8, tried


def test_a_system_that_sustains_nothing_reports_zero(system):
    found, tried = system(0.0, 10.0)
    assert found["sustainable_cases_per_s"] == 0.0
    assert min(tried) <= 1.0, tried
