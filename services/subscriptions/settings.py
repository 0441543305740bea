"""The subscriptions service's settings (SANJI_SUBSCRIPTIONS_*), read from the container config and checked at
start. docs/settings.md lists them, generated from ``SubscriptionsVariables``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import ClassVar

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from services.subscriptions.retry_policy import RetryPolicy
from shared.config import SanjiSettings, setting

# RabbitMQ's x-max-age: a number and one of Y, M, D, h, m, s.
_MAX_AGE = re.compile(r"[1-9][0-9]{0,5}[YMDhms]")


class SubscriptionsVariables(SanjiSettings):
    """The subscriptions service's settings, each SANJI_SUBSCRIPTIONS_<NAME>."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_SUBSCRIPTIONS_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "subscriptions"

    stream_max_age: str = setting("30D", "how long a subscription's stream keeps events (RabbitMQ `x-max-age`: a "
                                  "number and Y, M, D, h, m or s)")
    retention_days: float = setting(
        30.0, "a delivered delivery and its attempts, and then a matched event no delivery needs, are deleted this "
        "many days after they were matched; a delivery's row also stops a late duplicate of its event from being "
        "delivered again, so keep it at least `SANJI_RETENTION_PROCESSED_DAYS` (`docs/reliability.md`). Given-up and "
        "owed deliveries, and the disclosure log, stay. `0`: kept for ever", ge=0, allow_inf_nan=False, kind="days")
    sweep_seconds: float = setting(1.0, "how often due deliveries (stream and webhook) are looked for; a matched "
                                   "event wakes the sweep at once", gt=0, allow_inf_nan=False)
    batch_size: int = setting(100, "deliveries claimed per sweep batch", ge=1, le=1000)
    concurrency: int = setting(20, "webhook requests sent at once per replica", ge=1, le=200)
    webhook_timeout: float = setting(10.0, "seconds a webhook endpoint has to answer", gt=0, le=60,
                                     allow_inf_nan=False)
    lease_seconds: float = setting(120.0, "a claimed webhook delivery is not claimed again by another replica "
                                   "for this long (longer than the timeout)", gt=0, allow_inf_nan=False)
    retry_base_seconds: float = setting(30.0, "first ceiling of the full-jitter backoff after a failed webhook "
                                        "attempt; doubles with each failure", gt=0, allow_inf_nan=False)
    retry_cap_seconds: float = setting(6 * 3600.0, "largest ceiling of the backoff", gt=0, allow_inf_nan=False)
    give_up_seconds: float = setting(24 * 3600.0, "a webhook delivery whose first attempt is this long ago is "
                                     "given up at its next failure (redeliverable)", gt=0, allow_inf_nan=False)
    disable_seconds: float = setting(24 * 3600.0, "a webhook endpoint failing every attempt for this long is "
                                     "disabled (the owner re-enables it)", gt=0, allow_inf_nan=False)
    secret_grace_seconds: float = setting(24 * 3600.0, "after a rotation, the previous signing secret still "
                                          "signs for this long", ge=0, allow_inf_nan=False)

    broker_user_prefix: str = setting("", "prefix of the department systems' broker users, as `sanji bus setup` "
                                      "made them (`SANJI_DEV_BUS_USER_PREFIX`): a department's stream is named "
                                      "after its broker user", shown_default="—")

    @field_validator("stream_max_age")
    @classmethod
    def _max_age(cls, value: str) -> str:
        if not _MAX_AGE.fullmatch(value):
            raise ValueError("expected a RabbitMQ max-age such as 30D, 12h or 1Y")
        return value

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(base=timedelta(seconds=self.retry_base_seconds),
                           cap=timedelta(seconds=self.retry_cap_seconds),
                           give_up_after=timedelta(seconds=self.give_up_seconds),
                           disable_after=timedelta(seconds=self.disable_seconds))
