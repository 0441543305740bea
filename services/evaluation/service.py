"""The evaluation service's nameko entrypoints: follow routing's item facts and completions, sweep overdue
rectifications, revise provisional due times once a year's holiday arrangement is loaded, and serve ratings,
rectifications, appeals, findings, 督办单 and the rates. Parse, call one function, answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import structlog
from nameko.timer import timer
from pydantic import ValidationError
from werkzeug.wrappers import Response

from services.evaluation import facts, oversight, rates, ratings, revisions
from services.evaluation.api import evaluation_openapi
from services.evaluation.dependencies import Rules, sweep_timer
from services.evaluation.schemas import (
    AppealDecision,
    AppealFiling,
    AttachmentUpload,
    CallbackRecord,
    EvaluatorRegistration,
    FindingFiling,
    KioskRatingSubmission,
    LinkRatingSubmission,
    RatingLinkIssue,
    RectificationClosure,
    SupervisionAnswer,
    SupervisionOrderIssue,
)
from shared.calendar_revision import RevisionTriggerProvider
from shared.http import ApiError, api_endpoint, describe_validation_errors, json_response, page_of, read_json
from shared.nameko_ext import consume_events
from shared.service_base import SanjiService
from shared.topology import EVALUATION_EVENTS
from shared.web import http

log = structlog.get_logger(__name__)

REVISION_CHECK_SECONDS = 30


class EvaluationService(SanjiService):
    name = "evaluation"

    rules = Rules()
    # Per replica: whether the calendar changed since it last revised provisional due times.
    revision_trigger = RevisionTriggerProvider()

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def _uow(self):
        return self.storage.unit_of_work(self.clock)

    @consume_events(EVALUATION_EVENTS)
    def on_event(self, event):
        return facts.handle_event(event, unit_of_work=self._uow(), rules=self.rules)

    @sweep_timer
    def sweep_rectifications(self):
        # A calendar loaded since the last pass: the due times are revised first, so the sweep goes by them.
        self._revise_if_due()
        return oversight.sweep_overdue(self._uow, rules=self.rules, now=self._now())

    @timer(interval=REVISION_CHECK_SECONDS)
    def revise_due_dates(self):
        """Once a year's holiday arrangement is loaded, count the provisional rectification and 督办单 due times
        again (shared/calendar_revision.py says when)."""
        return self._revise_if_due()

    def _revise_if_due(self) -> dict | None:
        version = self.revision_trigger.due(self.rules.calendar)
        if version is None:
            return None
        report = revisions.revise_provisional_due_dates(self._uow, rules=self.rules)
        self.revision_trigger.done(version)
        return report.as_dict()

    # ── 好差评 ───────────────────────────────────────────────────────────────────────────────────────

    @http("GET", "/v1/rating-links/<string:token>")
    @api_endpoint
    def rating_link(self, request, token):
        case_id = ratings.case_for_link(token, rules=self.rules, now=self._now())
        return json_response(200, ratings.link_view(case_id, unit_of_work=self._uow(), rules=self.rules))

    @http("POST", "/v1/rating-links/<string:token>/ratings")
    @api_endpoint
    def rate_by_link(self, request, token):
        case_id = ratings.case_for_link(token, rules=self.rules, now=self._now())
        body = read_json(request, LinkRatingSubmission)
        view, replaced = ratings.submit(case_id, body, channel=body.channel, unit_of_work=self._uow(),
                                        rules=self.rules, now=self._now())
        return json_response(200 if replaced else 201, view)

    @http("POST", "/v1/rating-links")
    @api_endpoint
    def issue_rating_link(self, request):
        principal = self.authenticate(request)
        body = read_json(request, RatingLinkIssue)
        return json_response(201, ratings.issue_link(body, principal=principal, unit_of_work=self._uow(),
                                                     rules=self.rules, now=self._now()))

    @http("POST", "/v1/cases/<string:case_id>/ratings")
    @api_endpoint
    def rate_at_kiosk(self, request, case_id):
        principal = self.authenticate(request)
        if principal.kind != "kiosk":
            raise ApiError(403, "not_kiosk", "ratings here come from the kiosk or window pad of the case's community")
        body = read_json(request, KioskRatingSubmission)
        view, replaced = ratings.submit(
            case_id, body, channel=body.channel, unit_of_work=self._uow(), rules=self.rules, now=self._now(),
            kiosk=principal, fingerprint=ratings.rater_fingerprint(self.rules.fingerprint_key, body.rater_phone))
        return json_response(200 if replaced else 201, view)

    # ── rectifications and appeals ───────────────────────────────────────────────────────────────────

    @http("GET", "/v1/rectifications")
    @api_endpoint
    def list_rectifications(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        state = request.args.get("state")
        if state not in (None, "open", "warned", "escalated", "closed"):
            raise ApiError(400, "invalid_query", "state is open, warned, escalated or closed")
        return json_response(200, oversight.list_rectifications(principal, unit_of_work=self._uow(), rules=self.rules,
                                                                state=state, limit=limit, offset=offset))

    @http("GET", "/v1/rectifications/<string:rectification_id>")
    @api_endpoint
    def get_rectification(self, request, rectification_id):
        principal = self.authenticate(request)
        return json_response(200, oversight.get_rectification(rectification_id, principal, unit_of_work=self._uow(),
                                                              rules=self.rules))

    @http("POST", "/v1/rectifications/<string:rectification_id>/callback")
    @api_endpoint
    def record_callback(self, request, rectification_id):
        principal = self.authenticate(request)
        body = read_json(request, CallbackRecord)
        return json_response(200, oversight.record_callback(rectification_id, body, principal,
                                                            unit_of_work=self._uow(), rules=self.rules,
                                                            now=self._now()))

    @http("POST", "/v1/rectifications/<string:rectification_id>/close")
    @api_endpoint
    def close_rectification(self, request, rectification_id):
        principal = self.authenticate(request)
        body = read_json(request, RectificationClosure)
        return json_response(200, oversight.close(rectification_id, body, principal, unit_of_work=self._uow(),
                                                  rules=self.rules, now=self._now()))

    @http("POST", "/v1/ratings/<string:rating_id>/appeals")
    @api_endpoint
    def file_appeal(self, request, rating_id):
        principal = self.authenticate(request)
        body = read_json(request, AppealFiling)
        return json_response(201, oversight.file_appeal(rating_id, body, principal, unit_of_work=self._uow(),
                                                        rules=self.rules, now=self._now()))

    @http("GET", "/v1/appeals")
    @api_endpoint
    def list_appeals(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        state = request.args.get("state")
        if state not in (None, "pending", "upheld", "dismissed"):
            raise ApiError(400, "invalid_query", "state is pending, upheld or dismissed")
        return json_response(200, oversight.list_appeals(principal, unit_of_work=self._uow(), rules=self.rules,
                                                         state=state, limit=limit, offset=offset))

    @http("POST", "/v1/appeals/<string:appeal_id>/decision")
    @api_endpoint
    def decide_appeal(self, request, appeal_id):
        principal = self.authenticate(request)
        body = read_json(request, AppealDecision)
        return json_response(200, oversight.decide_appeal(appeal_id, body, principal, unit_of_work=self._uow(),
                                                          rules=self.rules, now=self._now()))

    # ── 体验官 ───────────────────────────────────────────────────────────────────────────────────────

    @http("POST", "/v1/evaluators")
    @api_endpoint
    def register_evaluator(self, request):
        principal = self.authenticate(request)
        body = read_json(request, EvaluatorRegistration)
        return json_response(201, oversight.register_evaluator(body, principal, unit_of_work=self._uow(),
                                                               rules=self.rules, now=self._now()))

    @http("POST", "/v1/findings")
    @api_endpoint
    def file_finding(self, request):
        evaluator = oversight.evaluator_for(request.headers.get("Authorization"), unit_of_work=self._uow())
        body = read_json(request, FindingFiling)
        return json_response(201, oversight.file_finding(evaluator, body, unit_of_work=self._uow(),
                                                         rules=self.rules, now=self._now()))

    @http("POST", "/v1/findings/<string:finding_id>/attachments")
    @api_endpoint
    def add_attachment(self, request, finding_id):
        evaluator = oversight.evaluator_for(request.headers.get("Authorization"), unit_of_work=self._uow())
        body = _read_large_json(request, AttachmentUpload, self.rules.settings.attachment_max_bytes)
        return json_response(201, oversight.add_attachment(finding_id, evaluator, body, unit_of_work=self._uow(),
                                                           rules=self.rules, now=self._now()))

    # ── 督办单 ───────────────────────────────────────────────────────────────────────────────────────

    @http("POST", "/v1/supervision-orders")
    @api_endpoint
    def issue_order(self, request):
        principal = self.authenticate(request)
        body = read_json(request, SupervisionOrderIssue)
        return json_response(201, oversight.issue_order(body, principal, unit_of_work=self._uow(), rules=self.rules,
                                                        now=self._now()))

    @http("GET", "/v1/supervision-orders")
    @api_endpoint
    def list_orders(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        return json_response(200, oversight.list_orders(
            principal, unit_of_work=self._uow(), rules=self.rules, now=self._now(),
            overdue_only=request.args.get("overdue") == "true", limit=limit, offset=offset))

    @http("POST", "/v1/supervision-orders/<string:order_id>/answer")
    @api_endpoint
    def answer_order(self, request, order_id):
        principal = self.authenticate(request)
        body = read_json(request, SupervisionAnswer)
        return json_response(200, oversight.answer_order(order_id, body, principal, unit_of_work=self._uow(),
                                                         rules=self.rules, now=self._now()))

    # ── the three rates ──────────────────────────────────────────────────────────────────────────────

    def _period(self, request):
        if request.args.get("period"):
            return rates.month_period(request.args["period"])
        if request.args.get("from") and request.args.get("to"):
            return rates.date_period(request.args["from"], request.args["to"])
        raise ApiError(400, "invalid_period", "give period=YYYY-MM, or from and to (YYYY-MM-DD)")

    @http("GET", "/v1/rates")
    @api_endpoint
    def get_rates(self, request):
        principal = self.authenticate(request)
        start, end = self._period(request)
        view = rates.rates(principal, unit_of_work=self._uow(), rules=self.rules,
                           district_code=request.args.get("district"), start=start, end=end,
                           by=request.args.get("by", "unit"))
        if request.args.get("format") == "csv":
            return Response(rates.rates_csv(view), content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="rates-{view.district_code}.csv"'})
        return json_response(200, view)

    @http("GET", "/v1/rankings")
    @api_endpoint
    def get_rankings(self, request):
        principal = self.authenticate(request)
        start, end = self._period(request)
        return json_response(200, rates.ranking(principal, unit_of_work=self._uow(), rules=self.rules,
                                                district_code=request.args.get("district"),
                                                level=request.args.get("level", "street"), start=start, end=end))

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return Response(json.dumps(evaluation_openapi(), ensure_ascii=False), content_type="application/json")


def _read_large_json(request, model, limit: int):
    """A photo upload: the body may exceed the usual limit, up to the attachment limit base64-encoded."""
    allowed = limit * 4 // 3 + 4096
    if request.content_length is not None and request.content_length > allowed:
        raise ApiError(413, "attachment_too_large", f"an attachment is at most {limit} bytes")
    raw = request.stream.read(allowed + 1)
    if len(raw) > allowed:
        raise ApiError(413, "attachment_too_large", f"an attachment is at most {limit} bytes")
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", "request body does not match the schema",
                       errors=describe_validation_errors(exc)) from None
