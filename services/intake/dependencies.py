"""Intake's nameko dependency: the rules it applies (catalogue, calendar), loaded once at start."""

from __future__ import annotations

from pathlib import Path

import yaml
from nameko.extensions import DependencyProvider

from services.intake.circle import CircleSettings
from services.intake.handlers import IntakeRules
from services.intake.settings import IntakeVariables
from shared.catalogue import load_catalogue
from shared.crypto import keyring_from_config
from shared.service_points import EMPTY, SERVICE_POINTS_FILE, ServicePoints, load_service_points
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    """Loads the catalogue and the working-day calendar once, at start; a broken file stops the service."""

    def setup(self):
        config = self.container.config
        catalogue = load_catalogue(config["SANJI_CATALOGUE_DIR"])
        self.rules = IntakeRules(
            catalogue=catalogue,
            calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
            keyring=keyring_from_config(config),
            deferral_working_days=IntakeVariables.read(config).deferral_working_days,
            bad_credit_fingerprints=load_credit_flags(config["SANJI_CREDIT_FLAGS_FILE"]),
            service_points=service_points_of(config, catalogue),
            circle=circle_settings(config),
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


def service_points_of(config, catalogue) -> ServicePoints:
    """SANJI_SERVICE_POINTS_FILE, else the catalogue's own service-points.yaml, else none (a city without points)."""
    named = config.get("SANJI_SERVICE_POINTS_FILE")
    if named:
        return load_service_points(named, catalogue)
    default = Path(config["SANJI_CATALOGUE_DIR"]) / SERVICE_POINTS_FILE
    return load_service_points(default, catalogue) if default.exists() else EMPTY


def circle_settings(config) -> CircleSettings:
    """The walking speed and the circle's minutes; a bad value stops the service at start, naming it."""
    variables = IntakeVariables.read(config)
    return CircleSettings(walking_speed_m_per_min=variables.walking_speed_m_per_min,
                          max_walking_minutes=variables.service_circle_minutes)
