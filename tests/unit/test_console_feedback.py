"""The rules of the console's 三率 and oversight pages (services/console/feedback.py) and the rate chart: the
month asked for, the forms turned into API bodies or into messages, and what counts as overdue."""

from __future__ import annotations

from datetime import UTC, datetime

from werkzeug.datastructures import MultiDict

from services.console import feedback
from services.console.charts import rate_chart
from shared.workdays import SHANGHAI

NOW = datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)


def test_the_month_is_this_month_by_default_in_shanghai_time():
    assert feedback.parse_period("", NOW) == ("2026-12", None)
    assert feedback.parse_period(None, datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == ("2027-01", None)
    assert feedback.parse_period(" 2026-11 ", NOW) == ("2026-11", None)
    for bad in ("2026-13", "2026-1", "26-12", "2026-12-01", "十二月"):
        period, error = feedback.parse_period(bad, NOW)
        assert error and "年-月" in error, bad
    assert feedback.month_label("2026-03") == "2026年3月"


def test_a_district_ranks_streets_and_communities_a_street_its_communities():
    assert feedback.ranking_levels("district") == ["street", "community"]
    assert feedback.ranking_levels("street") == ["community"]
    assert feedback.ranking_levels("community") == []


def test_only_raised_flags_are_listed_with_their_names():
    rows = [{"key": "a", "flags": {"return_reset": 0, "reopened": 0}},
            {"key": "b", "flags": {"return_reset": 2, "busy_rater_ratings": 7, "reopened": 0}}]
    assert feedback.flagged(rows) == [(rows[1], [(feedback.FLAGS["return_reset"], 2),
                                                 (feedback.FLAGS["busy_rater_ratings"], 7)])]


def test_an_appeal_decision_needs_a_choice_and_a_reason():
    body, errors = feedback.decision_body(MultiDict({"decision": "uphold", "reason": "  "}), "appeal-1")
    assert errors == {"appeal-1-reason": "请填写裁决理由"}
    body, errors = feedback.decision_body(MultiDict({"reason": "x"}), "appeal-1")
    assert set(errors) == {"appeal-1-decision"}
    body, errors = feedback.decision_body(MultiDict({"decision": "reject", "reason": " 与服务有关 "}), "appeal-1")
    assert (body, errors) == ({"upheld": False, "reason": "与服务有关"}, {})


def test_a_closure_with_an_explanation_needs_its_reason():
    _, errors = feedback.closure_body(MultiDict({"result": "explained"}), "close-r")
    assert errors == {"close-r-reason": "“解释说明”和“无法整改”须填写理由"}
    _, errors = feedback.closure_body(MultiDict({"result": "done"}), "close-r")
    assert set(errors) == {"close-r-result"}
    body, errors = feedback.closure_body(MultiDict({"result": "rectified"}), "close-r")
    assert (body, errors) == ({"result": "rectified", "reason": ""}, {})
    _, errors = feedback.callback_body(MultiDict({"outcome": "maybe"}), "callback-r")
    assert set(errors) == {"callback-r-outcome"}


def test_an_order_names_a_unit_of_the_jurisdiction_and_a_due_date_of_1_to_30_working_days():
    form = {"subject_type": "item", "subject_id": "i-1", "target_unit_code": "320113003021", "what": "说明",
            "due_in_working_days": "3"}
    body, errors = feedback.order_body(MultiDict(form), {"320113003021"})
    assert errors == {} and body["due_in_working_days"] == 3
    _, errors = feedback.order_body(MultiDict({**form, "target_unit_code": "320102009000", "what": "",
                                               "due_in_working_days": "31"}), {"320113003021"})
    assert set(errors) == {"target_unit_code", "what", "due_in_working_days"}
    _, errors = feedback.order_body(MultiDict({**form, "subject_type": "case"}), {"320113003021"})
    assert set(errors) == {"subject"}
    _, errors = feedback.answer_body(MultiDict({"answer": "x" * 2001}), "answer-o")
    assert errors == {"answer-o-answer": "不超过 2000 字"}


def test_a_rectification_is_overdue_once_warned_or_past_its_deadline():
    open_one = {"state": "open", "deadline": "2026-12-31T09:00:00Z"}
    assert not feedback.is_overdue(open_one, datetime(2026, 12, 31, 8, 0, tzinfo=SHANGHAI))
    assert feedback.is_overdue(open_one, NOW)
    assert feedback.is_overdue({"state": "warned", "deadline": "2027-01-31T09:00:00Z"}, NOW)
    assert not feedback.is_overdue({"state": "closed", "deadline": "2026-01-31T09:00:00Z"}, NOW)


def test_refusals_are_said_in_chinese():
    assert feedback.refusal_text("callback_missing", 409) == "请先登记对群众的回访，再办结整改"
    assert feedback.refusal_text("something_new", 403) == "不在您的辖区或权限范围内"


def test_the_rate_chart_names_each_bar_and_says_when_a_rate_has_no_data():
    svg = str(rate_chart("2026年12月 各单位三率", [("迈皋桥街道", [("响应率", 0.5), ("办结率", 1.0),
                                                                   ("满意率", None)])]))
    assert svg.startswith('<svg class="chart" role="img" aria-label="2026年12月 各单位三率"')
    assert "<title>2026年12月 各单位三率</title>" in svg
    assert "迈皋桥街道" in svg and "50%" in svg and "100%" in svg and "无数据" in svg
    assert "暂无数据" in str(rate_chart("空", []))
    assert "&lt;b&gt;" in str(rate_chart("t", [("<b>", [("响应率", 0.1)])]))


def test_a_closure_may_name_the_coded_reason_that_fits_its_result():
    body, errors = feedback.closure_body(MultiDict({"result": "cannot_rectify", "reason": "须区里审批",
                                                    "reason_code": "beyond_authority"}), "close-r")
    assert (body, errors) == ({"result": "cannot_rectify", "reason": "须区里审批",
                               "reason_code": "beyond_authority"}, {})
    _, errors = feedback.closure_body(MultiDict({"result": "explained", "reason": "已说明",
                                                 "reason_code": "beyond_authority"}), "close-r")
    assert errors == {"close-r-reason_code": "所选理由与整改结果不对应"}
    _, errors = feedback.closure_body(MultiDict({"result": "rectified", "reason_code": "misunderstanding"}),
                                      "close-r")
    assert set(errors) == {"close-r-reason_code"}

