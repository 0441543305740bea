"""Routing's own settings (no service prefix, for history): read from the container config, checked at start.

docs/settings.md lists them, generated from ``RoutingVariables``. ``shared.config`` passes them on from the
environment (``PASSED_ON_VARIABLES``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.config import SanjiSettings, setting


class RoutingVariables(SanjiSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "routing"

    max_returns: int = setting(2, "returns after which the level above decides and returns stop", ge=0)
    status_fold_seconds: float = setting(
        30.0, "how often each replica folds the status changes items recorded into the per-status counts that "
        "`/metrics` reads (services/routing/status_counts.py)", gt=0, le=3600)
