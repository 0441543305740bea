"""The analysis on the hand-counted fixture, without a database: each figure equals the count made by hand."""

from __future__ import annotations

from datetime import date

import pytest

from services.escalation.analysis import compute_figures
from tests.support.escalation_report_fixture import EXPECTED, analysis_rows


@pytest.fixture(scope="module")
def figures():
    reports, items, actions = analysis_rows()
    return compute_figures(reports=reports, items=items, actions=actions, date_from=date(2026, 12, 1),
                           date_to=date(2026, 12, 31))


def test_reports_are_counted_by_each_dimension(figures):
    assert figures.reports_total == EXPECTED["reports_filed"]
    assert figures.reports_reopened == EXPECTED["reports_reopened"]
    for dimension in ("class", "cause", "matter", "department", "unit", "level"):
        assert dict(figures.by_dimension[dimension]) == EXPECTED[f"by_{dimension}"], dimension
    assert figures.by_dimension["class"][:2] == [("complex", 2), ("simple", 2)]  # most first, ties by code


def test_the_rates(figures):
    assert (figures.item_overdue.numerator, figures.item_overdue.denominator) == EXPECTED["item_overdue"]
    assert (figures.report_overdue.numerator, figures.report_overdue.denominator) == EXPECTED["report_overdue"]
    assert (figures.loop.numerator, figures.loop.denominator) == EXPECTED["loop"]
    assert {code: (rate.numerator, rate.denominator) for code, rate in figures.loop_by_community} == (
        EXPECTED["loop_by_community"])
    assert figures.loop.value == 0.5


def test_the_escalation_counts(figures):
    assert dict(figures.escalations) == EXPECTED["escalations"]
    assert dict(figures.orders_by_level) == EXPECTED["orders_by_level"]


def test_an_empty_period_has_no_rate_rather_than_zero():
    empty = compute_figures(reports=[], items=[], actions=[], date_from=date(2027, 1, 1), date_to=date(2027, 1, 31))
    assert (empty.reports_total, empty.loop.value, empty.item_overdue.value) == (0, None, None)
    with pytest.raises(ValueError):
        compute_figures(reports=[], items=[], actions=[], date_from=date(2027, 1, 2), date_to=date(2027, 1, 1))
