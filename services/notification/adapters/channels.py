"""Channel adapters, one interface: ``send(OutgoingMessage) -> SendResult``.

Each adapter says what happened in the terms the retry rules understand: sent, transient (try again
later), permanent (never going to work), skipped. None raises for a delivery problem, and none puts an
address into a result's detail: providers' error texts are scrubbed before they are kept or logged.

- SMS: ``SmsGateway`` posts to a generic HTTP gateway (free text, and the template when there is one);
  ``AliyunSms`` calls Aliyun's ``SendSms`` (sign name, template code, parameters); ``FileSink`` writes to a
  file for development.
- Email: ``SmtpEmail`` over SMTP (STARTTLS and login optional); ``FileSink`` for development.
- Webhook: ``WebhookSender`` posts the JSON document signed to the Standard Webhooks spec (``webhook_headers``).
The staff inbox is a table of our own and is written in the transaction that plans the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import requests

from services.notification.domain import (
    Outcome,
    SendResult,
    classify_aliyun_sms,
    classify_http_status,
    normalise_mobile,
    plausible_email,
    safe_url,
    scrub,
)
from shared.webhooks import webhook_headers

DELIVERY_HEADER = "X-Sanji-Delivery-Id"    # an email's; a webhook's delivery id is its webhook-id
# Which attempt at the delivery this is (1, 2, ...), on SMS (the gateway document's "attempt") and e-mail: a
# receiver that sees one delivery id twice can tell a resend after a lapsed claim (a new attempt: the
# at-least-once case, docs/notifications.md) from a message sent twice. A webhook's retry is told by its new
# webhook-timestamp (Standard Webhooks), so webhooks carry no header of ours.
ATTEMPT_HEADER = "X-Sanji-Attempt"


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: str
    to: str = field(repr=False)              # a phone number, an email address or a webhook URL
    subject: str
    body: str
    sent_at: datetime                        # the service clock's now (an email's Date)
    document: str | None = None              # the JSON body of a webhook
    secrets: tuple[str, ...] = field(default=(), repr=False)   # a webhook's whsec_ secrets, current first
    template_code: str | None = None         # an SMS's provider template (sms-templates.yaml) ...
    template_params: dict[str, str] | None = None   # ... and its parameters
    attempt: int = 1                         # which attempt at this delivery (ATTEMPT_HEADER)


class Sender(Protocol):
    description: str                         # for the start-up log line: where messages go

    def send(self, message: OutgoingMessage) -> SendResult: ...


def _http_failure(response: requests.Response) -> str:
    reason = ""
    try:
        document = response.json()
        if isinstance(document, dict):
            reason = str(document.get("error") or document.get("code") or document.get("message") or "")
    except ValueError:
        reason = response.text[:200]
    return f"HTTP {response.status_code}" + (f": {scrub(reason, 200)}" if reason else "")


def _post(session: requests.Session, url: str, *, timeout: float, **kwargs) -> SendResult:
    try:
        response = session.post(url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout:
        return SendResult(Outcome.TRANSIENT, f"no answer within {timeout:g}s")
    except requests.RequestException as exc:
        return SendResult(Outcome.TRANSIENT, f"connection failed ({type(exc).__name__})")
    outcome = classify_http_status(response.status_code)
    if outcome is Outcome.SENT:
        reference = None
        try:
            document = response.json()
            if isinstance(document, dict) and document.get("message_id") is not None:
                reference = str(document["message_id"])[:128]
        except ValueError:
            pass
        return SendResult(Outcome.SENT, f"HTTP {response.status_code}", reference)
    return SendResult(outcome, _http_failure(response))


class SmsGateway:
    """A generic HTTP SMS gateway: ``POST <url>`` with ``{"to", "text", "client_ref"}`` and a bearer API key, plus
    ``sign_name``, ``template_code`` and ``template_params`` when the message has a provider template (a gateway
    that takes free text reads ``text``; one that takes templates, those).

    2xx is sent; 408, 425, 429 and 5xx are transient; any other status (400 invalid number, 401, 403)
    is permanent. ``client_ref`` is the delivery id, so a gateway that dedupes can drop a resend.
    A number that is not a mainland mobile number fails at once, without a request.
    """

    def __init__(self, url: str, api_key: str | None, *, timeout: float, sign_name: str | None = None):
        self.url = url
        self.description = f"SMS gateway {safe_url(url)}"
        self._timeout = timeout
        self._sign_name = sign_name
        self._session = requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def send(self, message: OutgoingMessage) -> SendResult:
        phone = normalise_mobile(message.to)
        if phone is None:
            return SendResult(Outcome.PERMANENT, "invalid_number: not a mainland mobile number")
        document = {"to": phone, "text": message.body, "client_ref": message.delivery_id, "attempt": message.attempt}
        if message.template_code:
            document |= {"sign_name": self._sign_name, "template_code": message.template_code,
                         "template_params": message.template_params or {}}
        return _post(self._session, self.url, timeout=self._timeout, json=document)


ALIYUN_SMS_VERSION = "2017-05-25"


def _percent(value: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved characters kept, everything else %XX of its UTF-8 bytes."""
    return quote(str(value), safe="-_.~")


