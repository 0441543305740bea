"""The evaluation HTTP API, described once: served by the evaluation service and in its OpenAPI document."""

from __future__ import annotations

from services.evaluation.schemas import (
    AppealDecision,
    AppealFiling,
    AppealList,
    AppealView,
    AttachmentUpload,
    CallbackRecord,
    EvaluatorRegistered,
    EvaluatorRegistration,
    FindingFiling,
    FindingView,
    KioskRatingSubmission,
    LinkRatingSubmission,
    Problem,
    RankingView,
    RatesView,
    RatingLinkIssue,
    RatingLinkIssued,
    RatingLinkView,
    RatingView,
    RectificationClosure,
    RectificationList,
    RectificationView,
    SupervisionAnswer,
    SupervisionOrderIssue,
    SupervisionOrderList,
    SupervisionOrderView,
)
from shared.openapi import HEALTH_OPERATIONS, Operation, build_openapi

API_VERSION = "1.0.0"

_RATING_ERRORS = {
    403: "invalid_link, community_forbidden (a kiosk of another community), outside_jurisdiction",
    404: "unknown_item, unknown_case",
    409: "item_not_completed, already_rated (same channel, after the change window), rating_window_closed, "
         "item_facts_pending",
    410: "link_expired",
    422: "unknown_level, unknown_reason, duplicate_reason, validation_failed",
}

OPERATIONS = [
    Operation("GET", "/v1/rating-links/{token}", "What a signed rating link (from the completion SMS) lets the "
              "resident rate: the case's items and their ratings so far. No login.", RatingLinkView,
              authenticated=False, errors={403: "invalid_link", 404: "unknown_case", 410: "link_expired"}),
    Operation("POST", "/v1/rating-links/{token}/ratings", "Rate an item through the signed link (channel sms_link, "
              "or lookup from the resident lookup page); a change within 24 hours replaces the rating (200)",
              RatingView, 201, request_model=LinkRatingSubmission, authenticated=False, errors=_RATING_ERRORS),
    Operation("POST", "/v1/rating-links", "A rating link for a completed case, by case_id or by the case_number "
              "on the receipt: for staff of the case's line, the kiosk of its community, and the console service "
              "(for a case a resident has just looked up with its number and her phone ending)",
              RatingLinkIssued, 201, request_model=RatingLinkIssue,
              errors={403: "outside_jurisdiction, community_forbidden", 404: "unknown_case",
                      409: "rating_window_closed", 422: "validation_failed"}),
    Operation("POST", "/v1/cases/{case_id}/ratings", "The kiosk or window pad of the case's community rates an "
              "item (channel kiosk or window_pad)", RatingView, 201, request_model=KioskRatingSubmission,
              errors=_RATING_ERRORS),
    Operation("GET", "/v1/rectifications", "Rectifications your units own or supervise, closest deadline first; "
              "filters: state, limit, offset", RectificationList, errors={403: "not_staff"}),
    Operation("GET", "/v1/rectifications/{rectification_id}", "One rectification", RectificationView,
              errors={403: "outside_jurisdiction", 404: "unknown_rectification"}),
    Operation("POST", "/v1/rectifications/{rectification_id}/callback", "The owning unit records its call-back "
              "to the resident and its outcome", RectificationView, request_model=CallbackRecord,
              errors={403: "not_owner, outside_jurisdiction", 404: "unknown_rectification",
                      409: "rectification_closed"}),
    Operation("POST", "/v1/rectifications/{rectification_id}/close", "The owning unit closes with a result: "
              "rectified (整改完成), explained (解释说明) or cannot_rectify (无法整改, with reason)",
              RectificationView, request_model=RectificationClosure,
              errors={403: "not_owner, outside_jurisdiction", 404: "unknown_rectification",
                      409: "rectification_closed, callback_missing", 422: "reason_required, validation_failed"}),
    Operation("POST", "/v1/ratings/{rating_id}/appeals", "The rated unit appeals a rating it believes mistaken or "
              "malicious; the level above decides", AppealView, 201, request_model=AppealFiling,
              errors={403: "not_rated_unit", 404: "unknown_rating", 409: "appeal_exists"}),
    Operation("GET", "/v1/appeals", "Appeals filed by or awaiting a decision of your units; filters: state",
              AppealList, errors={403: "not_staff"}),
    Operation("POST", "/v1/appeals/{appeal_id}/decision", "The level above decides; an upheld appeal takes the "
              "rating out of the rates and keeps it in the record", AppealView, request_model=AppealDecision,
              errors={403: "not_deciding_unit", 404: "unknown_appeal", 409: "appeal_decided"}),
    Operation("POST", "/v1/evaluators", "District staff register a 政务服务体验官 (the token is shown once)",
              EvaluatorRegistered, 201, request_model=EvaluatorRegistration, errors={403: "not_district_staff"}),
    Operation("POST", "/v1/findings", "A 体验官 files a finding (Authorization: Evaluator <token>); it opens a "
              "rectification at the unit, and never enters the satisfaction rate", FindingView, 201,
              request_model=FindingFiling,
              errors={403: "outside_jurisdiction", 422: "unknown_unit, unknown_item, validation_failed"}),
    Operation("POST", "/v1/findings/{finding_id}/attachments", "A photo for a finding (JPEG or PNG, size-limited)",
              FindingView, 201, request_model=AttachmentUpload,
              errors={404: "unknown_finding", 409: "too_many_attachments", 413: "attachment_too_large",
                      415: "attachment_type", 422: "attachment_encoding"}),
    Operation("POST", "/v1/supervision-orders", "督办单: street or district staff order a unit in their jurisdiction "
              "to act on an item or a rectification by a date", SupervisionOrderView, 201,
              request_model=SupervisionOrderIssue,
              errors={403: "not_supervisor, outside_jurisdiction", 404: "unknown_subject", 422: "unknown_unit"}),
    Operation("GET", "/v1/supervision-orders", "Orders issued or received in your jurisdiction, with the count of "
              "overdue ones; filter: overdue=true", SupervisionOrderList, errors={403: "not_staff"}),
    Operation("POST", "/v1/supervision-orders/{order_id}/answer", "The ordered unit answers", SupervisionOrderView,
              request_model=SupervisionAnswer,
              errors={403: "not_ordered_unit", 404: "unknown_order", 409: "order_answered"}),
    Operation("GET", "/v1/rates", "The three rates over a period (period=YYYY-MM, or from/to dates) by unit, "
              "level or department, with anti-gaming flags; format=csv for a CSV export", RatesView,
              errors={400: "invalid_period, invalid_query", 403: "not_staff, outside_jurisdiction"}),
    Operation("GET", "/v1/rankings", "Streets or communities of a district ranked (satisfaction, resolution, "
              "response), with the trend against the previous period; level=street|community", RankingView,
              errors={400: "invalid_period, invalid_query", 403: "not_staff, outside_jurisdiction"}),
    *HEALTH_OPERATIONS,
]


def evaluation_openapi() -> dict:
    return build_openapi(
        "Sanji evaluation API", API_VERSION,
        "好差评 through signed links, kiosks and window pads; rectifications, appeals, 体验官 findings, 督办单, and "
        "the three rates with rankings. Ratings are refused with a machine-readable reason, and nothing is written.",
        OPERATIONS, Problem, service="evaluation")
