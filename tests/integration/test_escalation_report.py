"""`sanji report` on a database holding the hand-counted fixture: every figure in the CSV files matches the hand
counts, and the HTML page shows them as charts without any script."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy.orm import Session

from sanji import cli
from shared.db import create_db_engine
from tests.support.escalation_report_fixture import EXPECTED, PERIOD, orm_rows

pytestmark = pytest.mark.integration


def read_csv(path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def report_dir(database_url, tmp_path, monkeypatch):
    engine = create_db_engine(database_url)
    with Session(engine) as session:
        session.add_all(orm_rows())
        session.commit()
    engine.dispose()
    monkeypatch.setenv("SANJI_ESCALATION_DATABASE_URL", database_url)
    out = tmp_path / "report"
    assert cli.main(["report", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out)]) == 0
    return out


def test_the_report_figures_match_the_hand_counts(report_dir):
    for dimension in ("class", "cause", "matter", "department", "unit", "level"):
        rows = read_csv(report_dir / f"reports_by_{dimension}.csv")
        assert {row[dimension]: int(row["reports"]) for row in rows} == EXPECTED[f"by_{dimension}"], dimension
    level_order = [row["level"] for row in read_csv(report_dir / "reports_by_level.csv")]
    assert level_order == ["community", "street", "district"]

    rates = {row["metric"]: (int(row["numerator"]), int(row["denominator"]), row["rate"])
             for row in read_csv(report_dir / "rates.csv")}
    assert rates["item_overdue_rate"] == (*EXPECTED["item_overdue"], "0.5000")
    assert rates["report_overdue_rate"] == (*EXPECTED["report_overdue"], "0.6667")
    assert rates["internal_loop_resolution_rate"] == (*EXPECTED["loop"], "0.5000")

    escalations = {row["kind"]: int(row["count"]) for row in read_csv(report_dir / "escalations.csv")}
    assert {k: v for k, v in escalations.items() if not k.startswith("escalation_ordered_from:")} == (
        EXPECTED["escalations"])
    assert {k.split(":")[1]: v for k, v in escalations.items() if k.startswith("escalation_ordered_from:")} == (
        EXPECTED["orders_by_level"])
    loops = {row["community"]: (int(row["resolved_in_loop"]), int(row["loops_ended"]))
             for row in read_csv(report_dir / "internal_loop_by_community.csv")}
    assert loops == EXPECTED["loop_by_community"]
    summary = {row["metric"]: row["value"] for row in read_csv(report_dir / "summary.csv")}
    assert (summary["reports_filed"], summary["reports_reopened"], summary["escalation_orders"]) == ("6", "1", "4")


def test_the_page_shows_the_figures_as_charts_with_names_not_codes(report_dir):
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 10 and "<script" not in page and "http" not in page.split("<body>")[1]
    assert "2026-12-01 至 2026-12-31" in page
    for shown in ("居住证办理", "公安", "迈皋桥街道", "部门之间推诿", "复杂类", "50.0%", "66.7%", "社区内部循环解决率"):
        assert shown in page, shown
    by_matter = read_csv(report_dir / "reports_by_matter.csv")
    assert by_matter[:2] == [{"matter": "none", "name": "—", "reports": "2"},            # most first, then by code
                             {"matter": "residence-permit", "name": "居住证办理", "reports": "2"}]


def test_bad_dates_are_one_line_not_a_traceback(capsys, tmp_path):
    assert cli.main(["report", "--from", "2026-12-31", "--to", "2026-12-01", "--out", str(tmp_path)]) == 1
    assert cli.main(["report", "--from", "December", "--to", "2026-12-01", "--out", str(tmp_path)]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["sanji: --to is before --from",
                      "sanji: --from must be a date like 2026-11-30, not 'December'"]
