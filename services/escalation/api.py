"""The escalation HTTP API, described once: served by the escalation service and in its OpenAPI document."""

from __future__ import annotations

from services.escalation.domain import ReportAction
from services.escalation.schemas import (
    Acknowledgement,
    Assignment,
    CauseList,
    Classification,
    Closure,
    ContactRecord,
    FailureReportFiling,
    FailureReportList,
    FailureReportView,
    ItemEscalationView,
    ManualWhistle,
    Problem,
    ReturnVisit,
    WhistleCallList,
    WhistleCallView,
)
from shared.openapi import HEALTH_OPERATIONS, PAGE_QUERY, Operation, build_openapi

API_VERSION = "1.0.0"

REPORT_ACTION_BODIES = {
    ReportAction.CLASSIFY: Classification,
    ReportAction.ASSIGN: Assignment,
    ReportAction.RECORD_CONTACT: ContactRecord,
    ReportAction.CLOSE: Closure,
    ReportAction.RETURN_VISIT: ReturnVisit,
}
# The path segment of each action (contacts are a collection the specialist adds to).
REPORT_ACTION_PATHS = {
    ReportAction.CLASSIFY: "classify",
    ReportAction.ASSIGN: "assign",
    ReportAction.RECORD_CONTACT: "contacts",
    ReportAction.CLOSE: "close",
    ReportAction.RETURN_VISIT: "return-visit",
}

_REPORT_ACTION_SUMMARIES = {
    ReportAction.CLASSIFY: "Classify: simple, complex (the department's opinion is due in 5 working days) or special "
                           "(the time limit told to the person), with a cause from the taxonomy",
    ReportAction.ASSIGN: "Assign a specialist (omit the name to take it yourself, as a specialist)",
    ReportAction.RECORD_CONTACT: "The assigned specialist records a contact with a department, or its opinion",
    ReportAction.CLOSE: "Close with an outcome; deferral_granted (容缺受理) names the item and the missing materials",
    ReportAction.RETURN_VISIT: "Record the return visit (回访): agreed, it is confirmed; not agreed, it reopens",
}

_REPORT_ERRORS = {403: "not staff or a specialist, or outside your jurisdiction", 404: "no such report",
                  409: "not allowed now: transition_not_allowed (with current_status), not_report_specialist, "
                       "not_classified, opinion_missing",
                  422: "invalid body: validation_failed, unknown_cause, unknown_department, unknown_item, "
                       "unknown_case, case_mismatch, "
                       "unknown_material, time_limit_missing, department_missing, deferral_mismatch, "
                       "personal_data_in_text"}

OPERATIONS = [
    Operation("GET", "/v1/failure-causes", "The cause taxonomy reports are classified by", CauseList),
    Operation("POST", "/v1/failure-reports", "办不成事: file a report for a resident (you are the first person asked)",
              FailureReportView, 201, request_model=FailureReportFiling,
              errors={403: "not staff or a specialist, or the case or item is outside your jurisdiction",
                      422: _REPORT_ERRORS[422]}),
    Operation("GET", "/v1/failure-reports", "Reports in your jurisdiction, oldest first; filters: status, limit, "
              "offset (specialists: open and assigned ones by default)", FailureReportList,
              errors={400: "invalid_query", 403: "not staff or a specialist"},
              query=(("status", False, "open, assigned, closed or confirmed"), *PAGE_QUERY)),
    Operation("GET", "/v1/failure-reports/{report_id}", "One report (by id or number) with its history",
              FailureReportView, errors={403: _REPORT_ERRORS[403], 404: _REPORT_ERRORS[404]}),
    *[Operation("POST", f"/v1/failure-reports/{{report_id}}/{REPORT_ACTION_PATHS[action]}",
                _REPORT_ACTION_SUMMARIES[action], FailureReportView, request_model=body, errors=_REPORT_ERRORS)
      for action, body in REPORT_ACTION_BODIES.items()],
    Operation("GET", "/v1/whistle-calls", "吹哨 calls: a department's own, or those made or received in your "
              "jurisdiction; filters: state (default called), limit, offset", WhistleCallList,
              errors={400: "invalid_query", 403: "not staff, a specialist or a department system"},
              query=(("state", False, "called, acknowledged, escalated or cancelled"), *PAGE_QUERY)),
    Operation("POST", "/v1/whistle-calls/{call_id}/acknowledge", "报到: the called department acknowledges within the "
              "limit (30 minutes by default)", WhistleCallView, request_model=Acknowledgement,
              errors={403: "not the called department, or outside its jurisdiction", 404: "no such call",
                      409: "call_escalated, call_cancelled or ack_limit_passed",
                      422: "validation_failed, personal_data_in_text"}),
    Operation("POST", "/v1/items/{item_id}/whistle", "Manual 吹哨: street staff call departments in on an open item "
              "of their street at any time (the matter's call-in departments unless named); each call runs like a "
              "timed one", WhistleCallList, 201, request_model=ManualWhistle,
              errors={403: "whistle_forbidden (not street staff, or outside the street)", 404: "item_not_found",
                      409: "item_closed, already_called",
                      422: "validation_failed, unknown_department, personal_data_in_text"}),
    Operation("GET", "/v1/items/{item_id}/escalation", "An item's escalation record: loop, 督办 deadlines, 吹哨 "
              "calls and what was done", ItemEscalationView,
              errors={403: "outside your jurisdiction", 404: "the service has not seen this item"}),
    *HEALTH_OPERATIONS,
]


def escalation_openapi() -> dict:
    return build_openapi(
        "Sanji escalation API", API_VERSION,
        "The 办不成事 window for staff and specialists, 吹哨 acknowledgements for department systems, and each "
        "item's escalation record, within the caller's own jurisdiction.", OPERATIONS, Problem, service="escalation")
