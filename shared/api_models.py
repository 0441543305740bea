"""Response bodies every service's API shares, so each OpenAPI document describes them the same way."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    service: str
    checks: dict[str, bool] = Field(description="broker, database, migrations: each true when fine")


class Liveness(BaseModel):
    status: Literal["alive"]
    service: str


class FieldProblem(BaseModel):
    field: str = Field(description="dotted path in the body (list positions as numbers); empty when the whole "
                                   "body is at fault")
    problem: str
    code: str = Field(description="e.g. missing, string_too_long, forbidden_character, number_too_long, "
                                  "number_out_of_range")


class Problem(BaseModel):
    """An RFC 9457 problem document; the client reads ``reason``. It never repeats what the client sent."""

    type: str
    title: str
    status: int
    reason: str = Field(description="machine-readable, e.g. invalid_id_number, transition_not_allowed")
    request_id: str
    current_status: str | None = Field(default=None, description="on 409: the state of the thing now")
    errors: list[FieldProblem] | None = Field(default=None, description="on 422 validation_failed: what is wrong "
                                                                        "where")
