"""The notification service's settings, read from the nameko container config and checked at start.

``shared.config`` copies every ``SANJI_NOTIFICATION_*`` environment variable into the container config;
the defaults below work on a laptop with no account anywhere: SMS and email go to files under ``var/``.
docs/settings.md lists every setting (generated from variables.py).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.notification.domain import QuietHours, RetryPolicy, WebhookSubscription, parse_rate_limits
from services.notification.variables import NotificationVariables
from shared.config import SettingsInvalid
from shared.rating_links import configured_link_key
from shared.webhooks import (  # noqa: F401 - re-exported: sanji webhooks new-secret, the tests
    MAX_WEBHOOK_SECRET_BYTES,
    MIN_WEBHOOK_SECRET_BYTES,
    WEBHOOK_SECRET_PREFIX,
    new_webhook_secret,
    webhook_secret_problem,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
SMS_TEMPLATES_FILE = Path(__file__).resolve().parent / "sms-templates.yaml"
SMS_PROVIDERS = ("http", "aliyun")
DEFAULT_RATE_LIMITS = "sms=20,email=10,webhook=50"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class NotificationConfigError(ValueError):
    """A setting the service cannot work with; the message names the variable."""


@dataclass(frozen=True)
class NotificationSettings:
    templates_dir: Path
    sms_url: str | None
    sms_api_key: str | None = field(repr=False)
    sms_sink: Path
    sms_templates_file: Path
    sms_provider: str
    sms_access_key_id: str | None
    sms_access_key_secret: str | None = field(repr=False)
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    smtp_starttls: bool
    email_from: str
    email_sink: Path
    webhooks: tuple[WebhookSubscription, ...]
    send_timeout: float
    quiet_hours: QuietHours
    rate_limits: Mapping[str, float]
    retry: RetryPolicy
    sweep_seconds: float
    batch_size: int
    concurrency: int
    # 好差评 links in the completion message: the public page that takes the token (unset: no link; `sanji run-all`
    # points it at the console's /rate/ in development), and the evaluation service's key (SANJI_EVALUATION_LINK_KEY,
    # else its settings file) and link lifetime, so the token this service signs is one evaluation verifies.
    rating_link_base: str | None = None
    rating_link_key: str | None = field(default=None, repr=False)
    rating_link_days: int = 30

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery stays out of other sweeps' reach: longer than the slowest batch
        (contact look-up and send, each bounded by the timeout), so no replica sends it meanwhile."""
        rounds = math.ceil(self.batch_size / self.concurrency)
        return 2 * self.send_timeout * rounds + 60

    @classmethod
    def from_config(cls, config: Mapping) -> NotificationSettings:
        try:  # every variable's type and range first (variables.py): one line naming a bad one
            NotificationVariables.read(config)
        except SettingsInvalid as exc:
            raise NotificationConfigError(str(exc)) from None

        def text(name: str, default: str | None = None) -> str | None:
            value = config.get(name)
            value = "" if value is None else str(value).strip()
            return value or default

        def number(name: str, default, *, integer: bool = False):
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                raise NotificationConfigError(f"{name}={raw!r} is not a {'whole ' if integer else ''}number") from None
            if not value > 0:
                raise NotificationConfigError(f"{name}={raw!r} must be positive")
            return value

        def flag(name: str) -> bool:
            raw = (text(name, "false") or "false").lower()
            if raw not in ("true", "false", "1", "0", "yes", "no"):
                raise NotificationConfigError(f"{name}={raw!r}: write true or false")
            return raw in ("true", "1", "yes")

        var_dir = Path(text("SANJI_VAR_DIR", str(Path(__file__).resolve().parents[2] / "var")))
        sms_url = text("SANJI_NOTIFICATION_SMS_URL")
        if sms_url and not re.match(r"https?://", sms_url):
            raise NotificationConfigError("SANJI_NOTIFICATION_SMS_URL must be an http:// or https:// URL")
        sms_provider = (text("SANJI_NOTIFICATION_SMS_PROVIDER", "http") or "http").lower()
        if sms_provider not in SMS_PROVIDERS:
            raise NotificationConfigError(f"SANJI_NOTIFICATION_SMS_PROVIDER={sms_provider!r}: write "
                                          f"{' or '.join(SMS_PROVIDERS)}")
        if sms_provider == "aliyun":
            if not sms_url:
                raise NotificationConfigError("SANJI_NOTIFICATION_SMS_PROVIDER=aliyun needs SANJI_NOTIFICATION_SMS_URL "
                                              "(the SendSms endpoint, e.g. https://dysmsapi.aliyuncs.com/)")
            for name in ("SANJI_NOTIFICATION_SMS_ACCESS_KEY_ID", "SANJI_NOTIFICATION_SMS_ACCESS_KEY_SECRET"):
                if not text(name):
                    raise NotificationConfigError(f"SANJI_NOTIFICATION_SMS_PROVIDER=aliyun needs {name}")
        try:
            quiet_hours = QuietHours.parse(text("SANJI_NOTIFICATION_QUIET_HOURS", "22:00-08:00"))
        except ValueError as exc:
            raise NotificationConfigError(f"SANJI_NOTIFICATION_QUIET_HOURS: {exc}") from None
        try:
            rate_limits = parse_rate_limits(text("SANJI_NOTIFICATION_RATE_LIMITS", DEFAULT_RATE_LIMITS))
        except ValueError as exc:
            raise NotificationConfigError(f"SANJI_NOTIFICATION_RATE_LIMITS: {exc}") from None
        retry = RetryPolicy(base_seconds=number("SANJI_NOTIFICATION_RETRY_BASE_SECONDS", 30.0),
                            cap_seconds=number("SANJI_NOTIFICATION_RETRY_CAP_SECONDS", 3600.0),
                            max_attempts=number("SANJI_NOTIFICATION_MAX_ATTEMPTS", 8, integer=True))
        if retry.cap_seconds < retry.base_seconds:
            raise NotificationConfigError("SANJI_NOTIFICATION_RETRY_CAP_SECONDS is shorter than the base delay")
        webhooks_file = text("SANJI_NOTIFICATION_WEBHOOKS_FILE")
        return cls(
            templates_dir=Path(text("SANJI_NOTIFICATION_TEMPLATES_DIR", str(TEMPLATES_DIR))),
            sms_url=sms_url,
            sms_api_key=text("SANJI_NOTIFICATION_SMS_API_KEY"),
            sms_sink=var_dir / "notification-sms.jsonl",
            sms_templates_file=Path(text("SANJI_NOTIFICATION_SMS_TEMPLATES_FILE", str(SMS_TEMPLATES_FILE))),
            sms_provider=sms_provider,
            sms_access_key_id=text("SANJI_NOTIFICATION_SMS_ACCESS_KEY_ID"),
            sms_access_key_secret=text("SANJI_NOTIFICATION_SMS_ACCESS_KEY_SECRET"),
            smtp_host=text("SANJI_NOTIFICATION_SMTP_HOST"),
            smtp_port=number("SANJI_NOTIFICATION_SMTP_PORT", 25, integer=True),
            smtp_username=text("SANJI_NOTIFICATION_SMTP_USERNAME"),
            smtp_password=text("SANJI_NOTIFICATION_SMTP_PASSWORD"),
            smtp_starttls=flag("SANJI_NOTIFICATION_SMTP_STARTTLS"),
            email_from=text("SANJI_NOTIFICATION_EMAIL_FROM", "notify@sanji.localhost"),
            email_sink=var_dir / "notification-email.jsonl",
            webhooks=load_webhooks(Path(webhooks_file)) if webhooks_file else (),
            send_timeout=number("SANJI_NOTIFICATION_SEND_TIMEOUT_SECONDS", 5.0),
            quiet_hours=quiet_hours,
            rate_limits=rate_limits,
            retry=retry,
            sweep_seconds=number("SANJI_NOTIFICATION_SWEEP_SECONDS", 1.0),
            batch_size=number("SANJI_NOTIFICATION_BATCH_SIZE", 50, integer=True),
            concurrency=number("SANJI_NOTIFICATION_CONCURRENCY", 10, integer=True),
            rating_link_base=text("SANJI_NOTIFICATION_RATING_LINK_BASE"),
            rating_link_key=configured_link_key(config) if text("SANJI_NOTIFICATION_RATING_LINK_BASE") else None,
            rating_link_days=number("SANJI_EVALUATION_LINK_DAYS", 30, integer=True),
        )


