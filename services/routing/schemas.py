"""The staff and department API's bodies. The OpenAPI document is generated from these models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.api_models import Health, Problem  # noqa: F401 - part of this API's schema set
from shared.events import CustodyStepName, Delivery

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoBody(_Strict):
    note: str = Field(default="", max_length=500)


class SupplementRequest(_Strict):
    materials: list[Code] = Field(min_length=1, max_length=20)
    due_in_working_days: int = Field(default=5, ge=1, le=30)
    note: str = Field(default="", max_length=500)


class SupplementRecord(_Strict):
    materials: list[Code] = Field(min_length=1, max_length=20)
    note: str = Field(default="", max_length=500)


class Resolution(_Strict):
    result: str = Field(min_length=1, max_length=500, description="the outcome, e.g. the permit number")
    delivery: Delivery


class CodedDecision(_Strict):
    reason_code: Code = Field(description="from the catalogue's reasons.yaml")
    note: str = Field(default="", max_length=500)


class Assignment(_Strict):
    unit_code: str = Field(pattern=r"^\d{12}$", description="the unit that handles the item from now on")
    department_code: Code = Field(description="its department")
    reason: str = Field(min_length=1, max_length=500, description="why this unit: recorded in the history")


class CustodyStep(_Strict):
    step: CustodyStepName = Field(description="代办: collected_at_home, handed_to_window, result_collected, "
                                              "result_delivered; 通办 (the accepting window of another line): "
                                              "received_at_accepting_window, forwarded_to_entitled_unit, "
                                              "result_received_at_accepting_window, result_handed_back")
    what: str = Field(min_length=1, max_length=300, description="which materials or results changed hands")
    agent_id: str | None = Field(default=None, max_length=64, description="the social worker, if not the caller")


class DeferredMaterialView(BaseModel):
    material_code: str
    due_date: date
    state: Literal["pending", "supplied", "expired"]


class HistoryEntryView(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    reason_code: str | None
    note: str
    details: dict


class ItemView(BaseModel):
    item_id: str
    case_id: str
    case_number: str
    matter_code: str
    matter_name: str
    department_code: str
    level: str
    unit_code: str
    unit_name: str
    status: str
    claimed_by: str | None
    waiting_for: list[str]
    legal_deadline: datetime
    promised_deadline: datetime
    deadline_provisional: bool = Field(description="a deadline lies in a year whose official holiday "
                                                    "arrangement (调休) is not loaded: its days off were derived "
                                                    "from the law, and may still move")
    supplement_due_date: date | None = Field(default=None, description="while supplement_requested: the "
                                                                       "day the missing materials are due")
    supplement_due_date_provisional: bool | None = Field(default=None, description="as deadline_provisional, "
                                                                                   "for supplement_due_date")
    promised_time_used: float = Field(description="share of the promised working time used (1.0 = due now)")
    overdue: bool
    clock_paused: bool
    return_count: int
    accepting_unit_code: str | None = Field(default=None, description="通办: the unit that took the case in for "
                                                                      "this line and keeps custody records")
    accepting_unit_name: str | None = None
    result: str | None = None
    delivery: Delivery | None = None
    deferred_materials: list[DeferredMaterialView] = []
    history: list[HistoryEntryView] | None = None


class ItemList(BaseModel):
    items: list[ItemView]
    total: int


class ItemQueuePage(BaseModel):
    items: list[ItemView]
    next_cursor: str | None = Field(description="opaque: pass it as ?cursor= (with the same filters) for the next "
                                                 "page; null on the last page")
    count: int = Field(description=f"items matching the filters, counted up to {1000}")
    count_exact: bool = Field(description="false when more items match than count says (it stops at 1000)")
