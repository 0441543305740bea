"""The escalation service's nameko dependencies: the rules it works by (catalogue, calendar, settings, cause
taxonomy), loaded and checked once at start, and a timer whose interval is a setting."""

from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.escalation.records import EscalationRules
from services.escalation.settings import causes_file, load_causes, settings_from_config
from shared.catalogue import load_catalogue
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.rules = EscalationRules(
            catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
            calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
            settings=settings_from_config(config),
            causes=load_causes(causes_file(config)),
        )

    def get_dependency(self, worker_ctx):
        return self.rules


class SweepTimer(Timer):
    """nameko's timer, with its interval read from SANJI_ESCALATION_SWEEP_SECONDS at start.

    Not eager: the first sweep after a start waits one interval, so the consumer takes in the item events
    that queued up while the service was down before overdue deadlines are judged on a stale view."""

    def __init__(self, **kwargs):
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = settings_from_config(self.container.config).sweep_seconds


sweep_timer = SweepTimer.decorator
