"""The escalation service's settings, read from the nameko container config and checked at start.

``shared.config`` copies every ``SANJI_ESCALATION_*`` environment variable into the container config. Every
setting has a working default; docs/escalation.md lists them. A value the service cannot work with stops it
at start with a message naming the variable, never later in the middle of a sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

from shared.config import REPO_ROOT

DEFAULT_CAUSES_FILE = REPO_ROOT / "config" / "failure-causes.yaml"


class EscalationConfigError(ValueError):
    """A setting or file the service cannot work with; the message names it."""


@dataclass(frozen=True)
class Cause:
    code: str
    name: str
    retired: bool = False


@dataclass(frozen=True)
class EscalationSettings:
    warning_share: float = 0.8               # 督办 warning at this share of the promised working time
    street_loop_days: int = 3                # the street's own time box for an internal-loop matter
    whistle_ack_minutes: int = 30            # 吹哨: how long a called department has to acknowledge
    opinion_days: int = 5                    # 办不成事, complex: the department's opinion is due in these working days
    deferral_days: int = 5                   # 容缺 granted by a specialist: default working days to supply
    sweep_seconds: float = 10.0              # how often each replica looks for due deadlines
    batch_size: int = 200                    # due deadlines handled per sweep and replica

    @property
    def whistle_ack_limit(self) -> timedelta:
        return timedelta(minutes=self.whistle_ack_minutes)


_NUMBERS = {
    "SANJI_ESCALATION_WARNING_SHARE": ("warning_share", float, lambda v: 0 < v < 1, "a share between 0 and 1"),
    "SANJI_ESCALATION_STREET_LOOP_DAYS": ("street_loop_days", int, lambda v: 1 <= v <= 60, "1 to 60 working days"),
    "SANJI_ESCALATION_WHISTLE_ACK_MINUTES": ("whistle_ack_minutes", int, lambda v: 1 <= v <= 24 * 60,
                                             "1 to 1440 minutes"),
    "SANJI_ESCALATION_OPINION_DAYS": ("opinion_days", int, lambda v: 1 <= v <= 60, "1 to 60 working days"),
    "SANJI_ESCALATION_DEFERRAL_DAYS": ("deferral_days", int, lambda v: 1 <= v <= 60, "1 to 60 working days"),
    "SANJI_ESCALATION_SWEEP_SECONDS": ("sweep_seconds", float, lambda v: 0 < v <= 3600, "0 to 3600 seconds"),
    "SANJI_ESCALATION_BATCH_SIZE": ("batch_size", int, lambda v: 1 <= v <= 10_000, "1 to 10000"),
}


def settings_from_config(config: Mapping) -> EscalationSettings:
    values = {}
    for name, (attribute, kind, valid, expected) in _NUMBERS.items():
        raw = config.get(name)
        if raw is None or str(raw).strip() == "":
            continue
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise EscalationConfigError(f"{name}={raw!r}: expected {expected}") from None
        if not valid(value):
            raise EscalationConfigError(f"{name}={raw!r}: expected {expected}")
        values[attribute] = value
    return EscalationSettings(**values)


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
