"""The kiosk HTTP API, described once: the service serves these operations and the OpenAPI document."""

from __future__ import annotations

from services.intake.failure_reports import FailureReportReceipt, FailureReportSubmission
from services.intake.lookups import CaseLookupRequest, CaseLookupView
from services.intake.schemas import (
    CaseSubmission,
    CaseView,
    CatalogueSummary,
    NearbyAnswer,
    Problem,
    ServicePointView,
)
from shared.openapi import HEALTH_OPERATIONS, Operation, build_openapi

API_VERSION = "1.0.0"

OPERATIONS = [
    Operation("POST", "/v1/cases", "Submit a case: one matter or a bundle (一件事)", CaseView, 201,
              request_model=CaseSubmission,
              headers=(("Idempotency-Key", "a retried submission with the same key returns the first case"),),
              errors={400: "malformed JSON", 403: "community_forbidden (the kiosk may not act for that community), "
                                                  "service_point_forbidden (a terminal at another point), "
                                                  "cross_district_forbidden (通办 is for windows only)",
                      409: "service_point_closed: the service point is closed now",
                      413: "body too large", 415: "not JSON",
                      422: "invalid input: validation_failed, invalid_id_number, unknown_community, "
                           "unknown_bundle, unknown_matter, unknown_material, missing_material, "
                           "material_not_deferrable, material_both_provided_and_deferred, "
                           "proxy_not_allowed, idempotency_key_reused, unknown_service_point, "
                           "service_point_of_another_community, matter_not_accepted_here, unknown_residence"}),
    Operation("GET", "/v1/cases/{case_id}", "A case with each item's level, unit, department, status and deadline",
              CaseView, errors={403: "the case belongs to another community", 404: "no such case"}),
    Operation("POST", "/v1/failure-reports", "办不成事: report a request that could not get done (the reporter's "
              "name and phone stay in intake)", FailureReportReceipt, 201, request_model=FailureReportSubmission,
              errors={403: "the client may not act for that community", 404: "no such case",
                      422: "validation_failed, unknown_community, unknown_item, case_of_another_community"}),
    Operation("POST", "/v1/case-lookups", "The resident lookup (console service only): a case number and the last "
              "four digits of the applicant's phone give each item's status, unit, deadline and missing materials, "
              "with a masked name; misses are counted per case number and per client, and lock both out",
              CaseLookupView, request_model=CaseLookupRequest,
              errors={403: "lookup_forbidden: the client is not the console service",
                      404: "lookup_no_match: no case with that number and phone ending (attempts_left)",
                      422: "validation_failed",
                      429: "lookup_locked: too many misses for this case number or client (retry_after_seconds)"}),
    Operation("GET", "/v1/catalogue", "Matters and bundles with their required materials", CatalogueSummary),
    Operation("GET", "/v1/service-circle", "15分钟政务服务圈: where near here can I do this matter now? "
              "Query: lat, lon (WGS-84 degrees), matter (catalogue code), at (optional ISO 8601 time, default "
              "now, Asia/Shanghai). "
              "Service points within the walking circle that accept the matter and are open on arrival, nearest "
              "first, with distance, walking minutes, how the matter is accepted, today's hours and what to bring",
              NearbyAnswer, errors={400: "invalid_coordinates (missing, not a number, NaN, out of range), "
                                         "invalid_query (no matter, bad at)",
                                    422: "unknown_matter"}),
    Operation("GET", "/v1/service-points/{point_id}", "One service point: kind, address, coordinates, today's hours "
              "(query: at, optional) and the matters it accepts, with how", ServicePointView,
              errors={400: "invalid_query (bad at)", 404: "unknown_service_point"}),
    *HEALTH_OPERATIONS,
]


def intake_openapi() -> dict:
    return build_openapi(
        "Sanji intake API", API_VERSION,
        "Kiosks, windows and proxy agents submit cases for the residents of their own community.",
        OPERATIONS, Problem, service="intake")
