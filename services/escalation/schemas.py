"""The escalation API's bodies. The OpenAPI document is generated from these models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.api_models import Health, Problem  # noqa: F401 - part of this API's schema set

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
DivisionCode = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ReportClass = Literal["simple", "complex", "special"]
Outcome = Literal["solved", "explained", "referred", "deferral_granted", "not_solvable"]

_NO_PERSONAL_DATA = "free text for the record; an ID-card or phone number is refused (personal data stays in intake)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ── 吹哨 ────────────────────────────────────────────────────────────────────────────────────────────


class Acknowledgement(_Strict):
    note: str = Field(default="", max_length=500, description=_NO_PERSONAL_DATA)


class ManualWhistle(_Strict):
    department_codes: list[str] = Field(default_factory=list, max_length=10,
                                        description="the departments to call in; none: those the matter names")
    reason: str = Field(min_length=1, max_length=500, description=_NO_PERSONAL_DATA)


class WhistleCallView(BaseModel):
    call_id: str
    item_id: str
    matter_code: str
    department_code: str = Field(description="the department called in")
    level: str
    unit_code: str = Field(description="the called department's desk")
    caller_level: str
    caller_unit_code: str
    called_at: datetime
    ack_due_at: datetime
    state: Literal["called", "acknowledged", "escalated", "cancelled"]
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated_at: datetime | None = None


class WhistleCallList(BaseModel):
    calls: list[WhistleCallView]
    total: int


# ── An item's escalation record ─────────────────────────────────────────────────────────────────────


class DeadlineView(BaseModel):
    kind: str
    due_at: datetime
    state: Literal["pending", "fired", "cancelled", "parked"]
    fired_at: datetime | None = None


class ActionView(BaseModel):
    kind: str
    at: datetime
    level: str | None
    unit_code: str | None
    details: dict


class ItemEscalationView(BaseModel):
    item_id: str
    case_number: str
    matter_code: str
    department_code: str
    status: str
    level: str
    unit_code: str
    promised_deadline: datetime | None
    legal_deadline: datetime | None
    clock_paused: bool
    loop_state: str | None = Field(description="community, left, street or done; none for other matters")
    loop_ends_at: datetime | None
    loop_outcome: str | None = Field(description="resolved_in_loop counts for the community")
    deadlines: list[DeadlineView]
    calls: list[WhistleCallView]
    actions: list[ActionView]


# ── 办不成事 ────────────────────────────────────────────────────────────────────────────────────────


class FailureReportFiling(_Strict):
    """A member of staff (the first person asked) files for a resident. The resident's name and phone are
    not taken here: a report about a case reaches the resident through the case; otherwise file it at the
    kiosk API of intake, which keeps personal data."""

    community_code: DivisionCode | None = Field(default=None, description="the resident's community, if known")
    case_id: Id | None = None
    item_id: Id | None = Field(default=None, description="the item that could not get done, if any")
    matter_code: Code | None = Field(default=None, description="taken from the item when it names one")
    department_code: Code | None = Field(default=None, description="taken from the item when it names one")
    report_class: ReportClass | None = Field(default=None, description="simple (solved on the spot), complex "
                                                                        "(department opinion due) or special")
    cause_code: Code | None = Field(default=None, description="from GET /v1/failure-causes")
    time_limit_days: int | None = Field(default=None, ge=1, le=60,
                                        description="special: the working days the person was told")
    note: str = Field(default="", max_length=1000, description=_NO_PERSONAL_DATA)


class Classification(_Strict):
    report_class: ReportClass
    cause_code: Code
    department_code: Code | None = Field(default=None, description="the department that owes an opinion (complex)")
    time_limit_days: int | None = Field(default=None, ge=1, le=60,
                                        description="special: the working days the person was told")


class Assignment(_Strict):
    specialist: str | None = Field(default=None, min_length=1, max_length=128,
                                   description="the specialist's account; omitted: the calling specialist")


class ContactRecord(_Strict):
    department_code: Code
    unit_code: DivisionCode | None = Field(default=None, description="the department's desk, if a particular one")
    channel: Literal["phone", "visit", "meeting", "document", "system"]
    kind: Literal["contact", "opinion"] = Field(default="contact",
                                                description="opinion: the department's written opinion (complex)")
    note: str = Field(min_length=1, max_length=1000, description=_NO_PERSONAL_DATA)


class DeferralTerms(_Strict):
    """容缺受理 as the outcome: the item goes ahead while these materials are still missing."""

    item_id: Id
    material_codes: list[Code] = Field(min_length=1, max_length=20)
    due_in_working_days: int | None = Field(default=None, ge=1, le=60,
                                            description="default SANJI_ESCALATION_DEFERRAL_DAYS")


class Closure(_Strict):
    outcome: Outcome
    note: str = Field(default="", max_length=1000, description=_NO_PERSONAL_DATA)
    deferral: DeferralTerms | None = Field(default=None, description="required with outcome deferral_granted")


class ReturnVisit(_Strict):
    agrees_solved: bool = Field(description="whether the person agrees the problem is solved; if not, it reopens")
    note: str = Field(default="", max_length=1000, description=_NO_PERSONAL_DATA)


class ReportEntryView(BaseModel):
    at: datetime
    actor: str
    action: str
    department_code: str | None
    note: str
    details: dict


class DeferralGrantView(BaseModel):
    grant_id: str
    item_id: str
    matter_code: str
    material_codes: list[str] = Field(description="still owed")
    due_date: date
    state: Literal["pending", "supplied", "overdue"]


class FailureReportView(BaseModel):
    report_id: str
    report_number: str
    channel: str
    status: Literal["open", "assigned", "closed", "confirmed"]
    unit_code: str
    community_code: str | None
    case_id: str | None
    item_id: str | None
    matter_code: str | None
    department_code: str | None
    level: str | None
    report_class: ReportClass | None
    cause_code: str | None
    owner: str
    specialist: str | None
    opinion_due_at: datetime | None
    opinion_received_at: datetime | None
    time_limit_at: datetime | None
    overdue: bool
    outcome: Outcome | None
    reopen_count: int
    filed_at: datetime
    closed_at: datetime | None
    confirmed_at: datetime | None
    note: str
    deferrals: list[DeferralGrantView] = []
    history: list[ReportEntryView] | None = None


class FailureReportList(BaseModel):
    reports: list[FailureReportView]
    total: int


class CauseView(BaseModel):
    code: str
    name: str


class CauseList(BaseModel):
    causes: list[CauseView]
