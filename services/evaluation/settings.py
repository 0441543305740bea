"""The evaluation service's settings (SANJI_EVALUATION_*), read and checked once at start.

| variable | default | meaning |
|---|---|---|
| SANJI_EVALUATION_LINK_KEY | — (from the settings file) | key of the signed rating links; **set it in production** |
| SANJI_EVALUATION_SETTINGS_FILE | config/evaluation-dev.yaml | a YAML file that may hold ``link_key`` (development) |
| SANJI_EVALUATION_LINK_DAYS | 30 | a rating link expires this many days after completion |
| SANJI_EVALUATION_RATING_WINDOW_DAYS | 30 | ratings are taken this many days after completion |
| SANJI_EVALUATION_CHANGE_HOURS | 24 | a rating may be changed (replaced) within this many hours |
| SANJI_EVALUATION_RECTIFICATION_DAYS | 5 | working days a unit has to close a rectification |
| SANJI_EVALUATION_ESCALATE_AFTER_DAYS | 2 | working days after an overdue warning before the level above takes it up |
| SANJI_EVALUATION_BASIC_WEIGHT | 0.6 | weight of 基本满意 in the satisfaction rate |
| SANJI_EVALUATION_RESPONSE_DAYS | 1 | working days to claim or accept an item (the response rate) |
| SANJI_EVALUATION_MAX_RATINGS_PER_RATER | 5 | ratings from one phone in a period above which it is flagged |
| SANJI_EVALUATION_ATTACHMENT_MAX_BYTES | 2097152 | largest 体验官 photo |
| SANJI_EVALUATION_SWEEP_SECONDS | 60 | how often overdue rectifications are looked for |

The key has no default in code: without ``SANJI_EVALUATION_LINK_KEY`` and without a settings file that holds
one, the service refuses to start.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from services.evaluation.domain import EvaluationSettings, ReasonCatalogue
from shared.rating_links import configured_link_key


class SettingsError(ValueError):
    pass


def _number(config: dict, name: str, default, kind=int, minimum=0):
    raw = config.get(f"SANJI_EVALUATION_{name}")
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"SANJI_EVALUATION_{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"SANJI_EVALUATION_{name} must be at least {minimum}")
    return value


def settings_from_config(config: dict) -> EvaluationSettings:
    weight = _number(config, "BASIC_WEIGHT", 0.6, float)
    if weight > 1:
        raise SettingsError("SANJI_EVALUATION_BASIC_WEIGHT is a weight between 0 and 1")
    return EvaluationSettings(
        rating_window_days=_number(config, "RATING_WINDOW_DAYS", 30, minimum=1),
        change_window_hours=_number(config, "CHANGE_HOURS", 24),
        rectification_days=_number(config, "RECTIFICATION_DAYS", 5, minimum=1),
        escalate_after_days=_number(config, "ESCALATE_AFTER_DAYS", 2, minimum=1),
        basic_weight=weight,
        response_working_days=_number(config, "RESPONSE_DAYS", 1),
        max_ratings_per_rater=_number(config, "MAX_RATINGS_PER_RATER", 5, minimum=1),
        attachment_max_bytes=_number(config, "ATTACHMENT_MAX_BYTES", 2 * 1024 * 1024, minimum=1),
        sweep_seconds=_number(config, "SWEEP_SECONDS", 60.0, float, minimum=0.01),
    )


def link_days(config: dict) -> int:
    return _number(config, "LINK_DAYS", 30, minimum=1)


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
