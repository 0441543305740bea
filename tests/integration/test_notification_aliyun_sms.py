"""The notification service sending SMS through the Aliyun ``SendSms`` adapter to a local fake provider that checks
the request's signature and answers Aliyun's codes; the delivery log shows what was retried and what given up."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qsl

import pytest
from nameko.testing.services import replace_dependencies

from services.notification.adapters.channels import aliyun_rpc_signature
from services.notification.service import NotificationService
from shared.events import CaseSubmittedV1
from shared.workdays import SHANGHAI
from tests.support import notification_db as db
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE, envelope, fake_intake, sample
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures, found by name
    clock,
    http,
    no_contact_data_in_logs,
    smtp,
)
from tests.support.notification_harness import publish, sweep_until

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
KEY_ID, KEY_SECRET = "LTAI-test-key-id", "test-access-key-secret"
CASE = sample(CaseSubmittedV1.event_type).case_id
ID_NUMBER = "11010519491231002X"


class FakeAliyun:
    """SendSms as Aliyun answers it: the signature checked with the shared secret, then the next scripted Code."""

    def __init__(self, codes, secret: str = KEY_SECRET):
        self.codes = list(codes)
        self.secret = secret
        self.requests: list[dict] = []
        self.nonces: list[str] = []

    def __call__(self, request):
        form = dict(parse_qsl(request.body.decode()))
        self.requests.append(form)
        signature = form.pop("Signature", "")
        if signature != aliyun_rpc_signature(self.secret, "POST", form):
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
        if form["SignatureNonce"] in self.nonces:
            return 400, {"Code": "SignatureNonceUsed", "Message": "Specified signature nonce was used already."}
        self.nonces.append(form["SignatureNonce"])
        status, code = self.codes.pop(0) if self.codes else (200, "OK")
        if code == "OK":
            return 200, {"Code": "OK", "Message": "OK", "BizId": f"biz-{len(self.requests)}", "RequestId": "r"}
        # Aliyun's messages name the number at times: the service must not keep or log it.
        return status, {"Code": code, "Message": f"{code} for {form['PhoneNumbers']}", "RequestId": "r"}


@pytest.fixture
def start(container_factory, make_service_config, http, smtp, tmp_path, web_config_port, clock):
    intake = container_factory(fake_intake({CASE: {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}}),
                               make_service_config("intake"))
    intake.start()

    def start(provider: FakeAliyun):
        http.answer("/aliyun/", provider)
        container = container_factory(NotificationService, make_service_config(
            "notification", web_port=web_config_port, SANJI_NOTIFICATION_SMS_PROVIDER="aliyun",
            SANJI_NOTIFICATION_SMS_URL=http.url("/aliyun/"), SANJI_NOTIFICATION_SMS_ACCESS_KEY_ID=KEY_ID,
            SANJI_NOTIFICATION_SMS_ACCESS_KEY_SECRET=KEY_SECRET, SANJI_NOTIFICATION_SMTP_HOST=smtp.host,
            SANJI_NOTIFICATION_SMTP_PORT=smtp.port, SANJI_NOTIFICATION_SWEEP_SECONDS=0.05,
            SANJI_NOTIFICATION_SEND_TIMEOUT_SECONDS=3, SANJI_VAR_DIR=str(tmp_path / "var")))
        replace_dependencies(container, clock=clock)
        container.start()
        return container

    return start


def settled(database_url, attempts: int):
    return lambda: (db.one(database_url, channel="sms")["attempts"] == attempts
                    and db.one(database_url, channel="sms")["claim_token"] is None)


def test_a_flow_control_answer_is_retried_and_the_template_goes_with_its_parameters(start, rabbit_config,
                                                                                      database_url, clock):
    provider = FakeAliyun([(200, "isv.BUSINESS_LIMIT_CONTROL"), (503, "ServiceUnavailable")])
    notification = start(provider)
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseSubmittedV1.event_type), DAY))
    sweep_until(notification, settled(database_url, 1))
    clock.advance(seconds=30)
    sweep_until(notification, settled(database_url, 2))
    clock.advance(seconds=60)
    sweep_until(notification, lambda: db.one(database_url, channel="sms")["status"] == "sent")

    row = db.one(database_url, channel="sms")
    attempts = db.attempts(database_url, row["id"])
    assert [(a["outcome"], a["detail"], a["provider_ref"]) for a in attempts] == [
        ("transient", "HTTP 200: isv.BUSINESS_LIMIT_CONTROL", None),
        ("transient", "HTTP 503: ServiceUnavailable", None), ("sent", "OK", "biz-3")]
    assert all(RESIDENT_PHONE not in a["detail"] for a in db.attempts(database_url, row["id"]))
    first = provider.requests[0]
    assert (first["Action"], first["Version"], first["PhoneNumbers"], first["SignName"], first["TemplateCode"],
            first["OutId"]) == ("SendSms", "2017-05-25", RESIDENT_PHONE, "三级联办", "SMS_DEV_RECEIPT", row["id"])
    params = json.loads(first["TemplateParam"])
    assert params == json.loads(row["template_params"]) and set(params) == {"case_number", "matters", "deferral"}
    assert params["case_number"] == sample(CaseSubmittedV1.event_type).case_number
    assert len({request["SignatureNonce"] for request in provider.requests}) == 3  # a new nonce on every try


@pytest.mark.parametrize("code", ["isv.MOBILE_NUMBER_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS",
                                  "isv.AMOUNT_NOT_ENOUGH"])
def test_an_answer_that_waiting_will_not_cure_is_given_up_at_once(start, rabbit_config, database_url, clock, code):
    provider = FakeAliyun([(200 if code != "isv.AMOUNT_NOT_ENOUGH" else 400, code)])
    notification = start(provider)
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseSubmittedV1.event_type), DAY))
    sweep_until(notification, lambda: db.one(database_url, channel="sms")["status"] != "pending")
    clock.advance(hours=2)
    sweep_until(notification, lambda: db.one(database_url, channel="email")["status"] == "sent")

    failed = db.one(database_url, channel="sms")
    assert (failed["status"], failed["attempts"], failed["next_attempt_at"]) == ("failed", 1, None)
    # The provider's message named the number: only its code is kept.
    assert failed["last_error"] == f"HTTP {200 if code != 'isv.AMOUNT_NOT_ENOUGH' else 400}: {code}"
    assert [a["outcome"] for a in db.attempts(database_url, failed["id"])] == ["permanent"]
    assert len(provider.requests) == 1


def test_a_request_signed_with_another_secret_is_refused_and_given_up(start, rabbit_config, database_url):
    notification = start(FakeAliyun([], secret="the-provider-knows-another"))
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseSubmittedV1.event_type), DAY))
    sweep_until(notification, lambda: db.one(database_url, channel="sms")["status"] != "pending")
    assert db.one(database_url, channel="sms")["last_error"].startswith("HTTP 400: SignatureDoesNotMatch")


def test_an_id_number_in_an_event_never_reaches_the_template_parameters(start, rabbit_config, database_url):
    provider = FakeAliyun([])
    notification = start(provider)
    publish(notification, rabbit_config["AMQP_URI"],
            *envelope(sample(CaseSubmittedV1.event_type, case_number=ID_NUMBER), DAY))
    sweep_until(notification, lambda: db.one(database_url, channel="sms")["status"] == "sent")
    [request] = provider.requests
    assert ID_NUMBER not in request["TemplateParam"] and ID_NUMBER not in db.one(database_url, channel="sms")[
        "template_params"]
    assert json.loads(request["TemplateParam"])["case_number"] == "（已隐去）"
