"""Routing's nameko dependency: the catalogue, calendar and return policy it works by, loaded once at start."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

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
