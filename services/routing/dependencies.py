"""Routing's nameko dependency: the catalogue and calendar it routes by, loaded once at start."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.routing.handlers import RoutingRules
from shared.catalogue import load_catalogue
from shared.workdays import WorkdayCalendar


class Rules(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.rules = RoutingRules(catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
                                  calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]))

    def get_dependency(self, worker_ctx):
        return self.rules
