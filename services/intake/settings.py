"""Intake's own settings (no service prefix, for history): read from the container config, checked at start.

docs/settings.md lists them, generated from ``IntakeVariables``. ``shared.config`` passes them on from the
environment (``PASSED_ON_VARIABLES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from services.intake.circle import DEFAULT_CIRCLE_MINUTES, DEFAULT_WALKING_SPEED_M_PER_MIN
from shared.config import SanjiSettings, setting


class IntakeVariables(SanjiSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "intake"

    deferral_working_days: int = setting(5, "容缺 period in working days, capped by each matter's promised limit",
                                         ge=1)
    service_points_file: Path | None = setting(
        None, "the 15-minute circle's service points", read_by="intake, console, `sanji check-catalogue`",
        shown_default="the catalogue's `service-points.yaml` (none if the catalogue has no such file)")
    walking_speed_m_per_min: float = setting(DEFAULT_WALKING_SPEED_M_PER_MIN, "walking speed of the circle, in "
                                             "metres a minute", ge=20, le=200, allow_inf_nan=False)
    service_circle_minutes: int = setting(DEFAULT_CIRCLE_MINUTES, "walking minutes of the circle", ge=1, le=120)
