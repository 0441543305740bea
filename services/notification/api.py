"""The notification HTTP API, described once: the service serves these operations and /openapi.json."""

from __future__ import annotations

from services.notification.schemas import DeliveryLog, InboxPage, Problem
from shared.openapi import HEALTH_OPERATIONS, PAGE_QUERY, Operation, build_openapi

API_VERSION = "1.0.0"

OPERATIONS = [
    Operation("GET", "/v1/inbox", "The inbox of the caller's unit and the units below it, newest first (a "
              "办不成事 specialist: the reports assigned to them)",
              InboxPage, errors={400: "invalid limit or offset", 403: "not staff, a department system or a "
                                 "specialist, or the unit is outside the caller's jurisdiction",
                                 422: "unknown unit"},
              query=(("unit", False, "a unit within the caller's jurisdiction (default: the caller's own)"),
                     *PAGE_QUERY)),
    Operation("GET", "/v1/deliveries", "Every notification of a case, with each attempt (staff of the case's "
              "jurisdiction only)",
              DeliveryLog, errors={400: "case_id missing", 403: "staff_only: not staff (department systems read "
                                   "their own messages in the inbox); case_forbidden: the case is outside the "
                                   "caller's jurisdiction",
                                   404: "no notification for that case"},
              query=(("case_id", True, "the case"),)),
    *HEALTH_OPERATIONS,
]


def notification_openapi() -> dict:
    return build_openapi(
        "Sanji notification API", API_VERSION,
        "Staff read their unit's inbox and the delivery log of the cases in their jurisdiction.",
        OPERATIONS, Problem, service="notification")
