"""Routing's nameko entrypoints: consume submitted cases; serve /health."""

from __future__ import annotations

from nameko.web.handlers import http

from services.routing import handlers
from services.routing.dependencies import Rules
from shared.http import json_response
from shared.nameko_ext import ClockProvider, Storage, consume_events
from shared.topology import ROUTING_CASE_SUBMITTED


class RoutingService:
    name = "routing"

    storage = Storage()
    rules = Rules()
    clock = ClockProvider()

    @consume_events(ROUTING_CASE_SUBMITTED)
    def on_case_submitted(self, event):
        handlers.route_submitted_case(event, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules)

    @http("GET", "/health")
    def health(self, request):
        return json_response(*self.storage.health())
