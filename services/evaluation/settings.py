"""The evaluation service's settings (SANJI_EVALUATION_*), read and checked once at start.

docs/settings.md lists them, generated from ``EvaluationVariables`` below.

The key has no default in code: without ``SANJI_EVALUATION_LINK_KEY`` and without a settings file that holds
one, the service refuses to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import yaml
from pydantic_settings import SettingsConfigDict

from services.evaluation.domain import EvaluationSettings, ReasonCatalogue
from shared.config import SanjiSettings, SettingsInvalid, setting
from shared.rating_links import DEV_SETTINGS_FILE, configured_link_key


class SettingsError(ValueError):
    pass


class EvaluationVariables(SanjiSettings):
    """The evaluation service's settings, each SANJI_EVALUATION_<NAME>."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_EVALUATION_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "evaluation"

    link_key: str | None = setting(
        None, "key of the signed rating links (好差评 from the completion SMS); **set it in production**. The "
        "notification service signs with it too when `SANJI_NOTIFICATION_RATING_LINK_BASE` is set", secret=True,
        shown_default="`link_key` of `SANJI_EVALUATION_SETTINGS_FILE`", read_by="evaluation, notification")
    settings_file: Path = setting(DEV_SETTINGS_FILE, "a YAML file that may hold `link_key` (development)",
                                  read_by="evaluation, notification")
    link_days: int = setting(30, "a rating link expires this many days after completion", ge=1,
                             read_by="evaluation, notification")
    rating_window_days: int = setting(30, "ratings are taken this many days after completion", ge=1)
    change_hours: int = setting(24, "a rating may be changed (replaced) within this many hours", ge=0)
    rectification_days: int = setting(5, "working days a unit has to close a rectification", ge=1)
    escalate_after_days: int = setting(2, "working days after an overdue warning before the level above takes "
                                          "it up", ge=1)
    basic_weight: float = setting(0.6, "weight of 基本满意 in the satisfaction rate", ge=0, le=1)
    response_days: int = setting(1, "working days to claim or accept an item (the response rate)", ge=0)
    max_ratings_per_rater: int = setting(5, "ratings from one phone in a period above which it is flagged", ge=1)
    attachment_max_bytes: int = setting(2 * 1024 * 1024, "largest 体验官 photo, in bytes", ge=1)
    sweep_seconds: float = setting(60.0, "how often overdue rectifications are looked for", ge=0.01)


def variables_from_config(config: dict) -> EvaluationVariables:
    try:
        return EvaluationVariables.read(config)
    except SettingsInvalid as exc:
        raise SettingsError(str(exc)) from None


def settings_from_config(config: dict) -> EvaluationSettings:
    variables = variables_from_config(config)
    return EvaluationSettings(
        rating_window_days=variables.rating_window_days,
        change_window_hours=variables.change_hours,
        rectification_days=variables.rectification_days,
        escalate_after_days=variables.escalate_after_days,
        basic_weight=variables.basic_weight,
        response_working_days=variables.response_days,
        max_ratings_per_rater=variables.max_ratings_per_rater,
        attachment_max_bytes=variables.attachment_max_bytes,
        sweep_seconds=variables.sweep_seconds,
    )


def link_days(config: dict) -> int:
    return variables_from_config(config).link_days


def link_key(config: dict) -> str:
    key = configured_link_key(config)
    if not key:
        raise SettingsError("no rating-link key: set SANJI_EVALUATION_LINK_KEY (or link_key in "
                            "SANJI_EVALUATION_SETTINGS_FILE)")
    return key


def load_reasons(catalogue_dir: str | Path) -> ReasonCatalogue:
    path = Path(catalogue_dir) / "rating-reasons.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SettingsError(f"rating reasons {path}: {exc.strerror}") from None

    def codes(kind: str) -> frozenset[str]:
        entries = document.get(kind) or []
        if not all(isinstance(e, dict) and e.get("code") for e in entries):
            raise SettingsError(f"rating reasons {path}: every {kind} entry needs a code")
        return frozenset(str(e["code"]) for e in entries)

    praise, complaint = codes("praise"), codes("complaint")
    names = {str(e["code"]): str(e.get("name") or e["code"])
             for kind in ("praise", "complaint") for e in document.get(kind) or []}
    return ReasonCatalogue(praise=praise, complaint=complaint, names=names)
