"""Intake's nameko dependency: the rules it applies (catalogue, calendar), loaded once at start."""

from __future__ import annotations

from pathlib import Path

import yaml
from nameko.extensions import DependencyProvider

from services.intake.handlers import IntakeRules
from shared.catalogue import load_catalogue
from shared.crypto import keyring_from_config
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    """Loads the catalogue and the working-day calendar once, at start; a broken file stops the service."""

    def setup(self):
        config = self.container.config
        self.rules = IntakeRules(
            catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
            calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
            keyring=keyring_from_config(config),
            deferral_working_days=int(config.get("SANJI_DEFERRAL_WORKING_DAYS", 5)),
            bad_credit_fingerprints=load_credit_flags(config["SANJI_CREDIT_FLAGS_FILE"]),
        )

    def get_dependency(self, worker_ctx):
        return self.rules


class CreditFlagsError(ValueError):
    pass


def load_credit_flags(path) -> frozenset[str]:
    """Fingerprints of applicants flagged for bad credit; a malformed file stops the service at start."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CreditFlagsError(f"credit flags file {path}: {exc}") from None
    flagged = document.get("flagged") or [] if isinstance(document, dict) else None
    if not isinstance(flagged, list) or not all(isinstance(f, str) and len(f) == 64 for f in flagged):
        raise CreditFlagsError(f"credit flags file {path}: 'flagged' must list 64-hex-digit fingerprints")
    return frozenset(fingerprint.lower() for fingerprint in flagged)
