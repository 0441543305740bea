"""The channel adapters against real local servers: an HTTP stand-in for the SMS gateway and a
department's webhook endpoint, and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import eventlet
import pytest
import requests

from services.notification.adapters.channels import (
    FileSink,
    OutgoingMessage,
    SmsGateway,
    SmtpEmail,
    WebhookSender,
)
from services.notification.domain import Outcome
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE
from tests.support.notification_receiver import WebhookReceiver
from tests.support.notification_servers import HttpStandIn, SmtpServer, free_port

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"qixia-police-shared-secret-0001!").decode()
ROTATED_SECRET = "whsec_" + base64.b64encode(b"qixia-police-shared-secret-0002!").decode()


@pytest.fixture
def http():
    server = HttpStandIn()
    yield server
    server.stop()


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "mail")
    yield server
    server.stop()


def message(to: str, **changes) -> OutgoingMessage:
    fields = dict(delivery_id="delivery-0001", to=to, subject="办件受理回执 SJ20261201-0001",
                  body="您好，您的办件已受理，受理编号SJ20261201-0001。", sent_at=NOW)
    return OutgoingMessage(**{**fields, **changes})


# ── SMS gateway ─────────────────────────────────────────────────────────────────────────────────────


def test_the_gateway_gets_the_number_the_text_and_our_reference_with_the_api_key(http):
    http.answer("/sms", lambda request: (200, {"message_id": "gw-42"}))
    result = SmsGateway(http.url("/sms"), "api-key-123", timeout=2).send(message("+86 139 8765 4321"))
    assert (result.outcome, result.provider_ref) == (Outcome.SENT, "gw-42")
    [request] = http.to("/sms")
    assert request.json() == {"to": RESIDENT_PHONE, "text": "您好，您的办件已受理，受理编号SJ20261201-0001。",
                              "client_ref": "delivery-0001", "attempt": 1}
    assert request.headers["Authorization"] == "Bearer api-key-123"


@pytest.mark.parametrize(("status", "document", "outcome", "detail"), [
    (503, {"error": "maintenance"}, Outcome.TRANSIENT, "HTTP 503: maintenance"),
    (429, {}, Outcome.TRANSIENT, "HTTP 429"),
    (400, {"error": "invalid_number", "to": RESIDENT_PHONE}, Outcome.PERMANENT, "HTTP 400: invalid_number"),
    (401, {"message": "bad key"}, Outcome.PERMANENT, "HTTP 401: bad key"),
])
def test_gateway_answers_are_classified_and_their_reason_kept(http, status, document, outcome, detail):
    http.answer("/sms", lambda request: (status, document))
    result = SmsGateway(http.url("/sms"), None, timeout=2).send(message(RESIDENT_PHONE))
    assert (result.outcome, result.detail) == (outcome, detail)


def test_a_gateway_that_does_not_answer_in_time_is_transient(http):
    def slow(request):
        eventlet.sleep(2)
        return 200, {}

    http.answer("/sms", slow)
    result = SmsGateway(http.url("/sms"), None, timeout=0.3).send(message(RESIDENT_PHONE))
    assert (result.outcome, result.detail) == (Outcome.TRANSIENT, "no answer within 0.3s")


def test_a_gateway_that_is_down_is_transient():
    result = SmsGateway(f"http://127.0.0.1:{free_port()}/sms", None, timeout=1).send(message(RESIDENT_PHONE))
    assert result.outcome is Outcome.TRANSIENT and result.detail.startswith("connection failed")


def test_a_landline_never_reaches_the_gateway(http):
    result = SmsGateway(http.url("/sms"), None, timeout=2).send(message("025-84567890"))
    assert result.outcome is Outcome.PERMANENT and result.detail.startswith("invalid_number")
    assert http.requests == []


def test_the_development_sink_writes_one_line_per_message(tmp_path):
    sink = FileSink(tmp_path / "var" / "notification-sms.jsonl", "sms")
    assert sink.send(message(RESIDENT_PHONE)).outcome is Outcome.SENT
    assert sink.send(message("not a number")).outcome is Outcome.PERMANENT
    [line] = (tmp_path / "var" / "notification-sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["body"].startswith("您好")


# ── SMTP ────────────────────────────────────────────────────────────────────────────────────────────


def smtp_channel(server: SmtpServer, timeout: float = 5) -> SmtpEmail:
    return SmtpEmail(server.host, server.port, sender="三级联办 <notify@sanji.localhost>", timeout=timeout)


def test_an_email_arrives_at_the_smtp_server_in_chinese_with_our_delivery_id(smtp):
    result = smtp_channel(smtp).send(message(RESIDENT_EMAIL))
    assert result.outcome is Outcome.SENT
    [received] = smtp.messages()
    assert received["Subject"] == "办件受理回执 SJ20261201-0001"
    assert received["To"] == RESIDENT_EMAIL
    assert received["From"].addresses[0].display_name == "三级联办"
    assert received["Message-ID"] == "<delivery-0001@sanji.notification>"
    assert received["X-Sanji-Delivery-Id"] == "delivery-0001"
    assert received.get_content().strip() == "您好，您的办件已受理，受理编号SJ20261201-0001。"


def test_a_refused_mailbox_is_permanent_and_a_busy_one_transient(smtp):
    refused = smtp_channel(smtp).send(message("nobody@refused.invalid"))
    busy = smtp_channel(smtp).send(message("someone@busy.invalid"))
    assert refused.outcome is Outcome.PERMANENT and refused.detail.startswith("recipient refused: 550")
    assert busy.outcome is Outcome.TRANSIENT and busy.detail.startswith("recipient refused: 451")
    assert "refused.invalid" not in refused.detail
    assert smtp.messages() == []


def test_an_smtp_server_that_is_down_is_transient():
    down = SmtpEmail("127.0.0.1", free_port(), sender="notify@sanji.localhost", timeout=1)
    result = down.send(message(RESIDENT_EMAIL))
    assert result.outcome is Outcome.TRANSIENT and result.detail.startswith("SMTP connection failed")


# ── webhooks, checked by a receiver written from the documentation (standardwebhooks' Webhook.verify) ──


def webhook_message(url: str, *secrets: str) -> OutgoingMessage:
    document = json.dumps({"delivery_id": "delivery-0001", "kind": "department_new_item", "text": "新办件"},
                          ensure_ascii=False, separators=(",", ":"))
    return message(url, document=document, secrets=secrets or (SECRET,))


def test_the_documented_receiver_verifies_our_request_and_dedupes_our_retry(http):
    receiver = WebhookReceiver(SECRET)
    http.answer("/hook", lambda request: receiver.receive(request.headers, request.body))
    sender = WebhookSender(timeout=2)
    first = sender.send(webhook_message(http.url("/hook")))
    retry = sender.send(webhook_message(http.url("/hook")))  # the same delivery again
    assert first.outcome is Outcome.SENT and retry.outcome is Outcome.SENT
    assert receiver.refused == [] and len(receiver.accepted) == 1
    assert receiver.ids == ["delivery-0001", "delivery-0001"] and receiver.duplicates == ["delivery-0001"]
    request = http.to("/hook")[0]
    assert json.loads(request.body)["kind"] == "department_new_item"
    assert request.headers["Webhook-Id"] == "delivery-0001"
    assert request.headers["Webhook-Signature"].startswith("v1,") and " " not in request.headers["Webhook-Signature"]
    assert abs(int(request.headers["Webhook-Timestamp"]) - time.time()) < 60  # the wall clock, not the service's
    assert not any(name.startswith("X-Sanji") for name in request.headers)


def test_during_a_rotation_each_request_verifies_under_the_old_and_the_new_secret(http):
    old_key, new_key = SECRET, ROTATED_SECRET
    on_old, on_new = WebhookReceiver(old_key), WebhookReceiver(new_key)
    answers = iter([on_old, on_new])
    http.answer("/hook", lambda request: next(answers).receive(request.headers, request.body))
    sender = WebhookSender(timeout=2)
    assert sender.send(webhook_message(http.url("/hook"), new_key, old_key)).outcome is Outcome.SENT
    assert sender.send(webhook_message(http.url("/hook"), new_key, old_key)).outcome is Outcome.SENT
    assert (on_old.refused, on_new.refused) == ([], []) and len(on_old.accepted) == len(on_new.accepted) == 1
    assert len(http.to("/hook")[0].headers["Webhook-Signature"].split(" ")) == 2

    # After the rotation the old secret is gone from the list: a receiver still on it refuses.
    stale_receiver = WebhookReceiver(old_key)
    http.answer("/hook", lambda request: stale_receiver.receive(request.headers, request.body))
    assert sender.send(webhook_message(http.url("/hook"), new_key)).outcome is Outcome.PERMANENT
    assert stale_receiver.refused == ["No matching signature found"]


def test_the_documented_receiver_refuses_a_tampered_body_and_a_stale_timestamp(http):
    receiver = WebhookReceiver(SECRET)
    http.answer("/hook", lambda request: receiver.receive(request.headers, request.body))
    assert WebhookSender(timeout=2).send(webhook_message(http.url("/hook"))).outcome is Outcome.SENT
    original = http.to("/hook")[0]
    tampered = requests.post(http.url("/hook"), data=original.body.replace("新办件".encode(), "假的".encode()),
                             headers=original.headers, timeout=2)
    six_minutes_ago = WebhookSender(timeout=2, wall_clock=lambda: time.time() - 6 * 60)
    stale = six_minutes_ago.send(webhook_message(http.url("/hook")))
    assert tampered.status_code == 401
    assert stale.outcome is Outcome.PERMANENT and stale.detail == "HTTP 401: bad_signature"
    assert receiver.refused == ["No matching signature found", "Message timestamp too old"]
    assert len(receiver.accepted) == 1


def test_a_webhook_refusing_us_is_permanent_and_one_failing_is_transient(http):
    http.answer("/gone", lambda request: (410, {"error": "endpoint retired"}))
    http.answer("/broken", lambda request: (502, {}))
    sender = WebhookSender(timeout=2)
    assert sender.send(webhook_message(http.url("/gone"))).outcome is Outcome.PERMANENT
    assert sender.send(webhook_message(http.url("/broken"))).outcome is Outcome.TRANSIENT
