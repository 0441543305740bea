"""The notification rules, pure: who is told what, quiet hours, backoff, rate limits, what may be stored."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.notification import domain, samples
from services.notification.domain import (
    Outcome,
    QuietHours,
    RateLimiter,
    RetryPolicy,
    SendResult,
    TokenBucket,
    WebhookSubscription,
)
from services.notification.rendering import MessageTemplates
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.events import (
    CaseCompletedV1,
    CaseSubmittedV1,
    Delivery,
    ItemClaimedV1,
    ItemEscalatedV1,
    ItemRejectedV1,
    ItemReleasedV1,
    ItemResolvedV1,
    ItemRoutedV1,
    ItemTerminatedV1,
)
from shared.workdays import SHANGHAI
from tests.support.notification_fakes import sample

NAMES = domain.CatalogueNames(load_catalogue(REPO_ROOT / "catalogue" / "nanjing"))
TEMPLATES = MessageTemplates(REPO_ROOT / "services" / "notification" / "templates")
QUIET = QuietHours()
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
HOOK_KEYS = ("whsec_" + "c2" * 16,)  # planning never signs
POLICE_QIXIA = WebhookSubscription("qixia-police", "http://127.0.0.1:9/hook", HOOK_KEYS, department="police",
                                   scope="320113000000")
HEALTH_ANYWHERE = WebhookSubscription("health", "http://127.0.0.1:9/hook", HOOK_KEYS, department="health")
XUANWU_ALL = WebhookSubscription("xuanwu", "http://127.0.0.1:9/hook", HOOK_KEYS, scope="320102000000")
ALL_HOOKS = (POLICE_QIXIA, HEALTH_ANYWHERE, XUANWU_ALL)


def within(unit: str, scope: str) -> bool:
    return load_catalogue(REPO_ROOT / "catalogue" / "nanjing").is_within(unit, scope)


def planned(payload, now=DAYTIME, webhooks=ALL_HOOKS):
    return domain.plan(payload.event_type, payload, now=now, names=NAMES, webhooks=webhooks, within=within,
                       quiet_hours=QUIET)


def summary(messages) -> set[tuple[str, str, str]]:
    return {(message.kind, message.recipient.key, message.channel) for message in messages}


class FixedRandom:
    """``uniform`` always returns the low end, the high end, or the middle."""

    def __init__(self, where: float):
        self.where = where

    def uniform(self, a, b):
        return a + (b - a) * self.where


# ── who is told what ────────────────────────────────────────────────────────────────────────────────


def test_a_submitted_case_sends_the_resident_a_receipt_by_sms_and_email():
    event = sample(CaseSubmittedV1.event_type, 1)
    assert summary(planned(event)) == {("receipt", f"resident:{event.case_id}", "sms"),
                                       ("receipt", f"resident:{event.case_id}", "email")}


def test_a_queued_item_tells_the_resident_the_units_staff_and_the_departments_webhook():
    event = sample(ItemRoutedV1.event_type, 0)  # police item at 迈皋桥街道, in 栖霞区
    assert summary(planned(event)) == {
        ("item_routed", f"resident:{event.case_id}", "sms"),
        ("item_routed", f"resident:{event.case_id}", "email"),
        ("staff_new_item", "unit:320113003000:police", "inbox"),
        ("department_new_item", "webhook:qixia-police", "webhook"),
    }


def test_a_resident_is_told_only_on_the_channels_the_event_says_intake_holds_an_address_for():
    submitted = sample(CaseSubmittedV1.event_type, 1, resident_channels=("sms",))
    assert summary(planned(submitted)) == {("receipt", f"resident:{submitted.case_id}", "sms")}
    with_email = sample(CaseSubmittedV1.event_type, 1, resident_channels=("sms", "email"))
    assert {m.channel for m in planned(with_email)} == {"sms", "email"}
    routed = sample(ItemRoutedV1.event_type, 0, resident_channels=("sms",))
    assert summary(planned(routed)) == {
        ("item_routed", f"resident:{routed.case_id}", "sms"),
        ("staff_new_item", "unit:320113003000:police", "inbox"),        # staff and departments are not residents
        ("department_new_item", "webhook:qixia-police", "webhook"),
    }


def test_an_item_waiting_for_a_prerequisite_is_in_no_queue_yet_so_only_the_resident_hears():
    event = sample(ItemRoutedV1.event_type, 1)
    assert event.status == "waiting"
    assert {message.kind for message in planned(event)} == {"item_routed"}


def test_a_released_item_reaches_its_units_queue():
    event = sample(ItemReleasedV1.event_type)
    assert {(m.kind, m.channel) for m in planned(event)} == {("staff_new_item", "inbox"),
                                                             ("department_new_item", "webhook")}


def test_a_webhook_gets_only_its_department_scope_and_kinds():
    police_in_qixia = sample(ItemRoutedV1.event_type, 0)
    health_in_qixia = sample(ItemRoutedV1.event_type, 0, department_code="health")
    police_in_xuanwu = sample(ItemRoutedV1.event_type, 0, unit_code="320102002000", district_code="320102000000",
                              community_code="320102002001")
    hooks = lambda event: {m.recipient.key for m in planned(event) if m.channel == "webhook"}  # noqa: E731
    assert hooks(police_in_qixia) == {"webhook:qixia-police"}
    assert hooks(health_in_qixia) == {"webhook:health"}
    assert hooks(police_in_xuanwu) == {"webhook:xuanwu"}
    only_escalations = WebhookSubscription("x", "http://127.0.0.1:9/", HOOK_KEYS, kinds=("escalation_arrived",))
    assert [m for m in planned(police_in_qixia, webhooks=(only_escalations,)) if m.channel == "webhook"] == []


def test_a_completed_case_sends_the_outcome_once_and_an_invitation_to_rate():
    event = sample(CaseCompletedV1.event_type, 0)
    assert summary(planned(event)) == {(kind, f"resident:{event.case_id}", channel)
                                       for kind in ("case_completed", "rating_invitation")
                                       for channel in ("sms", "email")}


def test_an_event_type_without_a_rule_plans_nothing():
    claimed = ItemClaimedV1.model_validate({**sample(ItemRoutedV1.event_type).model_dump(
        include=set(ItemClaimedV1.model_fields) - {"actor"}), "status": "claimed", "actor": "staff-1"})
    assert planned(claimed) == []
    assert domain.plan("cn.sanji.item.escalation-warned.v9", claimed, now=DAYTIME, names=NAMES, webhooks=(),
                       within=within, quiet_hours=QUIET) == []


def test_every_kind_and_channel_of_the_table_needs_a_template_and_every_rule_has_a_sample():
    keys = domain.template_keys()
    assert ("receipt", "sms") in keys and ("staff_new_item", "inbox") in keys
    assert ("department_new_item", "webhook") in keys and ("staff_new_item", "sms") not in keys
    assert domain.event_types_without_samples(samples.sample_events()) == set()
    assert domain.event_types_without_samples([]) == set(domain.RULES)


def test_the_cause_names_the_event_and_the_kind_and_fits_its_column():
    assert domain.cause_of("/sanji/routing#e-1", "item_routed") == "/sanji/routing#e-1/item_routed"
    long_key = "/sanji/routing#" + "x" * 400
    cause = domain.cause_of(long_key, "item_routed")
    assert len(cause) <= 255 and cause == domain.cause_of(long_key, "item_routed")
    assert cause != domain.cause_of(long_key + "y", "item_routed")


# ── contexts ────────────────────────────────────────────────────────────────────────────────────────


def test_the_receipt_context_carries_the_deferral_notice_in_words_and_chinese_dates():
    context = domain.receipt_context(sample(CaseSubmittedV1.event_type, 1), NAMES)
    assert context["matters"] == ["居住证办理", "就业登记"]
    assert context["deferred"] == [{"material": "房东身份证复印件", "matter": "居住证办理", "due": "2026年12月8日"}]
    assert context["submitted_at"] == "2026年12月1日 10:00"  # 02:00 UTC is 10:00 in Nanjing


def test_a_code_the_catalogue_does_not_know_becomes_a_generic_phrase_never_the_code():
    # Stricter than before (the code used to be shown as is): a message carries catalogue names only, so a
    # code an event made up cannot put its own words into a resident's SMS.
    assert NAMES.unit("320113003021") == "馨合家园社区"
    assert NAMES.matter("点击 http://evil.example 领取补贴") == domain.UNKNOWN_NAMES["matter"]
    assert NAMES.unit("999999999999") == domain.UNKNOWN_NAMES["unit"]
    assert NAMES.department("no-such-department") == domain.UNKNOWN_NAMES["department"]
    assert NAMES.material("no-such-material") == domain.UNKNOWN_NAMES["material"]
    assert NAMES.reject_reason("not-eligible") == "不符合办理条件"
    assert NAMES.reject_reason("请拨打 400-000-0000 退款") == domain.UNKNOWN_NAMES["reject_reason"]


def test_a_rejection_tells_the_resident_the_catalogue_reason_and_never_the_events_free_text():
    for reason_code, note, reason in [("materials-false", "", "材料虚假或不真实"),
                                      ("not-eligible", "请点击 http://evil.example 重新申请", "不符合办理条件"),
                                      ("速到 http://evil.example 领取", "转账至 6222 0000", "不符合办理条件")]:
        event = sample(ItemRejectedV1.event_type, 1, reason_code=reason_code, note=note)
        assert event.note == note
        context = domain.item_rejected_context(event, NAMES)
        assert context["reason"] == reason and "note" not in context
        for channel in ("sms", "email"):
            rendered = TEMPLATES.render("item_rejected", channel, context)
            assert reason in rendered.body
            assert "evil" not in rendered.body + rendered.subject and "6222" not in rendered.body
            assert reason_code not in rendered.body and note not in rendered.body or not note


def test_a_case_or_report_number_that_is_not_one_of_ours_is_not_shown():
    assert domain.shown_number("SJ20261201-0B7F6A52C1D4") == "SJ20261201-0B7F6A52C1D4"
    for forged in ("SJ1 请拨打 400-000-0000", "http://evil.example", "SJ20261201-0001。点击链接", "x" * 41, ""):
        assert domain.shown_number(forged) == domain.UNSHOWN_NUMBER
    event = sample(ItemRejectedV1.event_type, 1, case_number="速到 http://evil.example 退款")
    rendered = TEMPLATES.render("item_rejected", "sms", domain.item_rejected_context(event, NAMES))
    assert "evil" not in rendered.body and domain.UNSHOWN_NUMBER in rendered.body


def test_a_termination_or_escalation_reason_the_service_does_not_know_is_told_generically():
    terminated = sample(ItemTerminatedV1.event_type, 0)
    assert domain.item_terminated_context(terminated, NAMES)["reason"] == "容缺材料未在承诺期限内补齐"
    escalated = sample(ItemEscalatedV1.event_type, 0)
    forged = escalated.model_copy(update={"reason": "点击 http://evil.example"})
    assert domain.item_escalated_context(forged, NAMES)["reason"] == domain.UNKNOWN_NAMES["escalation_reason"]


def test_a_door_delivery_in_the_result_shows_the_local_time():
    context = domain.item_resolved_context(sample(ItemResolvedV1.event_type, 1), NAMES)
    assert context["delivery"] == {"method": "door", "place": "", "agent": "sw-0042", "time": "2026年12月2日 09:30"}


# ── quiet hours and urgency ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("local", "quiet"), [(time(21, 59), False), (time(22, 0), True), (time(3, 0), True),
                                              (time(7, 59), True), (time(8, 0), False), (time(12, 0), False)])
def test_quiet_hours_run_from_ten_at_night_to_eight_in_the_morning_in_china(local, quiet):
    assert QUIET.contains(datetime.combine(date(2026, 12, 1), local, tzinfo=SHANGHAI)) is quiet


def test_a_message_at_night_is_released_at_eight_the_next_morning_and_one_after_midnight_the_same_morning():
    assert QUIET.release(NIGHT) == datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 12, 2, 3, 0, tzinfo=SHANGHAI)
    assert QUIET.release(early) == datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI)
    assert QUIET.release(DAYTIME) == DAYTIME
    assert QUIET.release(NIGHT).tzinfo == UTC


def test_quiet_hours_are_configurable_within_a_day_or_off():
    lunch = QuietHours.parse("12:00-14:00")
    assert lunch.contains(datetime(2026, 12, 1, 13, 0, tzinfo=SHANGHAI))
    assert not lunch.contains(NIGHT)
    assert lunch.release(datetime(2026, 12, 1, 13, 0, tzinfo=SHANGHAI)) == datetime(2026, 12, 1, 14, 0,
                                                                                    tzinfo=SHANGHAI)
    off = QuietHours.parse("off")
    assert not off.enabled and not off.contains(NIGHT)
    for bad in ("22-8", "25:00-08:00", "tonight"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)


def test_only_a_residents_sms_waits_for_the_morning_and_not_when_urgent():
    held = domain.schedule(NIGHT, channel="sms", audience="resident", urgent=False, quiet_hours=QUIET)
    assert held == (datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI), "quiet_hours")
    assert domain.schedule(NIGHT, channel="email", audience="resident", urgent=False, quiet_hours=QUIET) == (NIGHT,
                                                                                                            None)
    assert domain.schedule(NIGHT, channel="sms", audience="resident", urgent=True, quiet_hours=QUIET) == (NIGHT, None)
    assert domain.schedule(NIGHT, channel="inbox", audience="unit_staff", urgent=False,
                           quiet_hours=QUIET) == (NIGHT, None)


def test_a_door_delivery_due_within_twelve_hours_is_urgent_at_night():
    tomorrow_nine = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)
    door = sample(ItemResolvedV1.event_type, 1, delivery=Delivery(method="door", agent_id="sw-1",
                                                                  scheduled_for=tomorrow_nine))
    by_channel = {m.channel: m for m in planned(door, now=NIGHT)}
    assert by_channel["sms"].urgent and by_channel["sms"].not_before == NIGHT and by_channel["sms"].hold_reason is None
    later = sample(ItemResolvedV1.event_type, 1, delivery=Delivery(method="door", agent_id="sw-1",
                                                                   scheduled_for=tomorrow_nine + timedelta(days=2)))
    pickup = sample(ItemResolvedV1.event_type, 0)
    for event in (later, pickup):
        sms = next(m for m in planned(event, now=NIGHT) if m.channel == "sms")
        assert not sms.urgent and sms.hold_reason == "quiet_hours"


# ── backoff and the state after an attempt ─────────────────────────────────────────────────────────


def test_backoff_doubles_with_jitter_and_stops_at_the_cap():
    policy = RetryPolicy(base_seconds=30, cap_seconds=600, max_attempts=10)
    lowest = [policy.delay(n, FixedRandom(0.0)).total_seconds() for n in range(1, 8)]
    highest = [policy.delay(n, FixedRandom(1.0)).total_seconds() for n in range(1, 8)]
    assert lowest == [15, 30, 60, 120, 240, 300, 300]
    assert highest == [30, 60, 120, 240, 480, 600, 600]
    rng = random.Random(7)
    delays = {policy.delay(3, rng).total_seconds() for _ in range(50)}
    assert len(delays) > 40 and all(60 <= delay <= 120 for delay in delays)  # jittered, within the step


SHORT_POLICY = RetryPolicy(30, 600, 3)


def _after(result, attempt=1, now=DAYTIME, channel="sms", urgent=False):
    return domain.after_attempt(result, attempt=attempt, now=now, policy=SHORT_POLICY, rng=FixedRandom(1.0),
                                channel=channel, audience="resident", urgent=urgent, quiet_hours=QUIET)


def test_a_transient_failure_is_retried_and_a_permanent_one_is_not():
    assert _after(SendResult(Outcome.SENT)) == domain.NextState("sent", None)
    retry = _after(SendResult(Outcome.TRANSIENT, "HTTP 503"))
    assert (retry.status, retry.next_attempt_at, retry.error) == ("pending", DAYTIME + timedelta(seconds=30),
                                                                  "HTTP 503")
    failed = _after(SendResult(Outcome.PERMANENT, "HTTP 400: invalid_number"))
    assert (failed.status, failed.next_attempt_at, failed.error) == ("failed", None, "HTTP 400: invalid_number")
    skipped = _after(SendResult(Outcome.SKIPPED, "no email address on record"), channel="email")
    assert (skipped.status, skipped.next_attempt_at) == ("skipped", None)


def test_the_last_allowed_attempt_gives_up():
    gave_up = _after(SendResult(Outcome.TRANSIENT, "HTTP 503"), attempt=3)
    assert gave_up.status == "failed" and gave_up.error == "gave up after 3 attempts: HTTP 503"


def test_a_retry_that_would_fall_at_night_waits_for_the_morning():
    late = datetime(2026, 12, 1, 21, 59, 50, tzinfo=SHANGHAI)
    retry = _after(SendResult(Outcome.TRANSIENT, "timeout"), now=late)
    assert (retry.next_attempt_at, retry.hold_reason) == (datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI), "quiet_hours")
    urgent = _after(SendResult(Outcome.TRANSIENT, "timeout"), now=late, urgent=True)
    assert urgent.next_attempt_at == late + timedelta(seconds=30) and urgent.hold_reason is None


@pytest.mark.parametrize(("status", "outcome"), [(200, "sent"), (202, "sent"), (400, "permanent"), (401, "permanent"),
                                                 (404, "permanent"), (408, "transient"), (429, "transient"),
                                                 (500, "transient"), (503, "transient"), (302, "permanent")])
def test_http_statuses_are_classified(status, outcome):
    assert domain.classify_http_status(status) == outcome


# ── rate limits ─────────────────────────────────────────────────────────────────────────────────────


def test_a_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=10, now=100.0)
    assert bucket.take(25, now=100.0) == 10
    assert bucket.take(5, now=100.0) == 0
    assert bucket.take(5, now=100.35) == 3
    assert bucket.available(now=1000.0) == 10  # never more than the burst
    assert bucket.take(10, now=500.0) == 10 and bucket.available(now=499.0) == 0  # a clock stepping back adds none


def test_the_limiter_holds_each_provider_to_its_own_rate_and_takes_back_what_was_not_used():
    limiter = RateLimiter({"sms": 2, "email": 1}, now=0.0)
    assert limiter.take("sms", 50, now=0.0) == 2
    assert limiter.take("email", 50, now=0.0) == 1
    assert limiter.take("webhook", 50, now=0.0) == 50  # no limit configured
    limiter.give_back("sms", 1)
    assert limiter.take("sms", 50, now=0.0) == 1


def test_rate_limits_are_read_per_channel():
    assert domain.parse_rate_limits("sms=20, email=2.5") == {"sms": 20.0, "email": 2.5}
    for bad in ("sms", "fax=3", "sms=0", "sms=fast", "inbox=5"):
        with pytest.raises(ValueError):
            domain.parse_rate_limits(bad)


# ── addresses ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("given", "normalised"), [("13912345678", "13912345678"), ("+86 139 1234 5678", "13912345678"),
                                                   ("139-1234-5678", "13912345678"), ("025-84567890", None),
                                                   ("12912345678", None), ("1391234567", None), ("", None)])
def test_only_mainland_mobile_numbers_get_an_sms(given, normalised):
    assert domain.normalise_mobile(given) == normalised


def test_what_the_log_keeps_of_an_address_is_masked():
    assert domain.address_hint("sms", "13912345678") == "139****5678"
    assert domain.address_hint("email", "liu.jinhua@example.com") == "l***@example.com"
    assert domain.address_hint("webhook", "https://police.example/hook") == "https://police.example/hook"
    assert domain.address_hint("webhook", "https://u:pw@police.example:8443/hook?key=abc") == (
        "https://police.example:8443/hook")


def test_provider_error_texts_are_scrubbed_of_addresses_and_id_numbers():
    text = "550 <liu.jinhua@example.com> unknown; number 13912345678 blocked; id 11010519491231002X"
    scrubbed = domain.scrub(text)
    for secret in ("liu.jinhua@example.com", "13912345678", "11010519491231002X"):
        assert secret not in scrubbed
    assert "550" in scrubbed and "[email redacted]" in scrubbed
