"""The evaluation API's bodies: what is accepted (with hostile-input limits) and what is answered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import RectificationReasonCode

Text = Field(default="", max_length=1000)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RatingSubmission(_Body):
    item_id: str = Field(max_length=36)
    level: str = Field(max_length=24, description="非常满意, 满意, 基本满意, 不满意, 非常不满意 (or the code, e.g. "
                                                  "very_dissatisfied)")
    reason_codes: list[str] = Field(default_factory=list, max_length=10)
    comment: str = Field(default="", max_length=500, description="stays in the service: never on the bus")


class LinkRatingSubmission(RatingSubmission):
    channel: Literal["sms_link", "lookup"] = "sms_link"


class KioskRatingSubmission(RatingSubmission):
    channel: Literal["kiosk", "window_pad"] = "kiosk"
    rater_phone: str | None = Field(default=None, pattern=r"^1\d{10}$",
                                    description="optional; only its HMAC is kept, to flag many ratings from one phone")


class RatingView(BaseModel):
    rating_id: str
    item_id: str
    case_id: str
    channel: str
    level: str
    level_name: str
    reason_codes: list[str]
    submitted_at: datetime
    replaces: str | None = None
    excluded: bool = False
    rectification_id: str | None = None


class RateableItem(BaseModel):
    item_id: str
    matter_code: str | None
    status: str
    ratings: list[RatingView]


class ReasonOption(BaseModel):
    code: str
    name: str = Field(description="the Chinese name a rating page shows")
    kind: Literal["praise", "complaint"] = Field(description="praise goes with 非常满意, 满意 and 基本满意 only; "
                                                            "a complaint with any level")


class RatingLinkView(BaseModel):
    case_id: str
    case_number: str
    completed_at: datetime
    window_closes_at: datetime
    levels: list[str]
    reasons: list[ReasonOption] = Field(description="the coded reasons a rating may carry (rating-reasons.yaml)")
    items: list[RateableItem]


class RatingLinkIssue(_Body):
    case_id: str | None = Field(default=None, max_length=36)
    case_number: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9-]+$",
                                    description="instead of case_id: the number on the resident's receipt")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.case_id is None) == (self.case_number is None):
            raise ValueError("give case_id or case_number, not both")
        return self


class RatingLinkIssued(BaseModel):
    case_id: str
    token: str
    expires_at: datetime


class CallbackRecord(_Body):
    outcome: Literal["reached_satisfied", "reached_unsatisfied", "not_reached"]
    note: str = Text


class RectificationClosure(_Body):
    result: Literal["rectified", "explained", "cannot_rectify"] = Field(
        description="整改完成, 解释说明, 无法整改")
    reason: str = Text
    reason_code: RectificationReasonCode | None = Field(
        default=None, description="with explained: handled_by_rules, policy_explained or misunderstanding; with "
                                  "cannot_rectify: beyond_authority, policy_restriction or conditions_lacking. The "
                                  "resident's SMS says it; the free-text reason stays here")


class RectificationView(BaseModel):
    rectification_id: str
    origin: str
    origin_id: str
    item_id: str | None
    unit_code: str
    level: str
    state: str
    opened_at: datetime
    deadline: datetime
    deadline_provisional: bool = Field(
        default=False, description="True when the due time was counted in a year whose official holiday arrangement "
                                   "(调休) is not loaded yet; it is counted again once the arrangement is loaded")
    escalate_at: datetime
    escalate_at_provisional: bool = False
    supervising_unit_code: str | None
    callback_at: datetime | None
    callback_outcome: str | None
    result: str | None
    reason_code: str | None = None
    closed_at: datetime | None


class RectificationList(BaseModel):
    rectifications: list[RectificationView]
    total: int


class AppealFiling(_Body):
    grounds: Literal["wrong_case", "abusive_text", "unrelated_to_service", "malicious"]
    statement: str = Text


class AppealDecision(_Body):
    upheld: bool
    reason: str = Field(min_length=1, max_length=1000)


class AppealView(BaseModel):
    appeal_id: str
    rating_id: str
    unit_code: str
    deciding_unit_code: str
    grounds: str
    statement: str = Field(default="", description="the unit's statement of its grounds")
    state: str
    decision_reason: str = Field(default="", description="the deciding unit's reason, once decided")
    filed_at: datetime
    decided_at: datetime | None


class AppealList(BaseModel):
    appeals: list[AppealView]
    total: int


class EvaluatorRegistration(_Body):
    display_name: str = Field(min_length=1, max_length=64)
    category: Literal["citizen", "deputy", "journalist"]


class EvaluatorRegistered(BaseModel):
    evaluator_id: str
    category: str
    token: str = Field(description="shown once; the evaluator sends it as 'Authorization: Evaluator <token>'")


class AttachmentUpload(_Body):
    content_type: Literal["image/jpeg", "image/png"]
    data_base64: str = Field(max_length=3 * 1024 * 1024, description="the photo, base64")


class FindingFiling(_Body):
    unit_code: str = Field(pattern=r"^\d{12}$")
    item_id: str | None = Field(default=None, max_length=36)
    matter_code: str | None = Field(default=None, max_length=64)
    mode: Literal["visit", "tried_matter"]
    place: str = Field(min_length=1, max_length=200)
    tried: str = Field(min_length=1, max_length=1000)
    went_wrong: str = Field(min_length=1, max_length=2000)
    severity: Literal["low", "medium", "high", "critical"]


class FindingView(BaseModel):
    finding_id: str
    evaluator_id: str
    unit_code: str
    item_id: str | None
    severity: str
    filed_at: datetime
    rectification_id: str | None
    attachments: list[str] = []


class SupervisionOrderIssue(_Body):
    subject_type: Literal["item", "rectification"]
    subject_id: str = Field(max_length=36)
    target_unit_code: str = Field(pattern=r"^\d{12}$")
    what: str = Field(min_length=1, max_length=1000)
    due_in_working_days: int = Field(ge=1, le=30)


class SupervisionAnswer(_Body):
    answer: str = Field(min_length=1, max_length=2000)


class SupervisionOrderView(BaseModel):
    order_id: str
    subject_type: str
    subject_id: str
    issuer_unit_code: str
    target_unit_code: str
    what: str = Field(default="", description="what the ordered unit is to do")
    due_at: datetime
    due_at_provisional: bool = Field(
        default=False, description="True when the due time was counted in a year whose official holiday arrangement "
                                   "(调休) is not loaded yet; it is counted again once the arrangement is loaded")
    issued_at: datetime
    answered_at: datetime | None
    answer: str = Field(default="", description="the ordered unit's answer, once answered")
    state: str = Field(description="open, overdue, answered or answered_late")


class SupervisionOrderList(BaseModel):
    orders: list[SupervisionOrderView]
    total: int
    overdue: int


class RateRow(BaseModel):
    key: str = Field(description="the unit code, level or department the row is for")
    routed: int
    responded_in_time: int
    due: int
    concluded_in_time: int
    rated: int
    satisfaction_points: float
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    flags: dict[str, int]


class RatesView(BaseModel):
    district_code: str
    period_from: datetime
    period_to: datetime
    by: str
    rows: list[RateRow]
    query_ms: float


class RankingRow(BaseModel):
    rank: int
    unit_code: str
    unit_name: str
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    previous_satisfaction_rate: float | None
    trend: str


class RankingView(BaseModel):
    district_code: str
    level: str
    period_from: datetime
    period_to: datetime
    rows: list[RankingRow]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    reason: str
    request_id: str


class Health(BaseModel):
    status: str
