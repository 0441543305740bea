"""The escalation service's nameko entrypoints: follow routing's item events, fire due deadlines, and serve the
办不成事 window and 吹哨 acknowledgements. Parse, call one handler, answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import structlog
from werkzeug.wrappers import Response

from services.escalation import failure_reports, handlers, sweeps, whistle
from services.escalation.api import REPORT_ACTION_BODIES, REPORT_ACTION_PATHS, escalation_openapi
from services.escalation.dependencies import Rules, sweep_timer
from services.escalation.domain import ReportAction
from services.escalation.schemas import (
    Acknowledgement,
    CauseList,
    CauseView,
    FailureReportFiling,
    FailureReportList,
    ManualWhistle,
    WhistleCallList,
)
from shared.http import ApiError, api_endpoint, json_response, page_of, read_json
from shared.nameko_ext import consume_events
from shared.service_base import SanjiService
from shared.topology import ESCALATION_EVENTS
from shared.web import http

log = structlog.get_logger(__name__)

_ACTION_BY_PATH = {path: action for action, path in REPORT_ACTION_PATHS.items()}



class EscalationService(SanjiService):
    name = "escalation"

    rules = Rules()

    def _now(self) -> datetime:
        # One zone in rows, events and answers, whatever zone the clock speaks.
        return self.clock.now().astimezone(UTC)

    @consume_events(ESCALATION_EVENTS)
    def on_event(self, event):
        return handlers.handle_event(event, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules)

    @sweep_timer
    def fire_due_deadlines(self):
        return sweeps.fire_due_deadlines(lambda: self.storage.unit_of_work(self.clock), rules=self.rules,
                                         now=self._now()).as_dict()

    # ── 办不成事 ────────────────────────────────────────────────────────────────────────────────────

    @http("GET", "/v1/failure-causes")
    @api_endpoint
    def failure_causes(self, request):
        self.authenticate(request)
        return json_response(200, CauseList(causes=[CauseView(code=c.code, name=c.name)
                                                    for c in self.rules.causes.values() if not c.retired]))

    @http("POST", "/v1/failure-reports")
    @api_endpoint
    def file_report(self, request):
        principal = self.authenticate(request)
        body = read_json(request, FailureReportFiling)
        view = failure_reports.file_report(principal, body, unit_of_work=self.storage.unit_of_work(self.clock),
                                           rules=self.rules, now=self._now())
        return json_response(201, view, {"Location": f"/v1/failure-reports/{view.report_id}"})

    @http("GET", "/v1/failure-reports")
    @api_endpoint
    def list_reports(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        reports, total = failure_reports.list_reports(
            principal, unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules,
            status=request.args.get("status"), limit=limit, offset=offset)
        return json_response(200, FailureReportList(reports=reports, total=total))

    @http("GET", "/v1/failure-reports/<string:report_id>")
    @api_endpoint
    def get_report(self, request, report_id):
        principal = self.authenticate(request)
        view = failure_reports.get_report(report_id, principal, rules=self.rules,
                                          unit_of_work=self.storage.unit_of_work(self.clock))
        return json_response(200, view)

    @http("POST", "/v1/failure-reports/<string:report_id>/<string:action_path>")
    @api_endpoint
    def act_on_report(self, request, report_id, action_path):
        principal = self.authenticate(request)
        action: ReportAction | None = _ACTION_BY_PATH.get(action_path)
        if action is None:
            raise ApiError(404, "unknown_action", f"no action {action_path!r}", actions=sorted(_ACTION_BY_PATH))
        body = read_json(request, REPORT_ACTION_BODIES[action])
        view = failure_reports.act(report_id, action, principal, body, rules=self.rules, now=self._now(),
                                   unit_of_work=self.storage.unit_of_work(self.clock))
        return json_response(200, view)

    # ── 吹哨 and items ───────────────────────────────────────────────────────────────────────────────

    @http("GET", "/v1/whistle-calls")
    @api_endpoint
    def list_calls(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        state = request.args.get("state")
        if state not in (None, "called", "acknowledged", "escalated", "cancelled"):
            raise ApiError(400, "invalid_query", "state is called, acknowledged, escalated or cancelled")
        calls, total = whistle.list_calls(principal, unit_of_work=self.storage.unit_of_work(self.clock),
                                          rules=self.rules, state=state, limit=limit, offset=offset)
        return json_response(200, WhistleCallList(calls=calls, total=total))

    @http("POST", "/v1/whistle-calls/<string:call_id>/acknowledge")
    @api_endpoint
    def acknowledge_call(self, request, call_id):
        principal = self.authenticate(request)
        body = read_json(request, Acknowledgement)
        view = whistle.acknowledge(call_id, principal, body, unit_of_work=self.storage.unit_of_work(self.clock),
                                   rules=self.rules, now=self._now())
        return json_response(200, view)

    @http("POST", "/v1/items/<string:item_id>/whistle")
    @api_endpoint
    def blow_whistle(self, request, item_id):
        principal = self.authenticate(request)
        body = read_json(request, ManualWhistle)
        calls = whistle.blow(item_id, principal, body, unit_of_work=self.storage.unit_of_work(self.clock),
                             rules=self.rules, now=self._now())
        return json_response(201, WhistleCallList(calls=calls, total=len(calls)))

    @http("GET", "/v1/items/<string:item_id>/escalation")
    @api_endpoint
    def item_escalation(self, request, item_id):
        principal = self.authenticate(request)
        view = whistle.item_escalation(item_id, principal, unit_of_work=self.storage.unit_of_work(self.clock),
                                       rules=self.rules)
        return json_response(200, view)

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return Response(json.dumps(escalation_openapi(), ensure_ascii=False), content_type="application/json")
