"""Response bodies every service's API shares, so each OpenAPI document describes them the same way."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    service: str
    checks: dict[str, bool]


class Problem(BaseModel):
    """An RFC 9457 problem document; the client reads ``reason``."""

    type: str
    title: str
    status: int
    reason: str = Field(description="machine-readable, e.g. invalid_id_number, transition_not_allowed")
    request_id: str
    current_status: str | None = Field(default=None, description="on 409: the state of the thing now")
