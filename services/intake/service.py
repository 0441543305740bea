"""Intake's nameko entrypoints: parse, call one handler, answer. The rules are in domain.py and handlers.py."""

from __future__ import annotations

import json

from nameko.timer import timer
from werkzeug.wrappers import Response

from services.intake import failure_reports, handlers, lookups, points, revisions
from services.intake.api import intake_openapi
from services.intake.dependencies import Rules
from services.intake.schemas import CaseSubmission
from shared.calendar_revision import RevisionTriggerProvider
from shared.http import ApiError, api_endpoint, has_forbidden_characters, json_response, read_json
from shared.nameko_ext import consume_events
from shared.rpc import guarded_rpc
from shared.service_base import SanjiService
from shared.topology import INTAKE_ITEM_UPDATES
from shared.web import http

MAX_IDEMPOTENCY_KEY_LENGTH = 128



class IntakeService(SanjiService):
    name = "intake"

    rules = Rules()
    # Per replica: whether the calendar changed since it last revised provisional 容缺 due dates.
    revision_trigger = RevisionTriggerProvider()

    @timer(interval=30)
    def revise_due_dates(self):
        """Once a year's holiday arrangement is loaded, count its provisional 容缺 due dates again."""
        version = self.revision_trigger.due(self.rules.calendar)
        if version is None:
            return None
        report = revisions.revise_provisional_due_dates(lambda: self.storage.unit_of_work(self.clock),
                                                        rules=self.rules)
        self.revision_trigger.done(version)
        return report.as_dict()

    @http("POST", "/v1/cases")
    @api_endpoint
    def submit_case(self, request):
        principal = self.authenticate(request)
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and (not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH
                                            or has_forbidden_characters(idempotency_key)):
            raise ApiError(400, "invalid_idempotency_key",
                           f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters, without control "
                           "characters")
        submission = read_json(request, CaseSubmission)
        view, replayed = handlers.submit_case(
            submission, principal=principal, idempotency_key=idempotency_key,
            unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules, clock=self.clock)
        headers = {"Location": f"/v1/cases/{view.case_id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return json_response(201, view, headers)

    @http("GET", "/v1/cases/<string:case_id>")
    @api_endpoint
    def get_case(self, request, case_id):
        principal = self.authenticate(request)
        view = handlers.get_case(case_id, principal=principal,
                                 unit_of_work=self.storage.unit_of_work(self.clock), rules=self.rules)
        return json_response(200, view)

    @http("POST", "/v1/failure-reports")
    @api_endpoint
    def file_failure_report(self, request):
        principal = self.authenticate(request)
        submission = read_json(request, failure_reports.FailureReportSubmission)
        receipt = failure_reports.file_report(submission, principal=principal, rules=self.rules,
                                              unit_of_work=self.storage.unit_of_work(self.clock), clock=self.clock)
        return json_response(201, receipt)

    @http("POST", "/v1/case-lookups")
    @api_endpoint
    def look_up_case(self, request):
        """The resident lookup, for the console service only: status without personal data, misses counted."""
        principal = self.authenticate(request)
        body = read_json(request, lookups.CaseLookupRequest)
        view = lookups.lookup_case(body, principal=principal, unit_of_work=self.storage.unit_of_work(self.clock),
                                   rules=self.rules, clock=self.clock)
        return json_response(200, view, {"Cache-Control": "no-store"})

    @http("GET", "/v1/catalogue")
    @api_endpoint
    def catalogue(self, request):
        self.authenticate(request)
        return json_response(200, handlers.catalogue_summary(self.rules.catalogue))

    @http("GET", "/v1/service-circle")
    @api_endpoint
    def service_circle(self, request):
        self.authenticate(request)
        answer = points.nearby_answer(request.args, rules=self.rules, now=self.clock.now())
        return json_response(200, answer)

    @http("GET", "/v1/service-points/<string:point_id>")
    @api_endpoint
    def service_point(self, request, point_id):
        self.authenticate(request)
        view = points.point_view(point_id, rules=self.rules, now=self.clock.now(), at_raw=request.args.get("at"))
        return json_response(200, view)

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return Response(json.dumps(intake_openapi(), ensure_ascii=False), content_type="application/json")


    @guarded_rpc
    def applicant_contact(self, case_id: str, purpose: str):
        """Internal, for the notification service only (shared/bus.py, RPC_CALLERS): the one contact detail a
        message to the resident needs, the phone for ``purpose="sms"``, the e-mail address for ``"email"``."""
        return handlers.applicant_contact(case_id, purpose, unit_of_work=self.storage.unit_of_work(self.clock),
                                          keyring=self.rules.keyring)

    @guarded_rpc
    def applicant_contacts(self, case_ids: list[str], purpose: str):
        """``applicant_contact`` for a notification sweep's batch: case id -> the detail (None: none given)."""
        return handlers.applicant_contacts(case_ids, purpose, unit_of_work=self.storage.unit_of_work(self.clock),
                                           keyring=self.rules.keyring)

    @consume_events(INTAKE_ITEM_UPDATES)
    def on_item_event(self, event):
        handlers.apply_item_event(event, unit_of_work=self.storage.unit_of_work(self.clock))
