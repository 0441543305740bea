"""The subscriptions HTTP API, described once: the service serves these operations and /openapi.json."""

from __future__ import annotations

from pydantic import BaseModel

from services.subscriptions.schemas import (
    DeliveryPage,
    DisclosureReport,
    EventTypeEntry,
    EventTypeList,
    Problem,
    RedeliveryRequest,
    RedeliveryResult,
    SecretRotation,
    SubscriptionChange,
    SubscriptionList,
    SubscriptionRequest,
    SubscriptionView,
)
from shared.openapi import HEALTH_OPERATIONS, PAGE_QUERY, Operation, build_openapi

API_VERSION = "1.0.0"


class Deleted(BaseModel):
    id: str
    status: str


_SUBSCRIBER = "not a department system or street/district staff (subscriber_forbidden)"

OPERATIONS = [
    Operation("POST", "/v1/subscriptions", "Subscribe: a stream sink (queue) or a webhook, with CloudEvents "
              "Subscriptions filters; the scope is the caller's mandate, and a webhook's signing secret is shown "
              "once", SubscriptionView, success_status=201, request_model=SubscriptionRequest,
              errors={400: "invalid_filter, unknown_event_type, malformed_json", 403: f"outside_mandate: the filter "
                      f"asks for more than the mandate; {_SUBSCRIBER}",
                      413: "payload_too_large", 415: "unsupported_media_type",
                      422: "validation_failed, invalid_webhook_url (https required; no credentials; a public host "
                           "in production), webhook_unreachable (the host does not resolve), queue_sink_unavailable "
                           "(only a department system's own token consumes a stream)",
                      503: "sink_unavailable: the broker could not declare the stream (nothing was created)"}),
    Operation("GET", "/v1/subscriptions", "The caller's subscriptions", SubscriptionList,
              errors={403: _SUBSCRIBER}),
    Operation("GET", "/v1/subscriptions/{subscription_id}", "One of the caller's subscriptions", SubscriptionView,
              errors={404: "not_found: the caller has no subscription with that id"}),
    Operation("PATCH", "/v1/subscriptions/{subscription_id}", "Pause, resume or re-enable (status), change the "
              "filters (checked against the mandate again) or the description", SubscriptionView,
              request_model=SubscriptionChange,
              errors={400: "invalid_filter, unknown_event_type, malformed_json", 403: "outside_mandate",
                      404: "not_found", 415: "unsupported_media_type", 422: "validation_failed"}),
    Operation("DELETE", "/v1/subscriptions/{subscription_id}", "Delete a subscription (and its stream)", Deleted,
              errors={404: "not_found", 503: "sink_unavailable: the stream could not be deleted (nothing changed)"}),
    Operation("POST", "/v1/subscriptions/{subscription_id}/secrets", "Rotate a webhook's signing secret: a new one "
              "(shown once) signs from now on, the previous ones still sign for the grace period", SecretRotation,
              success_status=201, errors={404: "not_found", 409: "not_a_webhook"}),
    Operation("GET", "/v1/subscriptions/{subscription_id}/deliveries", "The failure view: deliveries not handed "
              "over (pending, retrying, given up) with their attempts and last error, or those of one status",
              DeliveryPage, errors={400: "invalid_query", 404: "not_found"},
              query=(("status", False, "pending, retrying, delivered or given_up (default: every status but "
                                       "delivered)"), *PAGE_QUERY)),
    Operation("POST", "/v1/subscriptions/{subscription_id}/redeliver", "Deliver again the subscription's events of "
              "a time range (event time, from inclusive, to exclusive) or of some event ids, with the same "
              "webhook-id", RedeliveryResult, request_model=RedeliveryRequest,
              errors={400: "malformed_json", 404: "not_found", 415: "unsupported_media_type",
                      422: "validation_failed: neither or both ways given, a bad range"}),
    Operation("GET", "/v1/disclosures", "Who was handed which events of a case, and when (JSON, or CSV with "
              "format=csv): admins every row, staff the cases of their jurisdiction, a department system its own",
              DisclosureReport, errors={400: "invalid_query: case_id missing, unknown format",
                                        403: "disclosure_forbidden"},
              query=(("case_id", True, "the case"), ("format", False, "json (default) or csv"))),
    # The catalogue is the same document as docs/event-types.json and docs/asyncapi.json in the repository:
    # public, like /openapi.json, so that a department's developer can read it before holding a token.
    Operation("GET", "/v1/event-types", "The event catalogue: every event type with its version, JSON Schema, "
              "filter attributes and an example (built from the models that validate the events)", EventTypeList,
              authenticated=False),
    Operation("GET", "/v1/event-types/{event_type}", "One event type, by its CloudEvents type "
              "(cn.sanji.item.routed.v1), its versioned name (item.routed.v1) or its name (item.routed: the newest "
              "version)", EventTypeEntry, authenticated=False,
              errors={404: "unknown_event_type: no such type in the catalogue"}),
    *HEALTH_OPERATIONS,
]


def subscriptions_openapi() -> dict:
    return build_openapi(
        "Sanji subscriptions API", API_VERSION,
        "Department systems (and supervising street and district staff) subscribe to the events of their mandate: "
        "a stream they consume on the broker, or a webhook signed to the Standard Webhooks spec, with retries, a "
        "failure view and redelivery; and the disclosure audit per case.",
        OPERATIONS, Problem, service="subscriptions")
