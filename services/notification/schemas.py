"""The notification HTTP API's bodies, as pydantic models (they also generate /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.api_models import Health, Problem  # noqa: F401 - part of this API's schema set


class InboxEntry(BaseModel):
    id: str
    unit_code: str
    department_code: str | None
    kind: str = Field(description="message kind, e.g. staff_new_item")
    subject: str
    body: str
    case_id: str | None
    case_number: str | None
    item_id: str | None
    created_at: datetime


class InboxPage(BaseModel):
    messages: list[InboxEntry]
    total: int


class AttemptView(BaseModel):
    number: int
    started_at: datetime
    finished_at: datetime
    outcome: Literal["sent", "transient", "permanent", "skipped"]
    detail: str | None
    provider_ref: str | None


class DeliveryView(BaseModel):
    id: str
    kind: str
    channel: Literal["sms", "email", "webhook", "inbox"]
    audience: str
    recipient: str = Field(description="resident:<case>, unit:<unit>:<department> or webhook:<name>; never an "
                                       "address")
    address_hint: str | None = Field(description="a masked address (139****5678, l***@example.com), once known")
    status: Literal["pending", "sent", "failed", "skipped"]
    hold_reason: str | None = Field(description="quiet_hours while an SMS waits for the morning")
    urgent: bool
    item_id: str | None
    event_type: str
    subject: str
    body: str
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    attempts: list[AttemptView]


class DeliveryLog(BaseModel):
    case_id: str
    deliveries: list[DeliveryView]
