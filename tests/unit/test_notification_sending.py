"""One attempt at one delivery, with fake channels and a fake intake; settings and the webhooks file."""

from __future__ import annotations

import base64
import logging
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notification import domain
from services.notification.adapters.channels import webhook_headers
from services.notification.domain import Outcome, QuietHours, RateLimiter, RetryPolicy, SendResult, WebhookSubscription
from services.notification.handlers import Claimed, Contact, ContactUnavailable, Dispatcher, attempt
from services.notification.settings import NotificationConfigError, NotificationSettings, load_webhooks
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
KEY = "whsec_" + base64.b64encode(b"a-shared-secret-of-32-bytes-long").decode()
NEXT_KEY = "whsec_" + base64.b64encode(b"the-next-secret-of-32-bytes-long").decode()
HOOK = WebhookSubscription("qixia-police", "http://127.0.0.1:9/hook", (KEY,))


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
    assert (hook.sent[0].to, hook.sent[0].secrets, hook.sent[0].document) == (HOOK.url, HOOK.secrets, "{}")
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


def documented_receiver() -> dict:
    """The Python example of docs/notifications.md ("How the receiver checks a request"), run as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")
    section = text[text.index("### How the receiver checks a request"):]
    [code] = re.findall(r"```python\n(.*?)```", section[:section.index("\n## ")], flags=re.S)
    namespace: dict = {}
    exec(compile(code, "docs/notifications.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def test_the_documented_receiver_accepts_our_signature_and_nothing_else(monkeypatch):
    body = '{"kind":"department_new_item","subject":"新办件","text":"新办件"}'.encode()
    now = datetime.fromtimestamp(time.time(), UTC)
    docs = documented_receiver()
    monkeypatch.setitem(docs, "SECRET", KEY)
    handle = docs["handle"]
    headers = webhook_headers((KEY,), "delivery-1", now, body)
    assert handle(headers, body) == 200
    assert handle(headers, body) == 200 and docs["SEEN_IDS"] == {"delivery-1"}  # a retry: answered, done once
    assert handle({**headers, "webhook-id": "delivery-2"}, body) == 401  # the id is signed too
    assert handle(headers, body.replace("新办件".encode(), "改过".encode())) == 401
    assert handle(webhook_headers((KEY,), "delivery-3", now - timedelta(minutes=6), body), body) == 401
    assert handle(webhook_headers((NEXT_KEY,), "delivery-4", now, body), body) == 401
    assert handle(webhook_headers((NEXT_KEY, KEY), "delivery-5", now, body), body) == 200  # during a rotation
    assert handle({key.title(): value for key, value in headers.items()}, body) == 200  # header case is free


def test_a_rotation_signs_with_every_secret_the_current_first():
    at = datetime(2026, 12, 1, 2, 0, 30, 900000, tzinfo=UTC)
    headers = webhook_headers((NEXT_KEY, KEY), "delivery-1", at, b"{}")
    assert headers["webhook-id"] == "delivery-1" and headers["webhook-timestamp"] == str(int(at.timestamp()))
    current, previous = headers["webhook-signature"].split(" ")
    assert current == webhook_headers((NEXT_KEY,), "delivery-1", at, b"{}")["webhook-signature"]
    assert previous == webhook_headers((KEY,), "delivery-1", at, b"{}")["webhook-signature"]
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", current)


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
    path = write(tmp_path, f"""
webhooks:
  - {{name: qixia-police, url: "https://police.example/h", secrets_env: [POLICE_NEXT, POLICE_NOW], department: police,
     scope: "320113000000", kinds: [department_new_item]}}
  - {{name: dev, url: "http://127.0.0.1:9000/h", secrets: ["{KEY}"]}}
""")
    police, dev = load_webhooks(path, environ={"POLICE_NEXT": NEXT_KEY, "POLICE_NOW": KEY})
    assert (police.secrets, police.department, police.scope, police.kinds) == (
        (NEXT_KEY, KEY), "police", "320113000000", ("department_new_item",))
    assert dev.secrets == (KEY,) and dev.scope is None
    assert KEY not in repr(police) and NEXT_KEY not in repr(police)


def test_a_new_webhook_secret_is_one_the_settings_and_the_package_accept():
    from standardwebhooks import Webhook

    from services.notification.settings import new_webhook_secret, webhook_secret_problem

    secret = new_webhook_secret()
    assert secret.startswith("whsec_") and webhook_secret_problem(secret) is None and secret != new_webhook_secret()
    Webhook(secret)


GOOD = "whsec_" + base64.b64encode(b"0" * 32).decode()


@pytest.mark.parametrize(("entry", "problem"), [
    ('{name: a, url: "https://x.example", secrets_env: [MISSING]}', "MISSING is not set"),
    ('{name: a, url: "https://x.example", secrets: ["whsec_c2hvcnQ="]}', "24 to 64 random bytes"),
    ('{name: a, url: "https://x.example", secrets: ["a-plain-password-of-some-length"]}', "must start with whsec_"),
    ('{name: a, url: "https://x.example", secrets: ["whsec_not base64!"]}', "followed by base64"),
    ('{name: a, url: "https://x.example", secrets: []}', "non-empty list"),
    (f'{{name: a, url: "https://x.example", secrets: "{GOOD}"}}', "non-empty list"),
    (f'{{name: a, url: "https://x.example", secrets: ["{GOOD}", "{GOOD}"]}}', "listed twice"),
    ('{name: a, url: "https://x.example"}', "either secrets_env"),
    (f'{{name: a, url: "https://x.example", secrets: ["{GOOD}"], secrets_env: [X]}}', "either secrets_env"),
    ('{name: a, url: "https://x.example", secret: "0123456789abcdef"}', "were replaced by 'secrets_env'"),
    ('{name: a, url: "https://x.example", secret_env: OLD_VARIABLE}', "were replaced by 'secrets_env'"),
    (f'{{name: A!, url: "https://x.example", secrets: ["{GOOD}"]}}', "name must be"),
    (f'{{name: a, url: "ftp://x.example", secrets: ["{GOOD}"]}}', "url must be"),
    (f'{{name: a, url: "https://x.example", secrets: ["{GOOD}"], scope: 320113}}', "12-digit"),
    (f'{{name: a, url: "https://x.example", secrets: ["{GOOD}"], colour: red}}', "unknown key"),
])
def test_a_bad_webhook_entry_is_refused_with_the_reason(tmp_path, entry, problem):
    with pytest.raises(NotificationConfigError, match=re.escape(problem)):
        load_webhooks(write(tmp_path, f"webhooks:\n  - {entry}\n"), environ={})


def test_a_webhook_name_used_twice_is_refused(tmp_path):
    entry = f'{{name: a, url: "https://x.example", secrets: ["{GOOD}"]}}'
    with pytest.raises(NotificationConfigError, match="used twice"):
        load_webhooks(write(tmp_path, f"webhooks:\n  - {entry}\n  - {entry}\n"), environ={})


def test_domain_scrub_keeps_stored_detail_free_of_addresses():
    assert domain.scrub(f"refused {RESIDENT_EMAIL}") == "refused [email redacted]"
