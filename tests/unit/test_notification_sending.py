"""One attempt at one delivery, with fake channels and a fake intake; settings and the webhooks file."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notification import domain
from services.notification.adapters.channels import signature
from services.notification.domain import Outcome, QuietHours, RateLimiter, RetryPolicy, SendResult, WebhookSubscription
from services.notification.handlers import Claimed, Contact, ContactUnavailable, Dispatcher, attempt
from services.notification.settings import NotificationConfigError, NotificationSettings, load_webhooks
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE
from tests.support.notification_receiver import verify

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
HOOK = WebhookSubscription("qixia-police", "http://127.0.0.1:9/hook", "a-shared-secret-of-some-length")


class FakeChannel:
    description = "fake"

    def __init__(self, result: SendResult | None = None, error: Exception | None = None):
        self.result = result or SendResult(Outcome.SENT, "ok")
        self.error = error
        self.sent = []

    def send(self, message):
        self.sent.append(message)
        if self.error:
            raise self.error
        return self.result


def dispatcher(**senders) -> Dispatcher:
    return Dispatcher(senders=senders, webhooks={HOOK.name: HOOK}, limiter=RateLimiter({}), retry=RetryPolicy(),
                      quiet_hours=QuietHours(), rng=random.Random(1), batch_size=10, lease=timedelta(minutes=2))


def claimed(channel="sms", audience="resident", recipient="resident:case-1", document=None) -> Claimed:
    return Claimed(id="delivery-1", channel=channel, recipient=recipient, audience=audience, kind="receipt",
                   case_id="case-1", subject="主题", body="正文", document=document, urgent=False, attempt=1,
                   claim_token="token-1")


def contacts(answer):
    asked = []

    def lookup(case_id, purpose):
        asked.append(case_id)
        if isinstance(answer, Exception):
            raise answer
        return answer

    lookup.asked = asked
    return lookup


def test_a_residents_sms_goes_to_the_phone_intake_gives_and_keeps_only_a_masked_hint():
    sms = FakeChannel()
    lookup = contacts(Contact(phone=RESIDENT_PHONE, email=RESIDENT_EMAIL))
    result, hint = attempt(claimed(), dispatcher=dispatcher(sms=sms), contacts=lookup, now=NOW)
    assert result.outcome is Outcome.SENT and hint == "139****4321"
    assert lookup.asked == ["case-1"]
    [message] = sms.sent
    assert (message.to, message.body, message.delivery_id, message.sent_at) == (RESIDENT_PHONE, "正文", "delivery-1",
                                                                               NOW)
    assert RESIDENT_PHONE not in repr(message) and RESIDENT_EMAIL not in repr(Contact(RESIDENT_PHONE, RESIDENT_EMAIL))


def test_no_email_address_is_a_skip_not_a_failure():
    email = FakeChannel()
    result, hint = attempt(claimed("email"), dispatcher=dispatcher(email=email),
                           contacts=contacts(Contact(phone=RESIDENT_PHONE)), now=NOW)
    assert (result.outcome, result.detail, hint) == (Outcome.SKIPPED, "no email address on record", None)
    assert email.sent == []


def test_an_unknown_case_is_permanent_and_an_unreachable_intake_is_transient():
    sms = FakeChannel()
    unknown, _ = attempt(claimed(), dispatcher=dispatcher(sms=sms), contacts=contacts(None), now=NOW)
    down, _ = attempt(claimed(), dispatcher=dispatcher(sms=sms),
                      contacts=contacts(ContactUnavailable("intake did not answer in time")), now=NOW)
    assert unknown.outcome is Outcome.PERMANENT
    assert (down.outcome, down.detail) == (Outcome.TRANSIENT, "contact details unavailable: intake did not answer "
                                                              "in time")
    assert sms.sent == []


def test_a_webhook_goes_to_its_configured_url_with_its_secret_and_an_unconfigured_one_fails():
    hook = FakeChannel()
    result, hint = attempt(claimed("webhook", "department", "webhook:qixia-police", document="{}"),
                           dispatcher=dispatcher(webhook=hook), contacts=contacts(None), now=NOW)
    assert result.outcome is Outcome.SENT and hint == HOOK.url
    assert (hook.sent[0].to, hook.sent[0].secret, hook.sent[0].document) == (HOOK.url, HOOK.secret, "{}")
    gone, _ = attempt(claimed("webhook", "department", "webhook:removed", document="{}"),
                      dispatcher=dispatcher(webhook=hook), contacts=contacts(None), now=NOW)
    assert (gone.outcome, gone.detail) == (Outcome.PERMANENT, "webhook removed is no longer configured")


def test_an_adapter_that_raises_is_a_transient_failure_and_its_text_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    broken = FakeChannel(error=ValueError(f"cannot parse {RESIDENT_PHONE}"))
    result, _ = attempt(claimed(), dispatcher=dispatcher(sms=broken),
                        contacts=contacts(Contact(phone=RESIDENT_PHONE)), now=NOW)
    assert (result.outcome, result.detail) == (Outcome.TRANSIENT, "adapter error (ValueError)")
    assert "channel adapter raised" in caplog.text
    assert RESIDENT_PHONE not in caplog.text and "phone redacted" not in caplog.text


def test_the_documented_receiver_accepts_our_signature_and_nothing_else():
    body = '{"kind":"department_new_item","text":"新办件"}'.encode()
    timestamp = str(int(NOW.timestamp()))
    headers = {"X-Sanji-Timestamp": timestamp, "X-Sanji-Signature": signature(HOOK.secret, timestamp, body)}
    assert verify(HOOK.secret, headers, body, now=NOW.timestamp())
    assert verify(HOOK.secret, headers, body, now=NOW.timestamp() + 299)
    assert not verify(HOOK.secret, headers, body, now=NOW.timestamp() + 301)  # a replay after 5 minutes
    assert not verify(HOOK.secret, headers, body.replace("新办件".encode(), "改过".encode()), now=NOW.timestamp())
    assert not verify("another-secret-entirely", headers, body, now=NOW.timestamp())
    assert not verify(HOOK.secret, {**headers, "X-Sanji-Timestamp": str(int(timestamp) + 1)}, body,
                      now=NOW.timestamp())


# ── settings ────────────────────────────────────────────────────────────────────────────────────────


def test_the_defaults_need_no_account_anywhere(tmp_path):
    settings = NotificationSettings.from_config({"SANJI_VAR_DIR": str(tmp_path)})
    assert settings.sms_url is None and settings.smtp_host is None and settings.webhooks == ()
    assert settings.sms_sink == tmp_path / "notification-sms.jsonl"
    assert settings.quiet_hours == QuietHours()
    assert settings.rate_limits == {"sms": 20.0, "email": 10.0, "webhook": 50.0}
    assert settings.retry == RetryPolicy(30.0, 3600.0, 8)
    assert settings.lease_seconds > settings.send_timeout * 2


@pytest.mark.parametrize(("name", "value"), [("SANJI_NOTIFICATION_SMS_URL", "gateway.example"),
                                             ("SANJI_NOTIFICATION_QUIET_HOURS", "late"),
                                             ("SANJI_NOTIFICATION_RATE_LIMITS", "sms=lots"),
                                             ("SANJI_NOTIFICATION_MAX_ATTEMPTS", "0"),
                                             ("SANJI_NOTIFICATION_SEND_TIMEOUT_SECONDS", "soon"),
                                             ("SANJI_NOTIFICATION_SMTP_STARTTLS", "maybe")])
def test_a_bad_setting_is_refused_by_name(name, value):
    with pytest.raises(NotificationConfigError, match=name):
        NotificationSettings.from_config({name: value})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webhooks.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_webhooks_file_takes_secrets_from_the_environment(tmp_path):
    path = write(tmp_path, """
