"""The subscriptions API's bodies: what is accepted (with hostile-input limits) and what is answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueSink(_Body):
    type: Literal["queue"]


class WebhookSink(_Body):
    type: Literal["webhook"]
    url: str = Field(min_length=1, max_length=2048, description="https:// (http://localhost in development only)")


class SubscriptionRequest(_Body):
    sink: QueueSink | WebhookSink = Field(discriminator="type")
    filters: list = Field(default_factory=list, max_length=32,
                          description="CloudEvents Subscriptions filter expressions (exact, prefix, suffix, all, any, "
                                      "not), all of which must match; empty: everything in the mandate")
    description: str = Field(default="", max_length=500)


class SubscriptionChange(_Body):
    status: Literal["active", "paused"] | None = Field(default=None, description="active also re-enables a "
                                                                                  "disabled webhook")
    filters: list | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=500)


# A CloudEvent id as Sanji makes them (UUIDs), or a department's own plain token: no control characters, short.
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class RedeliveryRequest(_Body):
    from_: datetime | None = Field(default=None, alias="from", description="event time, inclusive")
    to: datetime | None = Field(default=None, description="event time, exclusive")
    event_ids: list[EventId] | None = Field(default=None, min_length=1, max_length=1000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_way(self) -> RedeliveryRequest:
        by_time = self.from_ is not None or self.to is not None
        if by_time == (self.event_ids is not None):
            raise ValueError("give either from and to (a time range) or event_ids")
        if by_time and (self.from_ is None or self.to is None):
            raise ValueError("a time range needs both from and to")
        if by_time and (self.from_.tzinfo is None or self.to.tzinfo is None):
            raise ValueError("from and to need a time zone (e.g. 2026-12-01T00:00:00+08:00)")
        if by_time and self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class ReplayRequest(_Body):
    """Replay the subscription's scope from the event log: from a time, from offsets, or both; up to ``until``."""

    from_time: datetime | None = Field(default=None, description="event time to replay from, inclusive, with a "
                                       "time zone; no older than the log's retention, not in the future")
    from_offsets: dict[str, int] | None = Field(
        default=None, max_length=8, description="{partition or district code: offset} to resume from (the "
                                                "positions of an earlier replay); only the subscription's district")
    until: datetime | None = Field(default=None, description="event time to stop at, exclusive (default: the end "
                                                             "of the log when the replay starts)")

    @model_validator(mode="after")
    def _bounds(self) -> ReplayRequest:
        if self.from_time is None and self.from_offsets is None:
            raise ValueError("give from_time (or from_offsets) to say where the replay starts")
        for name, moment in (("from_time", self.from_time), ("until", self.until)):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-01T00:00:00+08:00)")
        if self.from_time is not None and self.until is not None and self.until <= self.from_time:
            raise ValueError("until must be after from_time")
        for name, offset in (self.from_offsets or {}).items():
            if not 0 < len(name) <= 64 or offset < 0:
                raise ValueError("from_offsets maps a partition (or district code) to an offset of 0 or more")
        return self


class ReplayView(BaseModel):
    id: str
    subscription_id: str
    status: Literal["queued", "running", "done", "failed"]
    from_time: datetime | None
    from_offsets: dict[str, int] | None
    until: datetime | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    events_read: int = Field(description="events of the subscription's district read from the log so far")
    events_matched: int = Field(description="of which in the mandate and the filters: queued for delivery")
    positions: dict[str, int] = Field(description="{partition: the next offset to read}: where it stands, and "
                                                  "from_offsets to resume from")
    error: str | None = None


class Scope(BaseModel):
    kind: Literal["department", "supervisor"]
    department: str | None = Field(description="the department whose events are in scope; null: every department")
    unit_code: str
    unit_prefix: str = Field(description="every unit whose code starts with this is in scope")
    district_code: str


class SinkView(BaseModel):
    type: Literal["queue", "webhook"]
    url: str | None = None
    stream: str | None = Field(default=None, description="the stream queue to consume (x-stream-offset)")
    broker_user: str | None = Field(default=None, description="the broker user that may read the stream")
    exchange: str | None = None


class SubscriptionView(BaseModel):
    id: str
    status: Literal["active", "paused", "disabled"]
    status_reason: str | None = None
    sink: SinkView
    filters: list
    description: str
    scope: Scope
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = None
    secret: str | None = Field(default=None, description="the webhook signing secret (whsec_…): shown once, when "
                                                         "the subscription is created")


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionView]


class SecretRotation(BaseModel):
    subscription_id: str
    secret: str = Field(description="the new signing secret (whsec_…), shown once")
    previous_valid_until: datetime | None = Field(description="the previous secrets still sign until then")


class AttemptView(BaseModel):
    number: int
    attempted_at: datetime
    outcome: Literal["delivered", "failed"]
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryView(BaseModel):
    event_id: str
    event_type: str
    event_time: datetime
    status: Literal["pending", "retrying", "delivered", "given_up"]
    attempts: int
    next_attempt_at: datetime | None
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    failed_attempts: list[AttemptView]


class DeliveryPage(BaseModel):
    subscription_id: str
    status: str | None
    counts: dict[str, int] = Field(description="deliveries of the subscription by status")
    deliveries: list[DeliveryView]
    total: int


class RedeliveryResult(BaseModel):
    subscription_id: str
    redelivered: int = Field(description="deliveries queued again")
    unknown_event_ids: list[str] = Field(default_factory=list, description="ids this subscription never matched")


class DisclosureView(BaseModel):
    subscriber: str
    subscriber_kind: str
    department: str | None
    subscription_id: str
    sink: str
    event_id: str
    event_type: str
    disclosed_at: datetime


class DisclosureReport(BaseModel):
    case_id: str
    disclosures: list[DisclosureView]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    reason: str
    request_id: str


class EventTypeEntry(BaseModel):
    """One event type of the catalogue (shared.event_catalogue), as docs/event-types.json holds it."""

    type: str = Field(description="the CloudEvents type, e.g. cn.sanji.item.routed.v1")
    name: str = Field(description="the type without prefix and version, e.g. item.routed")
    version: int
    deprecated: bool
    superseded_by: str | None = None
    summary: str
    description: str
    routing_key: str = Field(description="the AMQP routing key template on sanji.events")
    sources: list[str]
    schema_: dict = Field(alias="schema", description="JSON Schema of the event's data")
    filter_attributes: list[str] = Field(description="attributes a subscription filter can match for this type")
    optional_filter_attributes: list[str]
    filter_attribute_fields: dict
    example: dict = Field(description="a whole CloudEvent of this type, valid against the schema")
    example_routing_key: str

    model_config = ConfigDict(populate_by_name=True)


class EventTypeList(BaseModel):
    event_types: list[EventTypeEntry]
