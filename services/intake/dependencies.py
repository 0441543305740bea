"""Intake's nameko dependency: the rules it applies (catalogue, calendar), loaded once at start."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.intake.handlers import IntakeRules
from shared.catalogue import load_catalogue
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    """Loads the catalogue and the working-day calendar once, at start; a broken file stops the service."""

    def setup(self):
        config = self.container.config
        self.rules = IntakeRules(
            catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
            calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
            pii_key=config["SANJI_PII_KEY"].encode(),
            deferral_working_days=int(config.get("SANJI_DEFERRAL_WORKING_DAYS", 5)),
        )

    def get_dependency(self, worker_ctx):
        return self.rules
