"""Routing's nameko entrypoints: route submitted cases, serve the staff API, sweep due 容缺 materials."""

from __future__ import annotations

import json

from nameko.timer import timer
from werkzeug.wrappers import Response

from services.routing import handlers, item_actions, revisions, status_counts, sweeps
from services.routing.api import ACTION_BODIES, routing_openapi
from services.routing.dependencies import Rules, fold_timer
from services.routing.lifecycle import Action
from services.routing.metrics import RoutingItemsCollector
from services.routing.queue_cursor import BadCursor, decode_cursor, encode_cursor
from services.routing.schemas import CustodyStep, ItemList, ItemQueuePage
from shared.calendar_revision import RevisionTriggerProvider
from shared.http import ApiError, api_endpoint, json_response, page_of, read_json
from shared.nameko_ext import consume_events
from shared.service_base import SanjiService
from shared.topology import ROUTING_CASE_SUBMITTED, ROUTING_DEFERRAL_REVISIONS, ROUTING_ESCALATION_ORDERS
from shared.web import http

SWEEP_INTERVAL_SECONDS = 30



def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, "invalid_query", "overdue must be true or false")


class RoutingService(SanjiService):
    name = "routing"
    storage_collectors = {"routing_items": RoutingItemsCollector}

    rules = Rules()
    # Per process: whether the calendar changed since this replica last revised provisional deadlines.
    revision_trigger = RevisionTriggerProvider()

    @consume_events(ROUTING_CASE_SUBMITTED)
    def on_case_submitted(self, event):
        handlers.route_submitted_case(event, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules)

    @consume_events(ROUTING_ESCALATION_ORDERS)
    def on_escalation_ordered(self, event):
        handlers.escalate_item(event, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules)

    @timer(interval=SWEEP_INTERVAL_SECONDS)
    def sweep_deferrals(self):
        return sweeps.sweep_deferrals(lambda: self.storage.unit_of_work(self.clock), rules=self.rules,
                                      now=self.clock.now())

    @fold_timer()
    def fold_status_counts(self):
        """The per-status changes items recorded, folded into the counts /metrics reads."""
        return status_counts.fold_status_changes(self.storage.unit_of_work(self.clock))

    @consume_events(ROUTING_DEFERRAL_REVISIONS)
    def on_deferral_revised(self, event):
        revisions.apply_deferral_revision(event, unit_of_work=self.storage.unit_of_work(self.clock))

    @timer(interval=SWEEP_INTERVAL_SECONDS)
    def revise_deadlines(self):
        """Once a year's holiday arrangement is loaded, count its provisional deadlines again."""
        version = self.revision_trigger.due(self.rules.calendar)
        if version is None:
            return None
        report = revisions.revise_provisional_deadlines(lambda: self.storage.unit_of_work(self.clock),
                                                        rules=self.rules)
        self.revision_trigger.done(version)
        return report.as_dict()

    @http("GET", "/v1/items")
    @api_endpoint
    def list_items(self, request):
        principal = self.authenticate(request)
        if "offset" in request.args:
            raise ApiError(400, "invalid_query", "the queue pages with cursor (the next_cursor of the page before), "
                                                 "not offset")
        limit, _ = page_of(request)
        try:
            after = decode_cursor(request.args["cursor"]) if "cursor" in request.args else None
        except BadCursor:
            raise ApiError(400, "invalid_query", "cursor is not one this queue gave out") from None
        page = item_actions.list_queue(
            principal, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules, now=self.clock.now(),
            status=request.args.get("status"), matter=request.args.get("matter"),
            overdue=_flag(request.args.get("overdue")), limit=limit, after=after)
        return json_response(200, ItemQueuePage(
            items=page.items, count=page.count, count_exact=page.count_exact,
            next_cursor=encode_cursor(page.next_position) if page.next_position else None))

    @http("GET", "/v1/accepted-items")
    @api_endpoint
    def list_accepted_items(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        items, total = item_actions.list_accepted_here(
            principal, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules, now=self.clock.now(),
            status=request.args.get("status"), limit=limit, offset=offset)
        return json_response(200, ItemList(items=items, total=total))

    @http("GET", "/v1/items/<string:item_id>")
    @api_endpoint
    def get_item(self, request, item_id):
        principal = self.authenticate(request)
        view = item_actions.get_item(item_id, principal, unit_of_work=self.storage.unit_of_work(self.clock),
                                     rules=self.rules, now=self.clock.now())
        return json_response(200, view)

    @http("POST", "/v1/items/<string:item_id>/custody")
    @api_endpoint
    def record_custody(self, request, item_id):
        principal = self.authenticate(request)
        body = read_json(request, CustodyStep)
        view = item_actions.record_custody(item_id, principal, body, rules=self.rules, now=self.clock.now(),
                                           unit_of_work=self.storage.unit_of_work(self.clock))
        return json_response(200, view)

    @http("POST", "/v1/items/<string:item_id>/<string:action_name>")
    @api_endpoint
    def act_on_item(self, request, item_id, action_name):
        principal = self.authenticate(request)
        try:
            action = Action(action_name)
        except ValueError:
            action = None
        if action not in ACTION_BODIES:
            raise ApiError(404, "unknown_action", f"no action {action_name!r}",
                           actions=sorted(str(a) for a in ACTION_BODIES))
        body = read_json(request, ACTION_BODIES[action])
        view = item_actions.act(item_id, action, principal, body, rules=self.rules, now=self.clock.now(),
                                unit_of_work=self.storage.unit_of_work(self.clock))
        return json_response(200, view)

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return Response(json.dumps(routing_openapi(), ensure_ascii=False), content_type="application/json")

