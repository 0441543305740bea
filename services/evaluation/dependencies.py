"""The evaluation service's nameko dependencies: its rules (catalogue, calendar, settings, rating reasons, link
key), loaded and checked once at start, and a sweep timer whose interval is a setting."""

from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.evaluation.facts import EvaluationRules
from services.evaluation.settings import link_days, link_key, load_reasons, settings_from_config
from shared.catalogue import load_catalogue
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    def setup(self):
        config = self.container.config
        key = link_key(config)
        self.rules = EvaluationRules(
            catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
            calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
            settings=settings_from_config(config),
            reasons=load_reasons(config["SANJI_CATALOGUE_DIR"]),
            link_key=key,
            link_days=link_days(config),
            fingerprint_key="rater-fingerprint:" + key,
        )

    def get_dependency(self, worker_ctx):
        return self.rules


class SweepTimer(Timer):
    """nameko's timer, its interval from SANJI_EVALUATION_SWEEP_SECONDS."""

    def __init__(self, **kwargs):
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = settings_from_config(self.container.config).sweep_seconds


sweep_timer = SweepTimer.decorator
