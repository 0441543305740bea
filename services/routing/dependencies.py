"""Routing's nameko dependency: the catalogue, calendar and return policy it works by, loaded once at start."""

from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.routing.item_actions import WorkRules
from services.routing.lifecycle import ReturnPolicy
from services.routing.settings import RoutingVariables
from shared.catalogue import load_catalogue
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.rules = WorkRules(
            catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
            calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
            return_policy=ReturnPolicy(max_returns=RoutingVariables.read(config).max_returns),
        )

    def get_dependency(self, worker_ctx):
        return self.rules


class FoldTimer(Timer):
    """nameko's timer, with its interval read from SANJI_STATUS_FOLD_SECONDS at start."""

    def __init__(self, **kwargs):
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = RoutingVariables.read(self.container.config).status_fold_seconds


fold_timer = FoldTimer.decorator
