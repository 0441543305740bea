"""好差评 pages, the pure part (services/console/kiosk/rating.py): the evaluation service's refusals in Chinese, the
items and reasons a form shows, reading the form as the evaluation service will check it, and the grant a lookup
gives (only for its purpose, only for minutes, never forged)."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from services.console.kiosk import rating
from services.console.kiosk.rating_pages import lookup_rating_url
from services.evaluation.api import evaluation_openapi
from services.evaluation.settings import load_reasons
from shared.config import REPO_ROOT

CATALOGUE_DIR = REPO_ROOT / "catalogue" / "nanjing"
REASONS = [rating.Reason(code, name, kind) for code, name, kind in load_reasons(CATALOGUE_DIR).options()]
VIEW = {
    "case_id": "c-1", "case_number": "SJ20261130-0A1B2C3D4E5F", "completed_at": "2026-11-30T02:00:00Z",
    "window_closes_at": "2026-12-30T02:00:00Z", "levels": ["非常满意"],
    "reasons": [{"code": r.code, "name": r.name, "kind": r.kind} for r in REASONS],
    "items": [
        {"item_id": "i-permit", "matter_code": "residence-permit", "status": "resolved",
         "ratings": [{"channel": "kiosk", "level": "satisfied"}, {"channel": "sms_link", "level": "dissatisfied"}]},
        {"item_id": "i-birth", "matter_code": "birth-registration-proof", "status": "rejected", "ratings": []},
        {"item_id": "i-open", "matter_code": "no-such-matter", "status": "accepted", "ratings": []},
    ],
}
NAMES = {"residence-permit": "居住证办理", "birth-registration-proof": "生育登记（生育证明）"}


def items(channel="sms_link"):
    return rating.page_items(VIEW, NAMES, channel)


def test_every_refusal_the_evaluation_api_documents_for_ratings_has_a_chinese_message():
    document = json.dumps(evaluation_openapi())
    for reason in ("invalid_link", "link_expired", "unknown_case", "unknown_item", "item_not_completed",
                   "rating_window_closed", "already_rated", "item_facts_pending", "community_forbidden",
                   "outside_jurisdiction", "unknown_level", "unknown_reason", "duplicate_reason"):
        assert reason in document
        assert rating.refusal_message(reason) == rating.REFUSALS[reason]
        assert not any("a" <= ch <= "z" for ch in rating.REFUSALS[reason])  # Chinese, no machine words
    assert "过期" in rating.refusal_message("link_expired")
    assert "评价期限" in rating.refusal_message("rating_window_closed")
    assert "尚未办结" in rating.refusal_message("item_not_completed")
    assert rating.refusal_message("something_new") == rating.refusal_message(None) == rating.DEFAULT_REFUSAL


def test_the_form_lists_items_by_matter_name_rateable_once_final_with_this_channel_s_rating():
    permit, birth, still_open = items()
    assert (permit.matter_name, permit.rateable, permit.current_level) == ("居住证办理", True, "不满意")
    assert (birth.matter_name, birth.rateable, birth.current_level) == ("生育登记（生育证明）", True, None)
    assert (still_open.matter_name, still_open.rateable) == ("办理事项", False)
    assert items("kiosk")[0].current_level == "满意"
    assert permit.field_id == "r-i-permit"
    assert [r.kind for r in rating.reasons_of(VIEW)][0] == "praise"
    assert {"办理快捷", "推诿扯皮"} <= {r.name for r in rating.reasons_of(VIEW)}


def test_levels_are_read_by_code_or_by_name():
    assert [code for code, _ in rating.LEVELS] == ["very_satisfied", "satisfied", "basically_satisfied",
                                                  "dissatisfied", "very_dissatisfied"]
    assert rating.level_code("非常不满意") == "very_dissatisfied"
    assert rating.level_code("satisfied") == "satisfied"
    assert rating.level_code("有点满意") is None


def test_a_good_form_becomes_one_submission_per_rated_item():
    form = MultiDict([("level-i-permit", "very_dissatisfied"), ("reason-i-permit", "slow"),
                      ("reason-i-permit", "attitude"), ("comment-i-permit", "  等了三个小时 "),
                      ("level-i-birth", ""), ("csrf_token", "x")])
    result = rating.read_rating_form(form, items(), REASONS, "lookup")
    assert result.errors == {}
    assert result.submissions == [{"item_id": "i-permit", "level": "very_dissatisfied",
                                   "reason_codes": ["slow", "attitude"], "comment": "等了三个小时",
                                   "channel": "lookup"}]


@pytest.mark.parametrize(("fields", "field", "words"), [
    ([], "_form", "至少为一个事项"),
    ([("level-i-permit", "有点满意")], "r-i-permit", "评价等级"),
    ([("reason-i-permit", "slow")], "r-i-permit", "请为“居住证办理”选择评价等级"),
    ([("level-i-permit", "dissatisfied"), ("reason-i-permit", "quick")], "r-i-permit-reasons", "“办理快捷”是好评原因"),
    ([("level-i-permit", "satisfied"), ("reason-i-permit", "bogus")], "r-i-permit-reasons", "请从列出的原因中选择"),
    ([("level-i-permit", "satisfied"), ("reason-i-permit", "quick"), ("reason-i-permit", "quick")],
     "r-i-permit-reasons", "请从列出的原因中选择"),
    ([("level-i-permit", "satisfied"), ("comment-i-permit", "慢" * 501)], "r-i-permit-comment",
     "最多500字，现在是501字"),
    ([("level-i-open", "satisfied")], "r-i-open", "尚未办结"),
])
def test_a_bad_form_is_refused_next_to_the_field_and_nothing_is_sent(fields, field, words):
    form = MultiDict([*fields, ("level-i-birth", "satisfied")] if field != "_form" else fields)
    result = rating.read_rating_form(form, items(), REASONS, "sms_link")
    assert words in result.errors[field]
    assert result.submissions == []   # one bad item: nothing is sent, not even the good one


def test_praise_goes_with_basically_satisfied_and_complaints_with_any_level():
    form = MultiDict([("level-i-permit", "基本满意"), ("reason-i-permit", "quick"), ("reason-i-permit", "slow")])
    result = rating.read_rating_form(form, items(), REASONS, "kiosk")
    assert result.errors == {} and result.submissions[0]["level"] == "basically_satisfied"
    assert result.values["i-permit"] == {"level": "basically_satisfied", "reasons": ["quick", "slow"], "comment": ""}


def test_a_grant_names_its_case_for_its_purpose_only_and_for_minutes():
    signer = rating.grant_signer("a-console-secret-of-at-least-32-bytes!")
    grant = rating.make_grant(signer, "lookup", "SJ20261130-0A1B2C3D4E5F", now=1000)
    assert rating.read_grant(signer, grant, "lookup", 1800, now=1000 + 1799) == "SJ20261130-0A1B2C3D4E5F"
    assert rating.read_grant(signer, grant, "lookup", 1800, now=1000 + 1801) is None
    assert rating.read_grant(signer, grant, "kiosk-320113003021", 1800, now=1001) is None
    other = rating.grant_signer("another-console-secret-of-32-bytes!!")
    assert rating.read_grant(other, grant, "lookup", 1800, now=1001) is None
    forged = grant.replace("SJ20261130-0A1B2C3D4E5F", "SJ20261130-FFFFFFFFFFFF")
    assert rating.read_grant(signer, forged, "lookup", 1800, now=1001) is None
    assert rating.read_grant(signer, None, "lookup", 1800) is None
    assert rating.read_grant(signer, "garbage", "lookup", 1800) is None


def test_the_lookup_offers_a_rating_only_for_a_completed_case():
    secret = "a-console-secret-of-at-least-32-bytes!"
    done = {"completed_at": "2026-11-30T02:00:00Z", "items": [{"status": "resolved"}, {"status": "rejected"}]}
    url = lookup_rating_url(secret, "SJ20261130-0A1B2C3D4E5F", done)
    assert url.startswith("/lookup/rate?g=") and "|" not in url
    assert lookup_rating_url(secret, "SJ20261130-0A1B2C3D4E5F", {**done, "completed_at": None}) is None
    assert lookup_rating_url(secret, "SJ20261130-0A1B2C3D4E5F",
                             {**done, "items": [{"status": "accepted"}]}) is None
