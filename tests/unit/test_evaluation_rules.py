"""The evaluation rules on their own: ratings, links, rectification clocks, appeals, findings, orders, rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.evaluation import domain
from services.evaluation.adapters.orm import EvaluationItem
from services.evaluation.facts import EvaluationRules, apply
from services.evaluation.settings import SettingsError, link_key, load_reasons, settings_from_config
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.events import ItemClaimedV1, ItemResolvedV1, ItemReturnedV1, ItemRoutedV1
from shared.rating_links import sign_rating_link, verify_rating_link
from shared.refusal import Refusal
from shared.workdays import SHANGHAI, WorkdayCalendar

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
SETTINGS = domain.EvaluationSettings()
CATALOGUE_DIR = REPO_ROOT / "catalogue" / "nanjing"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(CATALOGUE_DIR)


@pytest.fixture(scope="module")
def calendar():
    return WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml")


def completed(at=NOW - timedelta(hours=1), status="resolved"):
    return domain.RatedItem(item_id="i", case_id="c", community_code="320113003021", unit_code="320113003000",
                            status=status, case_completed_at=at)


def reason_of(call) -> str:
    with pytest.raises(Refusal) as caught:
        call()
    return caught.value.reason


# ── ratings ──


def test_levels_by_chinese_name_or_code_and_nothing_else():
    assert domain.parse_level("非常不满意") is domain.RatingLevel.VERY_DISSATISFIED
    assert domain.parse_level("basically_satisfied") is domain.RatingLevel.BASICALLY_SATISFIED
    assert reason_of(lambda: domain.parse_level("有点满意")) == "unknown_level"


def test_a_first_rating_is_new_a_change_within_a_day_replaces_a_later_one_is_refused():
    assert domain.decide_rating(completed(), None, now=NOW, settings=SETTINGS) == "new"
    prior = domain.PriorRating("r1", NOW - timedelta(hours=23))
    assert domain.decide_rating(completed(), prior, now=NOW, settings=SETTINGS) == "replace"
    late = domain.PriorRating("r1", NOW - timedelta(hours=25))
    assert reason_of(lambda: domain.decide_rating(completed(), late, now=NOW, settings=SETTINGS)) == "already_rated"


def test_only_completed_items_within_the_window_are_rated():
    assert reason_of(lambda: domain.decide_rating(None, None, now=NOW, settings=SETTINGS)) == "unknown_item"
    assert reason_of(lambda: domain.decide_rating(completed(at=None, status="accepted"), None, now=NOW,
                                                  settings=SETTINGS)) == "item_not_completed"
    old = completed(at=NOW - timedelta(days=31))
    assert reason_of(lambda: domain.decide_rating(old, None, now=NOW, settings=SETTINGS)) == "rating_window_closed"
    assert domain.decide_rating(completed(at=NOW - timedelta(days=29)), None, now=NOW, settings=SETTINGS) == "new"


def test_reasons_come_from_the_catalogue_and_praise_does_not_go_with_a_bad_rating():
    reasons = load_reasons(CATALOGUE_DIR)
    reasons.check(domain.RatingLevel.SATISFIED, ("quick",))
    reasons.check(domain.RatingLevel.BASICALLY_SATISFIED, ("slow",))
    assert reason_of(lambda: reasons.check(domain.RatingLevel.DISSATISFIED, ("quick",))) == "unknown_reason"
    assert reason_of(lambda: reasons.check(domain.RatingLevel.SATISFIED, ("quick", "quick"))) == "duplicate_reason"


def test_what_a_rating_is_worth_in_the_satisfaction_rate():
    values = [domain.satisfaction_value(level, 0.6) for level in domain.RatingLevel]
    assert values == [1.0, 1.0, 0.6, 0.0, 0.0]
    assert [domain.opens_rectification(level) for level in domain.RatingLevel] == [False, False, False, True, True]


# ── links ──


def test_a_link_names_its_case_until_it_expires_and_cannot_be_forged():
    token = sign_rating_link("k", case_id="case-1", expires_at=NOW + timedelta(days=30))
    assert verify_rating_link("k", token, now=NOW) == "case-1"
    assert reason_of(lambda: verify_rating_link("k", token, now=NOW + timedelta(days=31))) == "link_expired"
    assert reason_of(lambda: verify_rating_link("other", token, now=NOW)) == "invalid_link"
    claims, _, mac = token.partition(".")
    forged = sign_rating_link("k", case_id="case-2", expires_at=NOW).partition(".")[0] + "." + mac
    assert reason_of(lambda: verify_rating_link("k", forged, now=NOW)) == "invalid_link"
    assert reason_of(lambda: verify_rating_link("k", "garbage", now=NOW)) == "invalid_link"


def test_a_rating_page_gets_every_reason_with_its_name_praise_first():
    options = load_reasons(CATALOGUE_DIR).options()
    assert options[0] == ("quick", "办理快捷", "praise")
    assert ("ping-pong", "推诿扯皮", "complaint") in options
    kinds = [kind for _, _, kind in options]
    assert kinds == sorted(kinds, key=lambda kind: kind != "praise") and set(kinds) == {"praise", "complaint"}
    unnamed = domain.ReasonCatalogue(praise=frozenset({"b", "a"}), complaint=frozenset({"c"}), names={"c": "丙"})
    assert unnamed.options() == [("a", "a", "praise"), ("b", "b", "praise"), ("c", "丙", "complaint")]


def test_the_link_key_has_no_default_in_code(tmp_path):
    assert link_key({"SANJI_EVALUATION_LINK_KEY": "set"}) == "set"
    assert link_key({"SANJI_EVALUATION_SETTINGS_FILE": str(REPO_ROOT / "config" / "evaluation-dev.yaml")})
    with pytest.raises(SettingsError):
        link_key({"SANJI_EVALUATION_SETTINGS_FILE": str(tmp_path / "missing.yaml")})


def test_settings_are_checked():
    assert settings_from_config({"SANJI_EVALUATION_RECTIFICATION_DAYS": "10"}).rectification_days == 10
    with pytest.raises(SettingsError):
        settings_from_config({"SANJI_EVALUATION_BASIC_WEIGHT": "2"})
    with pytest.raises(SettingsError):
        settings_from_config({"SANJI_EVALUATION_RECTIFICATION_DAYS": "soon"})


# ── rectification ──


def test_the_rectification_clock_warns_then_escalates_once_each(calendar):
    deadline = domain.rectification_deadline(calendar, NOW, 5)
    assert deadline.astimezone(SHANGHAI).date().isoformat() == "2026-12-09"
    escalate_at = domain.rectification_deadline(calendar, deadline, 2)
    assert escalate_at.astimezone(SHANGHAI).date().isoformat() == "2026-12-11"
    stage = lambda state, now: domain.overdue_stage(state=state, deadline=deadline, escalate_at=escalate_at,  # noqa: E731
                                                    now=now)
    assert stage("open", deadline - timedelta(minutes=1)) is None
    assert stage("open", deadline) == "warning"
    assert stage("warned", deadline + timedelta(days=1)) is None
    assert stage("warned", escalate_at) == "escalated"
    assert stage("escalated", escalate_at + timedelta(days=5)) is None
    assert stage("closed", escalate_at) is None


def test_closing_needs_the_owner_a_call_back_and_a_reason_unless_rectified():
    ok = dict(state="open", owner_unit="A", actor_unit="A", callback_recorded=True, result="rectified", reason="")
    domain.check_closure(**ok)
    assert reason_of(lambda: domain.check_closure(**{**ok, "actor_unit": "B"})) == "not_owner"
    assert reason_of(lambda: domain.check_closure(**{**ok, "callback_recorded": False})) == "callback_missing"
    assert reason_of(lambda: domain.check_closure(**{**ok, "result": "cannot_rectify"})) == "reason_required"
    domain.check_closure(**{**ok, "result": "cannot_rectify", "reason": "政策不允许"})
    assert reason_of(lambda: domain.check_closure(**{**ok, "state": "closed"})) == "rectification_closed"


def test_escalation_and_appeals_go_to_the_level_above(catalogue):
    assert domain.escalation_unit(catalogue, "320113003021") == "320113003000"
    assert domain.escalation_unit(catalogue, "320113003000") == "320113000000"
    assert domain.escalation_unit(catalogue, "320113000000") is None
    domain.check_decision(catalogue, rating_unit="320113003021", actor_unit="320113003000", state="pending")
    assert reason_of(lambda: domain.check_decision(catalogue, rating_unit="320113003021",
                                                   actor_unit="320113003021", state="pending")) == "not_deciding_unit"
    assert reason_of(lambda: domain.check_decision(catalogue, rating_unit="320113003021",
                                                   actor_unit="320113003000", state="upheld")) == "appeal_decided"
    assert reason_of(lambda: domain.check_appeal(rating_unit="A", actor_unit="B", open_appeal=False,
                                                 excluded=False)) == "not_rated_unit"
    assert reason_of(lambda: domain.check_appeal(rating_unit="A", actor_unit="A", open_appeal=True,
                                                 excluded=False)) == "appeal_exists"


# ── findings and orders ──


def test_attachments_are_photos_of_limited_size():
    small = domain.EvaluationSettings(attachment_max_bytes=100)
    domain.check_attachment("image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 10, small)
    assert reason_of(lambda: domain.check_attachment("application/pdf", b"%PDF", small)) == "attachment_type"
    assert reason_of(lambda: domain.check_attachment("image/png", b"GIF89a", small)) == "attachment_type"
    assert reason_of(lambda: domain.check_attachment("image/jpeg", b"\xff\xd8\xff" + b"0" * 200, small)) \
        == "attachment_too_large"


def test_supervisors_act_within_their_jurisdiction(catalogue):
    domain.check_supervisor(catalogue, supervisor_unit="320113000000", kind="staff", subject_unit="320113003021",
                            target_unit="320113003000")
    assert reason_of(lambda: domain.check_supervisor(catalogue, supervisor_unit="320102002000", kind="staff",
                                                     subject_unit="320113003021", target_unit="320113003000")) \
        == "outside_jurisdiction"
    assert reason_of(lambda: domain.check_supervisor(catalogue, supervisor_unit="320113003021", kind="staff",
                                                     subject_unit="320113003021", target_unit="320113003021")) \
        == "not_supervisor"


def test_an_order_is_open_overdue_or_answered():
    due = NOW + timedelta(days=1)
    assert domain.order_state(answered_at=None, due_at=due, now=NOW) == "open"
    assert domain.order_state(answered_at=None, due_at=due, now=due + timedelta(seconds=1)) == "overdue"
    assert domain.order_state(answered_at=NOW, due_at=due, now=due + timedelta(days=3)) == "answered"
    assert domain.order_state(answered_at=due + timedelta(hours=1), due_at=due, now=due) == "answered_late"


# ── rates ──


def test_the_three_rates_and_the_trend():
    tally = domain.Tally(routed=4, responded_in_time=3, due=2, resolved_in_time=1, rated=2, satisfaction_points=1.6)
    assert tally.rates() == {"response_rate": 0.75, "resolution_rate": 0.5, "satisfaction_rate": 0.8}
    assert domain.Tally().rates() == {"response_rate": None, "resolution_rate": None, "satisfaction_rate": None}
    assert domain.trend(0.8, 0.7) == "up" and domain.trend(0.7, 0.8) == "down"
    assert domain.trend(0.8, 0.8) == "steady" and domain.trend(0.8, None) == "new"


def test_item_facts_fold_the_same_whatever_the_order(catalogue, calendar):
    rules = EvaluationRules(catalogue=catalogue, calendar=calendar, settings=SETTINGS, reasons=None,
                            link_key="k", link_days=30, fingerprint_key="p")
    start = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    common = dict(item_id="i", case_id="c", case_number="n", matter_code="residence-permit",
                  department_code="police", level="street", unit_code="320113003000", district_code="320113000000",
                  community_code="320113003021")
    routed = ItemRoutedV1(**common, status="queued", occurred_at=start, legal_deadline=start + timedelta(days=20),
                          promised_deadline=start + timedelta(days=14), deadline_provisional=False,
                          catalogue_version="v")
    claimed = ItemClaimedV1(**common, status="claimed", occurred_at=start + timedelta(hours=1), actor="s")
    resolved = ItemResolvedV1(**common, status="resolved", occurred_at=start + timedelta(days=3), actor="s",
                              result="ok", delivery={"method": "pickup", "place": "w"})

    def fold(events):
        item = EvaluationItem(item_id="i", case_id="c", matter_code="m", department_code="d", level="street",
                              unit_code="320113003000", district_code="320113000000", community_code="320113003021",
                              status=events[0].status, as_of=events[0].occurred_at, return_count=0,
                              flag_return_reset=0, flag_late_suspension=0, flag_reopened=0)
        for event in events:
            apply(item, event, rules)
        return (item.status, item.routed_at, item.responded_in_time, item.concluded_in_time, item.flag_reopened)

    in_order = fold([routed, claimed, resolved])
    assert in_order == ("resolved", start, 1, 1, 0)
    assert fold([resolved, routed, claimed]) == in_order
    assert fold([routed, claimed, resolved, claimed, resolved]) == in_order  # a replay changes nothing
    # A return late in the clock is flagged (anti-gaming: returns used to reset clocks).
    late_return = ItemReturnedV1(**common, status="queued", occurred_at=start + timedelta(days=13), actor="s",
                                 reason_code="not-our-matter", return_count=1)
    item = EvaluationItem(item_id="i", status="queued", as_of=start, return_count=0, flag_return_reset=0,
                          flag_late_suspension=0, flag_reopened=0, **{k: v for k, v in common.items()
                                                                       if k not in ("item_id", "case_number")})
    apply(item, routed, rules)
    apply(item, late_return, rules)
    assert item.flag_return_reset == 1 and item.return_count == 1


def test_a_waiting_item_starts_its_response_clock_at_its_release(catalogue, calendar):
    from shared.events import ItemReleasedV1

    rules = EvaluationRules(catalogue=catalogue, calendar=calendar, settings=SETTINGS, reasons=None,
                            link_key="k", link_days=30, fingerprint_key="p")
    start = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)   # Monday 09:00 Shanghai
    released_at = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    common = dict(item_id="i", case_id="c", case_number="n", matter_code="flexible-employment-insurance",
                  department_code="hrss", level="street", unit_code="320113003000", district_code="320113000000",
                  community_code="320113003021")
    waiting = ItemRoutedV1(**common, status="waiting", occurred_at=start, legal_deadline=start + timedelta(days=20),
                           promised_deadline=start + timedelta(days=14), deadline_provisional=False,
                           catalogue_version="v", waiting_for=("residence-permit",))
    released = ItemReleasedV1(**common, status="queued", occurred_at=released_at, deadline_provisional=False,
                              legal_deadline=released_at + timedelta(days=20),
                              promised_deadline=released_at + timedelta(days=7))
    claimed = ItemClaimedV1(**common, status="claimed", occurred_at=released_at + timedelta(hours=3), actor="s")
    item = EvaluationItem(item_id="i", status="waiting", as_of=start, return_count=0, flag_return_reset=0,
                          flag_late_suspension=0, flag_reopened=0, **{k: v for k, v in common.items()
                                                                       if k not in ("item_id", "case_number")})
    for event in (waiting, released, claimed):
        apply(item, event, rules)
    assert item.routed_at == start                      # counted in the period it was routed
    assert item.respond_by.astimezone(SHANGHAI).date().isoformat() == "2026-12-09"
    assert item.responded_in_time == 1                  # a week after routing, but hours after its release
