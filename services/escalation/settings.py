"""The escalation service's settings, read from the nameko container config and checked at start.

``shared.config`` copies every ``SANJI_ESCALATION_*`` environment variable into the container config. Every
setting has a working default; docs/settings.md lists them (generated from ``EscalationSettings``). A value
the service cannot work with stops it at start with a message naming the variable, never later in the middle
of a sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import yaml
from pydantic_settings import SettingsConfigDict

from shared.config import REPO_ROOT, SanjiSettings, SettingsInvalid, setting

DEFAULT_CAUSES_FILE = REPO_ROOT / "config" / "failure-causes.yaml"


class EscalationConfigError(ValueError):
    """A setting or file the service cannot work with; the message names it."""


@dataclass(frozen=True)
class Cause:
    code: str
    name: str
    retired: bool = False


class EscalationSettings(SanjiSettings):
    """The local rules' numbers, each SANJI_ESCALATION_<NAME> (docs/settings.md lists them)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_ESCALATION_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "escalation"

    warning_share: float = setting(0.8, "督办 warning at this share of the promised working time", gt=0, lt=1)
    street_loop_days: int = setting(3, "working days an internal-loop item gets at the street before the district",
                                    ge=1, le=60)
    whistle_ack_minutes: int = setting(30, "吹哨: minutes a called department has to acknowledge", ge=1,
                                       le=24 * 60)
    opinion_days: int = setting(5, "办不成事, complex: working days for the department's opinion", ge=1, le=60)
    deferral_days: int = setting(5, "容缺 granted by a specialist: default working days to supply the material",
                                 ge=1, le=60)
    sweep_seconds: float = setting(10.0, "how often each replica looks for due deadlines", gt=0, le=3600)
    batch_size: int = setting(200, "due deadlines handled per sweep and replica", ge=1, le=10_000)
    failed_attempts: int = setting(5, "failed attempts to fire a deadline before it is parked (state `parked`)",
                                   ge=1, le=100)
    retry_seconds: float = setting(60.0, "wait before a failed deadline is tried again, doubled after each failure "
                                   "(at most an hour)", gt=0, le=3600)
    causes_file: Path | None = setting(
        None, "the 办不成事 cause taxonomy (YAML)", shown_default="`failure-causes.yaml` beside "
        "`SANJI_CALENDAR_OVERRIDES` (`config/failure-causes.yaml`)")

    @property
    def whistle_ack_limit(self) -> timedelta:
        return timedelta(minutes=self.whistle_ack_minutes)


def settings_from_config(config: Mapping) -> EscalationSettings:
    try:
        return EscalationSettings.read(config)
    except SettingsInvalid as exc:
        raise EscalationConfigError(str(exc)) from None


def causes_file(config: Mapping) -> Path:
    """SANJI_ESCALATION_CAUSES_FILE, else ``failure-causes.yaml`` beside the calendar overrides: the directory of
    local-rule files (``config/`` in a checkout, ``/app/config`` in the image)."""
    if config.get("SANJI_ESCALATION_CAUSES_FILE"):
        return Path(config["SANJI_ESCALATION_CAUSES_FILE"])
    if config.get("SANJI_CALENDAR_OVERRIDES"):
        return Path(config["SANJI_CALENDAR_OVERRIDES"]).parent / DEFAULT_CAUSES_FILE.name
    return DEFAULT_CAUSES_FILE


def load_causes(path: str | Path) -> dict[str, Cause]:
    """The cause taxonomy (config/failure-causes.yaml): code -> Cause, in file order."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EscalationConfigError(f"causes file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise EscalationConfigError(f"causes file {path}: not valid YAML ({exc.__class__.__name__})") from None
    entries = document.get("causes") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise EscalationConfigError(f"causes file {path}: expected a mapping with a non-empty 'causes' list")
    causes: dict[str, Cause] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"causes file {path}, entry {position}"
        if not isinstance(entry, dict) or set(entry) - {"code", "name", "retired"}:
            raise EscalationConfigError(f"{where}: expected code, name and optionally retired")
        code, name = entry.get("code"), entry.get("name")
        if not isinstance(code, str) or not code or not code.replace("-", "").isalnum() or code != code.lower():
            raise EscalationConfigError(f"{where}: code must be a lower-case kebab code")
        if not isinstance(name, str) or not name.strip():
            raise EscalationConfigError(f"{where} ({code}): name is missing")
        if code in causes:
            raise EscalationConfigError(f"{where}: code {code!r} is listed twice")
        causes[code] = Cause(code=code, name=name.strip(), retired=bool(entry.get("retired", False)))
    return causes