def _webhook_secrets(entry: Mapping, entry_where: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    if "secret" in entry or "secret_env" in entry:
        raise NotificationConfigError(
            f"{entry_where}: 'secret' and 'secret_env' were replaced by 'secrets_env' (production) or 'secrets' "
            "(development), lists of Standard Webhooks whsec_ secrets, the current one first (docs/notifications.md)")
    if ("secrets" in entry) == ("secrets_env" in entry):
        raise NotificationConfigError(f"{entry_where}: give either secrets_env (the variables holding the secrets) "
                                      "or secrets (the secrets themselves, development only)")
    key = "secrets_env" if "secrets_env" in entry else "secrets"
    listed = entry[key]
    if not isinstance(listed, list) or not listed or not all(isinstance(item, str) and item for item in listed):
        raise NotificationConfigError(f"{entry_where}: {key} must be a non-empty list, the current secret first")
    if key == "secrets_env":
        values = []
        for variable in listed:
            value = environ.get(variable, "").strip()
            if not value:
                raise NotificationConfigError(f"{entry_where}: the variable {variable} is not set")
            values.append((variable, value))
    else:
        values = [(f"secret {index + 1}", value.strip()) for index, value in enumerate(listed)]
    for label, value in values:
        problem = webhook_secret_problem(value)
        if problem:
            raise NotificationConfigError(f"{entry_where}: {label}: {problem}; make one with "
                                          "`sanji webhooks new-secret`")
    found = tuple(value for _, value in values)
    if len(set(found)) != len(found):
        raise NotificationConfigError(f"{entry_where}: the same secret is listed twice")
    return found


def load_webhooks(path: Path, environ: Mapping[str, str] = os.environ) -> tuple[WebhookSubscription, ...]:
    """The department webhooks file (YAML). Each entry lists its signing secrets, the current one first: the
    environment variables that hold them (``secrets_env``, production) or the secrets themselves
    (``secrets``, development). Two secrets while a key is rotated: every delivery is signed with each."""
    where = f"webhooks file {path}"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise NotificationConfigError(f"{where}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise NotificationConfigError(f"{where}: not valid YAML") from None
    entries = document.get("webhooks") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise NotificationConfigError(f"{where}: expected a mapping with a 'webhooks' list")
    hooks: list[WebhookSubscription] = []
    for index, entry in enumerate(entries):
        entry_where = f"{where}, entry {index + 1}"
        if not isinstance(entry, dict):
            raise NotificationConfigError(f"{entry_where}: must be a mapping")
        unknown = set(entry) - {"name", "url", "secrets", "secrets_env", "secret", "secret_env", "department",
                                "scope", "kinds"}
        if unknown:
            raise NotificationConfigError(f"{entry_where}: unknown key(s) {', '.join(sorted(unknown))}")
        name = str(entry.get("name", ""))
        if not _NAME.fullmatch(name):
            raise NotificationConfigError(f"{entry_where}: name must be lower-case letters, digits and dashes")
        entry_where = f"{where}, webhook {name}"
        if any(hook.name == name for hook in hooks):
            raise NotificationConfigError(f"{entry_where}: the name is used twice")
        url = str(entry.get("url", ""))
        if not re.match(r"https?://", url):
            raise NotificationConfigError(f"{entry_where}: url must be an http:// or https:// URL")
        signing_secrets = _webhook_secrets(entry, entry_where, environ)
        scope = entry.get("scope")
        if scope is not None and not re.fullmatch(r"\d{12}", str(scope)):
            raise NotificationConfigError(f"{entry_where}: scope must be a 12-digit unit code (quote it)")
        kinds = entry.get("kinds") or ()
        if not isinstance(kinds, list | tuple) or not all(isinstance(kind, str) for kind in kinds):
            raise NotificationConfigError(f"{entry_where}: kinds must be a list of message kinds")
        hooks.append(WebhookSubscription(name=name, url=url, secrets=signing_secrets,
                                         department=entry.get("department"),
                                         scope=str(scope) if scope is not None else None, kinds=tuple(kinds)))
    return tuple(hooks)