def aliyun_rpc_signature(access_key_secret: str, method: str, params: Mapping[str, str]) -> str:
    """Alibaba Cloud's RPC-style request signature (SignatureMethod HMAC-SHA1, SignatureVersion 1.0):
    base64(HMAC-SHA1(secret + "&", METHOD & %2F & percent(sorted, percent-encoded key=value pairs)))."""
    canonical = "&".join(f"{_percent(key)}={_percent(value)}" for key, value in sorted(params.items()))
    string_to_sign = f"{method}&{_percent('/')}&{_percent(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunSms:
    """Aliyun SMS (短信服务, dysmsapi ``SendSms``, version 2017-05-25), called as its RPC-style API: a form POST of
    ``PhoneNumbers``, ``SignName``, ``TemplateCode``, ``TemplateParam`` (JSON) and ``OutId`` (the delivery id)
    with the common parameters, signed with the access key (``aliyun_rpc_signature``). The JSON answer's ``Code``
    decides (``domain.classify_aliyun_sms``): ``OK`` is sent and ``BizId`` the provider's reference. Each
    attempt signs with a fresh ``SignatureNonce``, so a retry after ``SignatureNonceUsed`` is a new request.

    Simplified (docs/notifications.md): signature version 1.0 (Alibaba now recommends V3, ACS3-HMAC-SHA256), an
    AccessKey pair only (no STS token or RAM role), region ``cn-hangzhou``, one number per request.
    """

    def __init__(self, url: str, access_key_id: str, access_key_secret: str, *, sign_name: str, timeout: float,
                 nonce: Callable[[], str] = lambda: uuid.uuid4().hex, wall_clock: Callable[[], float] = time.time):
        self.url = url
        self.description = f"Aliyun SMS {safe_url(url)}"
        self._key_id, self._key_secret = access_key_id, access_key_secret
        self._sign_name = sign_name
        self._timeout = timeout
        self._nonce, self._wall_clock = nonce, wall_clock
        self._session = requests.Session()

    def request_params(self, phone: str, message: OutgoingMessage) -> dict[str, str]:
        params = {
            "AccessKeyId": self._key_id, "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": self._nonce(), "SignatureVersion": "1.0",
            "Timestamp": datetime.fromtimestamp(self._wall_clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_SMS_VERSION, "PhoneNumbers": phone, "SignName": self._sign_name,
            "TemplateCode": message.template_code or "", "OutId": message.delivery_id,
            "TemplateParam": json.dumps(message.template_params or {}, ensure_ascii=False, separators=(",", ":")),
        }
        params["Signature"] = aliyun_rpc_signature(self._key_secret, "POST", params)
        return params

    def send(self, message: OutgoingMessage) -> SendResult:
        phone = normalise_mobile(message.to)
        if phone is None:
            return SendResult(Outcome.PERMANENT, "invalid_number: not a mainland mobile number")
        if not message.template_code:
            return SendResult(Outcome.PERMANENT, "no SMS template for this message (sms-templates.yaml)")
        try:
            response = self._session.post(self.url, data=self.request_params(phone, message), timeout=self._timeout,
                                          allow_redirects=False)
        except requests.Timeout:
            return SendResult(Outcome.TRANSIENT, f"no answer within {self._timeout:g}s")
        except requests.RequestException as exc:
            return SendResult(Outcome.TRANSIENT, f"connection failed ({type(exc).__name__})")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            document = {}
        code = str(document.get("Code") or "") or None
        outcome = classify_aliyun_sms(response.status_code, code)
        if outcome is Outcome.SENT:
            return SendResult(Outcome.SENT, "OK", str(document.get("BizId") or "")[:128] or None)
        reason = code or "no Code in the answer"
        # The provider's Message names the number at times: kept only when it holds no personal data at all.
        message_text = str(document.get("Message") or "")[:150]
        if scrub(message_text, 150) != message_text:
            message_text = ""
        detail = f"HTTP {response.status_code}: {reason}"
        return SendResult(outcome, detail + (f" ({message_text})" if message_text else ""))


class FileSink:
    """Development stand-in for a provider: appends each message as a JSON line to a file under var/.

    The file holds real addresses: it is for a laptop, never for production.
    """

    def __init__(self, path: Path, channel: str):
        self.path = Path(path)
        self.channel = channel
        self.description = f"{channel} file sink {self.path}"
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        if self.channel == "sms" and normalise_mobile(message.to) is None:
            return SendResult(Outcome.PERMANENT, "invalid_number: not a mainland mobile number")
        if self.channel == "email" and not plausible_email(message.to):
            return SendResult(Outcome.PERMANENT, "invalid_address")
        line = json.dumps({"delivery_id": message.delivery_id, "at": message.sent_at.isoformat(), "to": message.to,
                           "subject": message.subject, "body": message.body,
                           **({"template_code": message.template_code, "template_params": message.template_params}
                              if message.template_code else {})}, ensure_ascii=False)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as sink:
                    sink.write(line + "\n")
        except OSError as exc:
            return SendResult(Outcome.TRANSIENT, f"cannot write the sink file ({exc.strerror})")
        return SendResult(Outcome.SENT, "written to the development sink")


class SmtpEmail:
    """Email over SMTP, one connection per message, UTF-8 text with the delivery id as Message-ID.

    A 5xx answer about this message (recipient refused, message refused) is permanent; connection
    problems, timeouts, 4xx answers and authentication failures (a configuration problem that fixing
    the configuration cures) are transient.
    """

    def __init__(self, host: str, port: int, *, sender: str, timeout: float, username: str | None = None,
                 password: str | None = None, starttls: bool = False):
        self.description = f"SMTP server {host}:{port}"
        self._host, self._port, self._sender, self._timeout = host, port, sender, timeout
        self._username, self._password, self._starttls = username, password, starttls

    def _message(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = self._sender
        email["To"] = message.to
        email["Date"] = format_datetime(message.sent_at)
        email["Message-ID"] = f"<{message.delivery_id}@sanji.notification>"
        email[DELIVERY_HEADER] = message.delivery_id
        email[ATTEMPT_HEADER] = str(message.attempt)
        email.set_content(message.body, charset="utf-8")
        return email

    def send(self, message: OutgoingMessage) -> SendResult:
        if not plausible_email(message.to):
            return SendResult(Outcome.PERMANENT, "invalid_address")
        email = self._message(message)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b""))
            return SendResult(Outcome.PERMANENT if code >= 500 else Outcome.TRANSIENT,
                              f"recipient refused: {code} {_smtp_text(text)}")
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult(Outcome.TRANSIENT, f"SMTP login refused: {exc.smtp_code}")
        except smtplib.SMTPResponseException as exc:
            return SendResult(Outcome.PERMANENT if exc.smtp_code >= 500 else Outcome.TRANSIENT,
                              f"SMTP {exc.smtp_code} {_smtp_text(exc.smtp_error)}")
        except TimeoutError:
            return SendResult(Outcome.TRANSIENT, f"no answer within {self._timeout:g}s")
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(Outcome.TRANSIENT, f"SMTP connection failed ({type(exc).__name__})")
        return SendResult(Outcome.SENT, "accepted by the SMTP server")


def _smtp_text(text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return scrub(text, 200)


class WebhookSender:
    """POSTs the delivery's JSON document to a department system, signed to the Standard Webhooks spec so the
    receiver can check it came from us, unchanged, and recently (a replay of an old request is refused by its
    timestamp). The timestamp is this machine's wall clock when the request is signed (what the receiver
    compares with its own clock), not the service clock that schedules the delivery."""

    description = "department webhooks (Standard Webhooks signatures)"

    def __init__(self, *, timeout: float, wall_clock: Callable[[], float] = time.time):
        self._timeout = timeout
        self._wall_clock = wall_clock
        self._session = requests.Session()

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.document is None or not message.secrets:
            return SendResult(Outcome.PERMANENT, "nothing to sign or no secret configured")
        body = message.document.encode("utf-8")
        at = datetime.fromtimestamp(self._wall_clock(), UTC)
        # Standard Webhooks headers only: a retry is the same webhook-id with a new webhook-timestamp
        headers = {"Content-Type": "application/json; charset=utf-8",
                   **webhook_headers(message.secrets, message.delivery_id, at, body)}
        return _post(self._session, message.to, timeout=self._timeout, data=body, headers=headers)
