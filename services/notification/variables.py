"""The notification service's variables (SANJI_NOTIFICATION_*): name, type, default, meaning and range.

``NotificationSettings.from_config`` (settings.py) checks the container config against this model first, so
a value of the wrong type or out of range stops the service with one line naming the variable; it then
builds its own settings from the same values. docs/settings.md is generated from this model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator
from pydantic_settings import SettingsConfigDict

from services.notification.domain import QuietHours, parse_rate_limits
from shared.config import Flag, Port, SanjiSettings, setting

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_RATE_LIMITS = "sms=20,email=10,webhook=50"


def _lowercase(value: Any) -> Any:
    return str(value).strip().lower() if isinstance(value, str) else value


def _http_url(value: Any) -> Any:
    if value is not None and not re.match(r"https?://", str(value)):
        raise ValueError("expected an http:// or https:// URL")
    return value


def _quiet_hours(value: Any) -> Any:
    try:
        QuietHours.parse(str(value))
    except ValueError as exc:
        raise ValueError(f"expected HH:MM-HH:MM or off ({exc})") from None
    return value


def _rate_limits(value: Any) -> Any:
    try:
        parse_rate_limits(str(value))
    except ValueError as exc:
        raise ValueError(f"expected provider=messages per second pairs ({exc})") from None
    return value


class NotificationVariables(SanjiSettings):
    """The notification service's settings, each SANJI_NOTIFICATION_<NAME>."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_NOTIFICATION_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "notification"

    templates_dir: Path = setting(DEFAULT_TEMPLATES_DIR, "the message templates (Jinja2, checked at start)")
    sms_url: Annotated[str | None, BeforeValidator(_http_url)] = setting(
        None, "SMS gateway; unset: SMS go to `var/notification-sms.jsonl` (refused in production)", kind="URL")
    sms_api_key: str | None = setting(None, "the gateway's bearer API key", secret=True)
    sms_provider: Annotated[Literal["http", "aliyun"], BeforeValidator(_lowercase)] = setting(
        "http", "`http` (the generic gateway: text plus template) or `aliyun` (`SendSms`; needs "
        "`SANJI_NOTIFICATION_SMS_URL`, `..._SMS_ACCESS_KEY_ID` and `..._SMS_ACCESS_KEY_SECRET`)")
    sms_access_key_id: str | None = setting(None, "the SMS provider's AccessKey ID (`aliyun`)")
    sms_access_key_secret: str | None = setting(None, "the SMS provider's AccessKey secret (`aliyun`)",
                                                secret=True)
    sms_templates_file: Path = setting(
        Path(__file__).resolve().parent / "sms-templates.yaml", "sign name and, per SMS kind, the provider's "
        "template code, wording and parameters (checked at start)")
    smtp_host: str | None = setting(
        None, "SMTP server; unset: e-mail goes to `var/notification-email.jsonl` (refused in production)")
    smtp_port: Port = setting(25, "SMTP port", kind="port")
    smtp_username: str | None = setting(None, "SMTP user name (unset: no login)")
    smtp_password: str | None = setting(None, "SMTP password", secret=True)
    smtp_starttls: Flag = setting(False, "STARTTLS on the SMTP connection")
    email_from: str = setting("notify@sanji.localhost", "From address")
    webhooks_file: Path | None = setting(
        None, "department webhooks (YAML; Standard Webhooks `whsec_` secrets by `secrets_env`, current first; "
        "`sanji webhooks new-secret`)")
    send_timeout_seconds: float = setting(5.0, "timeout of one send, and of one contact look-up in intake", gt=0)
    quiet_hours: Annotated[str, BeforeValidator(_quiet_hours)] = setting(
        "22:00-08:00", "no SMS to residents then (Asia/Shanghai) unless urgent; `off` disables")
    rate_limits: Annotated[str, BeforeValidator(_rate_limits)] = setting(
        DEFAULT_RATE_LIMITS, "messages per second per provider, per replica")
    retry_base_seconds: float = setting(30.0, "first backoff step after a transient send failure", gt=0)
    retry_cap_seconds: float = setting(3600.0, "longest backoff step (not shorter than the first)", gt=0)
    max_attempts: int = setting(8, "attempts before a transient failure is given up as failed", ge=1)
    sweep_seconds: float = setting(1.0, "how often each replica looks for due deliveries", gt=0)
    batch_size: int = setting(50, "deliveries one sweep claims per channel", ge=1)
    concurrency: int = setting(10, "sends in flight at once in one sweep", ge=1)
    retention_days: float = setting(
        90.0, "a finished delivery (sent, or skipped: nothing to send to) and its attempts are deleted this many "
        "days after it was planned; its row is also what stops a late duplicate of its event from sending "
        "again, so keep it at least `SANJI_RETENTION_PROCESSED_DAYS` (`docs/reliability.md`). Failed and "
        "pending deliveries stay. `0`: kept for ever", ge=0, allow_inf_nan=False, kind="days")
    inbox_retention_days: float = setting(
        365.0, "a staff inbox message (with its delivery) is deleted this many days after it was written. `0`: "
        "kept for ever", ge=0, allow_inf_nan=False, kind="days")
    rating_link_base: str | None = setting(
        None, "public 好差评 page; set, the completion SMS carries a signed rating link (production: a public "
        "`https://` address only)", shown_default="development (`sanji run-all`): the console's `/rate/`; "
        "production: — (no link)")