webhooks:
  - {name: qixia-police, url: "https://police.example/h", secret_env: POLICE_SECRET, department: police,
     scope: "320113000000", kinds: [department_new_item]}
  - {name: dev, url: "http://127.0.0.1:9000/h", secret: "a-development-secret"}
""")
    police, dev = load_webhooks(path, environ={"POLICE_SECRET": "s" * 40})
    assert (police.secret, police.department, police.scope, police.kinds) == ("s" * 40, "police", "320113000000",
                                                                              ("department_new_item",))
    assert dev.secret == "a-development-secret" and dev.scope is None
    assert "s" * 40 not in repr(police)


@pytest.mark.parametrize(("entry", "problem"), [
    ('{name: a, url: "https://x.example", secret_env: MISSING}', "MISSING is not set"),
    ('{name: a, url: "https://x.example", secret: short}', "at least 16"),
    ('{name: A!, url: "https://x.example", secret: "0123456789abcdef"}', "name must be"),
    ('{name: a, url: "ftp://x.example", secret: "0123456789abcdef"}', "url must be"),
    ('{name: a, url: "https://x.example", secret: "0123456789abcdef", scope: 320113}', "12-digit"),
    ('{name: a, url: "https://x.example", secret: "0123456789abcdef", colour: red}', "unknown key"),
])
def test_a_bad_webhook_entry_is_refused_with_the_reason(tmp_path, entry, problem):
    with pytest.raises(NotificationConfigError, match=problem):
        load_webhooks(write(tmp_path, f"webhooks:\n  - {entry}\n"), environ={})


def test_a_webhook_name_used_twice_is_refused(tmp_path):
    entry = '{name: a, url: "https://x.example", secret: "0123456789abcdef"}'
    with pytest.raises(NotificationConfigError, match="used twice"):
        load_webhooks(write(tmp_path, f"webhooks:\n  - {entry}\n  - {entry}\n"), environ={})


def test_domain_scrub_keeps_stored_detail_free_of_addresses():
    assert domain.scrub(f"refused {RESIDENT_EMAIL}") == "refused [email redacted]"
