"""The staff and department HTTP API, described once: served by the routing service and in its OpenAPI."""

from __future__ import annotations

from services.routing.lifecycle import Action
from services.routing.schemas import (
    Assignment,
    CodedDecision,
    CustodyStep,
    ItemList,
    ItemQueuePage,
    ItemView,
    NoBody,
    Problem,
    Resolution,
    SupplementRecord,
    SupplementRequest,
)
from shared.openapi import HEALTH_OPERATIONS, PAGE_QUERY, Operation, build_openapi

API_VERSION = "1.0.0"

ACTION_BODIES = {
    Action.CLAIM: NoBody,
    Action.ACCEPT: NoBody,
    Action.REQUEST_SUPPLEMENT: SupplementRequest,
    Action.RECORD_SUPPLEMENT: SupplementRecord,
    Action.RESOLVE: Resolution,
    Action.REJECT: CodedDecision,
    Action.RETURN: CodedDecision,
    Action.ASSIGN: Assignment,
}

_ACTION_SUMMARIES = {
    Action.CLAIM: "Claim the item (one owner at a time)",
    Action.ACCEPT: "Accept the item (受理)",
    Action.REQUEST_SUPPLEMENT: "Ask for supplementary material; pauses the clock where the matter allows",
    Action.RECORD_SUPPLEMENT: "Record supplementary or 容缺 material received",
    Action.RESOLVE: "Resolve with a result and how it reaches the resident",
    Action.REJECT: "Reject with a coded reason",
    Action.RETURN: "Return as not ours (退单) with a coded reason, within the return limit",
    Action.ASSIGN: "Decide after ping-pong: the level above, holding an item whose returns reached the limit, "
                   "assigns it to a unit and department of its jurisdiction with a reason; it cannot be returned",
}

_ACTION_ERRORS = {403: "outside your jurisdiction", 404: "no such item",
                  409: "not allowed now: transition_not_allowed (with current_status), not_item_owner, "
                       "claimed_by_other, return_limit_passed, returns_exhausted, nothing_owed, "
                       "not_returned_to_limit, not_deciding_unit",
                  422: "invalid body: validation_failed, unknown_reason, unknown_material, unknown_unit, "
                       "unknown_department, no_desk_there"}

OPERATIONS = [
    Operation("GET", "/v1/items", "Your open items, closest to their promised deadline first, a page at a time "
              "(keyset: next_cursor leads to the next page); filters: status, matter, overdue; count is exact "
              "up to 1000", ItemQueuePage,
              errors={400: "invalid_query (also: offset, which this listing replaced by cursor)",
                      403: "not a staff or department client"},
              query=(("status", False, "one status (default: every open one)"), ("matter", False, "a matter code"),
                     ("overdue", False, "true or false"), PAGE_QUERY[0],
                     ("cursor", False, "next_cursor of the page before (same filters); none: the first page"))),
    Operation("GET", "/v1/accepted-items", "通办: items of cases your unit's window took in for other lines (e.g. "
              "another district), in any status, newest first, to forward materials and hand results back; "
              "filters: status, limit, offset", ItemList,
              errors={400: "invalid_query", 403: "not a staff or department client"},
              query=(("status", False, "one status (default: any)"), *PAGE_QUERY)),
    Operation("GET", "/v1/items/{item_id}", "One item with its history and 容缺 materials (also for the unit that "
              "took its case in for another line)", ItemView,
              errors={403: "outside your jurisdiction", 404: "no such item"}),
    *[Operation("POST", f"/v1/items/{{item_id}}/{action}", _ACTION_SUMMARIES[action], ItemView,
                request_model=ACTION_BODIES[action], errors=_ACTION_ERRORS) for action in ACTION_BODIES],
    Operation("POST", "/v1/items/{item_id}/custody", "代办 or 通办: record a hand-over of material or result (the "
              "accepting window of another line records its own steps)", ItemView,
              request_model=CustodyStep, errors={403: "outside your jurisdiction", 404: "no such item",
                                                 409: "the item is closed",
                                                 422: "validation_failed, not_taken_in_for_another_line"}),
    *HEALTH_OPERATIONS,
]


def routing_openapi() -> dict:
    return build_openapi(
        "Sanji staff and department API", API_VERSION,
        "Staff and department systems work the items of their own jurisdiction.", OPERATIONS, Problem,
        service="routing")
