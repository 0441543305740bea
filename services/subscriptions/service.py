"""The subscriptions service's nameko entrypoints: match every event against the subscriptions, and serve the
subscriptions API and the disclosure audit (delivery runs in ``dependencies.Sinks``). Parse, call one function,
answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from werkzeug.wrappers import Response

from services.subscriptions import matching, registry, replay
from services.subscriptions.api import subscriptions_openapi
from services.subscriptions.dependencies import Sinks
from services.subscriptions.mandate import mandate_of
from services.subscriptions.metrics import SubscriptionsCollector
from services.subscriptions.retention import retention_targets
from services.subscriptions.schemas import (
    RedeliveryRequest,
    ReplayRequest,
    SubscriptionChange,
    SubscriptionList,
    SubscriptionRequest,
)
from shared.event_catalogue import event_type as catalogue_entry
from shared.event_catalogue import event_types
from shared.http import ApiError, api_endpoint, json_response, page_of, read_json
from shared.nameko_ext import consume_events
from shared.service_base import SanjiService
from shared.topology import SUBSCRIPTIONS_EVENTS
from shared.web import http


class SubscriptionsService(SanjiService):
    name = "subscriptions"
    storage_collectors = {"subscriptions": SubscriptionsCollector}   # services/subscriptions/metrics.py

    sinks = Sinks()
    # Pruned with the kernel's tables by the retention pass (shared.retention).
    retention_targets = staticmethod(retention_targets)

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def _uow(self):
        return self.storage.unit_of_work(self.clock)

    @consume_events(SUBSCRIPTIONS_EVENTS)
    def on_event(self, event):
        result = matching.handle_event(event, unit_of_work=self._uow(), active=self.sinks.active,
                                       lease=self.sinks.lease_for_hand_off())
        jobs, streams = result.pop("webhook_jobs", ()), result.pop("streams", False)
        if jobs:
            self.sinks.hand_off(jobs)
        if result.get("subscriptions", 0) > len(jobs):   # some written for a sweep: a stream's, or pending rows
            self.sinks.wake(streams=streams, webhooks=True)
        return result

    @http("POST", "/v1/subscriptions")
    @api_endpoint
    def create(self, request):
        principal = self.authenticate(request)
        body = read_json(request, SubscriptionRequest)
        view = registry.create(principal, body, unit_of_work=self._uow(), registry=self.sinks.registry,
                               now=self._now())
        return json_response(201, view)

    @http("GET", "/v1/subscriptions")
    @api_endpoint
    def list_subscriptions(self, request):
        principal = self.authenticate(request)
        mandate_of(principal)
        return json_response(200, SubscriptionList(subscriptions=registry.list_own(principal,
                                                                                   unit_of_work=self._uow())))

    @http("GET", "/v1/subscriptions/<string:subscription_id>")
    @api_endpoint
    def get_subscription(self, request, subscription_id):
        principal = self.authenticate(request)
        return json_response(200, registry.get(principal, subscription_id, unit_of_work=self._uow()))

    @http("PATCH", "/v1/subscriptions/<string:subscription_id>")
    @api_endpoint
    def change_subscription(self, request, subscription_id):
        principal = self.authenticate(request)
        body = read_json(request, SubscriptionChange)
        view = registry.change(principal, subscription_id, body, unit_of_work=self._uow(),
                               registry=self.sinks.registry, now=self._now())
        if view.status == "active":
            self.sinks.wake()
        return json_response(200, view)

    @http("DELETE", "/v1/subscriptions/<string:subscription_id>")
    @api_endpoint
    def delete_subscription(self, request, subscription_id):
        principal = self.authenticate(request)
        return json_response(200, registry.delete(principal, subscription_id, unit_of_work=self._uow(),
                                                  registry=self.sinks.registry, now=self._now()))

    @http("POST", "/v1/subscriptions/<string:subscription_id>/secrets")
    @api_endpoint
    def rotate_secret(self, request, subscription_id):
        principal = self.authenticate(request)
        return json_response(201, registry.rotate_secret(principal, subscription_id, unit_of_work=self._uow(),
                                                         registry=self.sinks.registry, now=self._now()))

    @http("GET", "/v1/subscriptions/<string:subscription_id>/deliveries")
    @api_endpoint
    def failure_view(self, request, subscription_id):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        status = request.args.get("status", "").strip() or None
        return json_response(200, registry.deliveries(principal, subscription_id, status=status, limit=limit,
                                                      offset=offset, unit_of_work=self._uow()))

    @http("POST", "/v1/subscriptions/<string:subscription_id>/redeliver")
    @api_endpoint
    def redeliver(self, request, subscription_id):
        principal = self.authenticate(request)
        body = read_json(request, RedeliveryRequest)
        result = registry.redeliver(principal, subscription_id, body, unit_of_work=self._uow(), now=self._now())
        self.sinks.wake()
        return json_response(200, result)

    @http("POST", "/v1/subscriptions/<string:subscription_id>/replay")
    @api_endpoint
    def replay(self, request, subscription_id):
        principal = self.authenticate(request)
        body = read_json(request, ReplayRequest)
        view = replay.request_replay(principal, subscription_id, body, unit_of_work=self._uow(),
                                     known=self.sinks.registry.known, retention=self.sinks.log_retention,
                                     now=self._now())
        self.sinks.wake_replays()
        return json_response(202, view)

    @http("GET", "/v1/subscriptions/<string:subscription_id>/replays/<string:replay_id>")
    @api_endpoint
    def replay_status(self, request, subscription_id, replay_id):
        principal = self.authenticate(request)
        return json_response(200, replay.get_replay(principal, subscription_id, replay_id,
                                                    unit_of_work=self._uow()))

    @http("GET", "/v1/disclosures")
    @api_endpoint
    def disclosures(self, request):
        principal = self.authenticate(request)
        case_id = request.args.get("case_id", "").strip()
        output = request.args.get("format", "json").strip() or "json"
        if not case_id:
            raise ApiError(400, "invalid_query", "say which case: ?case_id=...")
        if output not in ("json", "csv"):
            raise ApiError(400, "invalid_query", "format is json or csv")
        report = registry.disclosures(principal, case_id, unit_of_work=self._uow())
        if output == "csv":
            return Response(registry.disclosures_csv(report), content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="disclosures.csv"'})
        return json_response(200, report)

    @http("GET", "/v1/event-types")
    @api_endpoint
    def list_event_types(self, request):
        return json_response(200, {"event_types": event_types()})

    @http("GET", "/v1/event-types/<string:event_type>")
    @api_endpoint
    def get_event_type(self, request, event_type):
        entry = catalogue_entry(event_type)
        if entry is None:
            raise ApiError(404, "unknown_event_type", f"no event type {event_type!r} in the catalogue; "
                                                      "GET /v1/event-types lists them")
        return json_response(200, entry)

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return Response(json.dumps(subscriptions_openapi(), ensure_ascii=False), content_type="application/json")
