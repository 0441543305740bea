"""Events on the bus: a CloudEvents 1.0 envelope around versioned pydantic payloads.

Every payload class names its CloudEvents ``type`` (``cn.sanji.<noun>.<verb>.v<N>``) and how its AMQP
routing key is built, so a department can bind exactly what it owns with a plain topic pattern.
Events carry codes and ids, never personal data: there is no field for an ID number or a phone, and
``extra="forbid"`` keeps one from slipping in.

A breaking change to a payload is a new class with ``.v2``; both versions are published side by side
until every subscriber has moved.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import ClassVar, Literal

from kombu.serialization import register
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from shared.clock import new_id

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "cn.sanji."


def dataschema_of(event_type: str) -> str:
    """The ``dataschema`` URI of a type's events; the event catalogue's JSON Schema of the type has it as ``$id``."""
    return f"urn:sanji:schema:{event_type}"


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# Structured-mode CloudEvents over AMQP: the whole envelope is the body, with its own content type.
register("cloudevents", _dumps, json.loads, content_type=CLOUDEVENTS_CONTENT_TYPE, content_encoding="utf-8")


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    # The AMQP routing key, with the payload's fields in braces; documented as is in the AsyncAPI file.
    routing_key_template: ClassVar[str]

    def routing_key(self) -> str:
        return self.routing_key_template.format(**self.model_dump(mode="json"))

    def subject(self) -> str:
        raise NotImplementedError


Level = Literal["community", "street", "district"]


class DeferredMaterial(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    matter_code: str
    material_code: str
    due_date: date
    due_date_provisional: bool = Field(
        default=False,
        description="True when the due date was counted in a year whose official holiday arrangement (调休) "
                    "is not loaded yet: its days off were derived from the law",
    )


def item_routing_key_template(verb: str) -> str:
    """``item.<verb>.<district>.<level>.<unit>.<department>``, so that with one topic pattern

    - a district department binds ``item.*.320113000000.*.*.police`` (its items at every level),
    - a street binds ``item.*.*.street.320113003000.*`` (everything at its own desks),
    - a dashboard binds ``item.routed.#``.
    """
    return f"item.{verb}.{{district_code}}.{{level}}.{{unit_code}}.{{department_code}}"


class CaseSubmittedV1(EventPayload):
    """A resident's case was taken in: one submission, one or more matters."""

    event_type: ClassVar[str] = TYPE_PREFIX + "case.submitted.v1"

    case_id: str
    case_number: str
    community_code: str = Field(pattern=r"^\d{12}$")
    catalogue_version: str
    bundle_code: str | None
    matter_codes: tuple[str, ...] = Field(min_length=1)
    channel: Literal["kiosk", "window", "proxy"]
    agent_id: str | None = None
    applicant_masked_name: str = Field(description="Masked, e.g. 刘**; never the full name")
    deferred_materials: tuple[DeferredMaterial, ...] = ()
    submitted_at: datetime
    service_point_id: str | None = Field(default=None, description="the service point (15分钟政务服务圈) it was "
                                                                   "taken in at, if any")
    accepting_unit_code: str | None = Field(
        default=None, pattern=r"^\d{12}$",
        description="通办: the unit whose window took the case in for the line of community_code (the resident's); "
                    "it keeps custody of the materials received and hands the result back")
    accepted_by: str | None = Field(default=None, description="通办: the window's account (never resident data)")
    received_material_codes: tuple[str, ...] = Field(
        default=(), description="通办: the materials the accepting window received, for its custody record")
    resident_channels: tuple[Literal["sms", "email"], ...] | None = Field(
        default=None, description="the channels the resident can be reached on (which kinds of address intake "
                                  "holds, never an address); absent: not said, every channel is tried")

    routing_key_template: ClassVar[str] = "case.submitted.{community_code}"

    def subject(self) -> str:
        return self.case_id


ItemStatus = Literal["waiting", "queued", "claimed", "accepted", "supplement_requested", "resolved", "rejected",
                     "terminated"]


class ItemEvent(EventPayload):
    """What every item event carries: the item, its case, and where it stands (the routing-key fields)."""

    item_id: str
    case_id: str
    case_number: str
    matter_code: str
    department_code: str
    level: Level
    unit_code: str = Field(pattern=r"^\d{12}$")
    district_code: str = Field(pattern=r"^\d{12}$", description="the district whose line the item is in")
    community_code: str = Field(pattern=r"^\d{12}$")
    status: ItemStatus = Field(description="the item's status after this event")
    occurred_at: datetime

    verb: ClassVar[str]
    # False for notices about an item (督办 warnings and escalations) that change nothing about the item
    # itself, so read models of the item's state can skip them.
    changes_item: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "verb" in cls.__dict__:
            cls.routing_key_template = item_routing_key_template(cls.verb)

    def subject(self) -> str:
        return self.item_id


class ItemRoutedV1(ItemEvent):
    """An item reached the queue of the unit and department entitled to handle it (first routing, or again
    after a return or an escalation, or where the level above assigned it after ping-pong)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.routed.v1"
    verb: ClassVar[str] = "routed"

    route_reason: Literal["submitted", "returned", "escalated", "assigned"] = "submitted"
    waiting_for: tuple[str, ...] = Field(default=(), description="prerequisite matters of the same case")
    legal_deadline: datetime
    promised_deadline: datetime
    deadline_provisional: bool = Field(
        description="True when the working-day calendar did not cover a year the deadline spans"
    )
    catalogue_version: str
    accepting_unit_code: str | None = Field(
        default=None, pattern=r"^\d{12}$",
        description="通办: the unit that took the case in for this line and keeps custody of its materials")
    resident_channels: tuple[Literal["sms", "email"], ...] | None = Field(
        default=None, description="the channels the resident can be reached on (which kinds of address intake "
                                  "holds, never an address), passed on from case.submitted on the first "
                                  "routing; absent: not said, every channel is tried")


class ItemActionV1(ItemEvent):
    """A member of staff (or a department system) acted on an item."""

    actor: str = Field(description="the account that acted: a name, never personal data of the resident")


class ItemClaimedV1(ItemActionV1):
    """A member of staff (or a department system) took an item from its unit's queue (认领)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.claimed.v1"
    verb: ClassVar[str] = "claimed"


class ItemAcceptedV1(ItemActionV1):
    """The handling unit accepted an item (受理): its materials are complete, or complete but for 容缺."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.accepted.v1"
    verb: ClassVar[str] = "accepted"


class ItemSupplementRequestedV1(ItemActionV1):
    """The handling unit asked for materials to be supplied (补正) by ``due_date``."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.supplement-requested.v1"
    verb: ClassVar[str] = "supplement-requested"

    material_codes: tuple[str, ...] = Field(min_length=1)
    due_date: date
    due_date_provisional: bool = Field(
        default=False,
        description="True when the due date was counted in a year whose official holiday arrangement (调休) "
                    "is not loaded yet: its days off were derived from the law",
    )
    clock_paused: bool = Field(description="whether the promised-limit clock stops while waiting")


class ItemSupplementSuppliedV1(ItemActionV1):
    """The requested materials were supplied; the item goes on, its clock moved on if it was paused."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.supplement-supplied.v1"
    verb: ClassVar[str] = "supplement-supplied"

    material_codes: tuple[str, ...] = Field(min_length=1)
    promised_deadline: datetime = Field(description="moved on by the paused time, where the clock was paused")


class Delivery(BaseModel):
    """How the resident gets the result: at a window, or brought to the door by a social worker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["pickup", "door"]
    place: str | None = Field(default=None, max_length=200, description="the window, for pickup")
    agent_id: str | None = Field(default=None, max_length=64, description="the social worker, for door delivery")
    scheduled_for: datetime | None = None

    @model_validator(mode="after")
    def _says_where(self) -> Delivery:
        if self.method == "pickup" and not self.place:
            raise ValueError("a pickup names its place (the window)")
        if self.method == "door" and not self.agent_id:
            raise ValueError("a door delivery names the social worker (agent_id)")
        return self


class ItemResolvedV1(ItemActionV1):
    """The item was granted (办结): its result and how the resident gets it."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.resolved.v1"
    verb: ClassVar[str] = "resolved"

    result: str = Field(max_length=500, description="the outcome, e.g. the permit number")
    delivery: Delivery


class ItemRejectedV1(ItemActionV1):
    """The handling unit refused the item (不予受理 or not granted), with a coded reason."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.rejected.v1"
    verb: ClassVar[str] = "rejected"

    reason_code: str
    note: str = Field(default="", max_length=500)


class ItemReturnedV1(ItemActionV1):
    """退单: the unit says the item is not its own; an item.routed to the next unit follows."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.returned.v1"
    verb: ClassVar[str] = "returned"

    reason_code: str
    note: str = Field(default="", max_length=500)
    return_count: int


class ItemReleasedV1(ItemEvent):
    """A waiting item's prerequisite resolved: it enters its queue with a fresh clock."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.released.v1"
    verb: ClassVar[str] = "released"

    legal_deadline: datetime
    promised_deadline: datetime
    deadline_provisional: bool



class ItemDeadlineRevisedV1(ItemEvent):
    """A deadline computed across a provisional year (no official holiday arrangement loaded) was computed
    again once the arrangement was loaded: from the same start and the same working-day count. Published when
    a date moved *or* only its provisional flag cleared, so every read model can drop the flag. The previous
    dates are given so that a consumer can tell whether a date it showed actually changed."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.deadline-revised.v1"
    verb: ClassVar[str] = "deadline-revised"

    legal_deadline: datetime
    promised_deadline: datetime
    deadline_provisional: bool = Field(description="still True only if the deadlines reach a year whose "
                                                   "arrangement is still not loaded")
    previous_legal_deadline: datetime
    previous_promised_deadline: datetime
    supplement_due_date: date | None = Field(
        default=None, description="while supplement_requested: the revised due date of the requested material")
    supplement_due_date_provisional: bool | None = None
    previous_supplement_due_date: date | None = None
    revised_at: datetime

class ItemTerminatedV1(ItemEvent):
    """The item was closed without a result by a rule, not by staff."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.terminated.v1"
    verb: ClassVar[str] = "terminated"

    # supplement_expired: the material asked for by request-supplement did not arrive by its due date.
    reason_code: Literal["deferral_expired", "supplement_expired", "prerequisite_rejected",
                         "prerequisite_terminated"]
    note: str = ""


CustodyStepName = Literal[
    # 代办: a social worker's hand-overs
    "collected_at_home", "handed_to_window", "result_collected", "result_delivered",
    # 通办: the accepting window of another line keeps the materials and hands the result back
    "received_at_accepting_window", "forwarded_to_entitled_unit", "result_received_at_accepting_window",
    "result_handed_back"]
CROSS_LINE_CUSTODY_STEPS = frozenset({"received_at_accepting_window", "forwarded_to_entitled_unit",
                                      "result_received_at_accepting_window", "result_handed_back"})


class CustodyRecordedV1(ItemActionV1):
    """A hand-over of material or result (who, when, what): a social worker's (代办), or the accepting window's
    of a 通办 case taken in for another line."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.custody-recorded.v1"
    verb: ClassVar[str] = "custody-recorded"

    step: CustodyStepName
    what: str = Field(max_length=300)


class DeferralReminderV1(EventPayload):
    """容缺: a deferred material is due soon; the notification service reminds the resident."""

    event_type: ClassVar[str] = TYPE_PREFIX + "case.deferral-reminder.v1"

    case_id: str
    case_number: str
    community_code: str = Field(pattern=r"^\d{12}$")
    material_code: str
    matter_codes: tuple[str, ...]
    due_date: date

    routing_key_template: ClassVar[str] = "case.deferral-reminder.{community_code}"

    def subject(self) -> str:
        return self.case_id



class DeferralDueDateRevisedV1(EventPayload):
    """容缺: a deferred material's due date was counted across a provisional year and has been counted again
    under the arrangement loaded since (same start, same working days). Published when the date moved or only
    its provisional flag cleared; the resident is told again only when the date moved."""

    event_type: ClassVar[str] = TYPE_PREFIX + "case.deferral-due-date-revised.v1"

    case_id: str
    case_number: str
    community_code: str = Field(pattern=r"^\d{12}$")
    material_code: str
    matter_codes: tuple[str, ...]
    due_date: date
    due_date_provisional: bool
    previous_due_date: date
    revised_at: datetime

    routing_key_template: ClassVar[str] = "case.deferral-due-date-revised.{community_code}"

    def subject(self) -> str:
        return self.case_id

class EscalationOrderedV1(EventPayload):
    """The escalation service orders an item up its line (the community's internal loop ran out, or an
    unanswered call-in). Routing moves the item and announces the move with item.escalated and item.routed."""

    event_type: ClassVar[str] = TYPE_PREFIX + "escalation.ordered.v1"
    routing_key_template: ClassVar[str] = "escalation.ordered.{district_code}"

    item_id: str
    district_code: str = Field(pattern=r"^\d{12}$")
    from_level: Level = Field(description="the level the order was made for; a stale order is ignored")
    reason: Literal["internal_loop_expired", "whistle_unacknowledged", "supervisor_decision"]
    note: str = Field(default="", max_length=500)
    ordered_at: datetime

    def subject(self) -> str:
        return self.item_id


class ItemEscalatedV1(ItemEvent):
    """An item moved up its line: now at the level, unit and queue it names."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.escalated.v1"
    verb: ClassVar[str] = "escalated"

    from_level: Level
    from_unit_code: str = Field(pattern=r"^\d{12}$")
    reason: Literal["internal_loop_expired", "whistle_unacknowledged", "supervisor_decision"]


class ItemOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str
    matter_code: str
    status: Literal["resolved", "rejected", "terminated"]


class CaseCompletedV1(EventPayload):
    """Every item of the case is resolved, rejected or terminated: one completion, one trip for the resident."""

    event_type: ClassVar[str] = TYPE_PREFIX + "case.completed.v1"

    case_id: str
    case_number: str
    community_code: str = Field(pattern=r"^\d{12}$")
    outcomes: tuple[ItemOutcome, ...]
    delivery: Delivery | None = Field(description="one delivery for all results; none if nothing was granted")
    completed_at: datetime

    routing_key_template: ClassVar[str] = "case.completed.{community_code}"

    def subject(self) -> str:
        return self.case_id


# ── Escalation: 督办, 吹哨 and the 办不成事 window (published by the escalation service; reports also by intake)


class ItemDeadlineWarningV1(ItemEvent):
    """督办: an item has used the configured share of its promised time (80 % by default).

    Escalation notices describe the item as the escalation service last heard of it: ``occurred_at`` is the
    time of that state (routing's last change), so a read model never lets a notice overwrite a newer state;
    ``raised_at`` is when the notice was raised."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.deadline-warning.v1"
    verb: ClassVar[str] = "deadline-warning"
    changes_item: ClassVar[bool] = False

    share_used: float = Field(ge=0, description="the share of the promised working time used when warned")
    promised_deadline: datetime
    raised_at: datetime


class ItemSupervisionEscalatedV1(ItemEvent):
    """督办: an item broke its promised limit (first escalation) or its legal limit (second escalation); the
    supervising unit named here takes it up. The item itself stays where it is."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.supervision-escalated.v1"
    verb: ClassVar[str] = "supervision-escalated"
    changes_item: ClassVar[bool] = False

    stage: Literal["promised_breach", "legal_breach"]
    deadline: datetime = Field(description="the limit that was broken")
    supervising_level: Level
    supervising_unit_code: str = Field(pattern=r"^\d{12}$")
    raised_at: datetime


class WhistleEvent(EventPayload):
    """What every 吹哨 event carries: the call, its item, and the called department's desk.

    Routing key ``whistle.<verb>.<district>.<level>.<unit>.<department>`` names the called desk, so a
    department binds ``whistle.*.320113000000.*.*.housing`` for every call to it in 栖霞区."""

    call_id: str
    item_id: str
    case_id: str
    matter_code: str
    department_code: str = Field(description="the department called in")
    level: Level = Field(description="the level of the called department's desk")
    unit_code: str = Field(pattern=r"^\d{12}$", description="the unit of the called department's desk")
    district_code: str = Field(pattern=r"^\d{12}$")
    caller_level: Level = Field(description="the level the item reached, whose unit blows the whistle")
    caller_unit_code: str = Field(pattern=r"^\d{12}$")
    occurred_at: datetime

    verb: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "verb" in cls.__dict__:
            cls.routing_key_template = (f"whistle.{cls.verb}.{{district_code}}.{{level}}.{{unit_code}}"
                                        ".{department_code}")

    def subject(self) -> str:
        return self.call_id


class WhistleCalledV1(WhistleEvent):
    """吹哨: an item reached the street or the district by escalation; a department it names is called in and
    must acknowledge by ``ack_due_at``."""

    event_type: ClassVar[str] = TYPE_PREFIX + "whistle.called.v1"
    verb: ClassVar[str] = "called"

    ack_due_at: datetime


class WhistleAcknowledgedV1(WhistleEvent):
    """报到: the called department acknowledged in time."""

    event_type: ClassVar[str] = TYPE_PREFIX + "whistle.acknowledged.v1"
    verb: ClassVar[str] = "acknowledged"

    acknowledged_by: str = Field(description="the department system's account")


class WhistleEscalatedV1(WhistleEvent):
    """A call went unacknowledged past its limit: it is escalated to the level above the caller (at the district,
    to the district's own supervision), and the item is ordered up its line where there is a level above."""

    event_type: ClassVar[str] = TYPE_PREFIX + "whistle.escalated.v1"
    verb: ClassVar[str] = "escalated"

    ack_due_at: datetime
    escalated_to_level: Level
    escalated_to_unit_code: str = Field(pattern=r"^\d{12}$")
    item_ordered_up: bool


ReportClass = Literal["simple", "complex", "special"]


class ReportEvent(EventPayload):
    """What every 办不成事 report event carries. Never the reporter's name, phone or own words: those stay in
    the service that took the report. Routing key ``report.<verb>.<district>.<unit>``, the unit being the one
    the report belongs to (where it was first asked)."""

    report_id: str
    report_number: str
    district_code: str = Field(pattern=r"^\d{12}$")
    unit_code: str = Field(pattern=r"^\d{12}$", description="the unit of the first person asked")
    occurred_at: datetime

    verb: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "verb" in cls.__dict__:
            cls.routing_key_template = f"report.{cls.verb}.{{district_code}}.{{unit_code}}"

    def subject(self) -> str:
        return self.report_id


class ReportFiledV1(ReportEvent):
    """办不成事: someone reported a request that could not get done, at a kiosk or to a member of staff."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.filed.v1"
    verb: ClassVar[str] = "filed"

    channel: Literal["kiosk", "staff"]
    community_code: str | None = Field(default=None, pattern=r"^\d{12}$", description="the reporter's community")
    case_id: str | None = None
    item_id: str | None = None
    matter_code: str | None = None
    department_code: str | None = None
    level: Level | None = Field(default=None, description="the level of the item concerned, if any")
    report_class: ReportClass | None = Field(default=None, description="none until someone classifies it")
    cause_code: str | None = None
    owner: str = Field(description="the account of the first person asked (首问负责)")


class ReportClassifiedV1(ReportEvent):
    """A report got its class and cause; a complex one owes a department opinion, a special one has the time
    limit given to the person."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.classified.v1"
    verb: ClassVar[str] = "classified"

    report_class: ReportClass
    cause_code: str
    department_code: str | None = None
    opinion_due_at: datetime | None = None
    time_limit_at: datetime | None = None
    classified_by: str


class ReportAssignedV1(ReportEvent):
    """A 办不成事 report was given to a specialist to coordinate."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.assigned.v1"
    verb: ClassVar[str] = "assigned"

    specialist: str
    assigned_by: str


class ReportContactRecordedV1(ReportEvent):
    """The specialist contacted a department (or received its opinion). What was said stays in the record."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.contact-recorded.v1"
    verb: ClassVar[str] = "contact-recorded"

    department_code: str
    contact_kind: Literal["contact", "opinion"]
    specialist: str


class ReportDeferralGrantedV1(ReportEvent):
    """容缺受理 as a coordination outcome: the item may go ahead while these materials are still missing; the
    escalation service follows them up until ``due_date``."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.deferral-granted.v1"
    verb: ClassVar[str] = "deferral-granted"

    item_id: str
    case_id: str
    matter_code: str
    department_code: str
    material_codes: tuple[str, ...] = Field(min_length=1)
    due_date: date
    granted_by: str


class ReportClosedV1(ReportEvent):
    """A 办不成事 report was closed, with its outcome."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.closed.v1"
    verb: ClassVar[str] = "closed"

    outcome: Literal["solved", "explained", "referred", "deferral_granted", "not_solvable"]
    closed_by: str


class ReportReturnVisitedV1(ReportEvent):
    """回访: the person was asked whether the problem is solved."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.return-visited.v1"
    verb: ClassVar[str] = "return-visited"

    agrees_solved: bool
    visited_by: str


class ReportReopenedV1(ReportEvent):
    """A closed 办不成事 report was opened again (the return visit disagreed, or a 容缺 material is overdue)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.reopened.v1"
    verb: ClassVar[str] = "reopened"

    reason: Literal["return_visit_disagreed", "deferral_material_overdue"]
    reopen_count: int


class ReportOverdueV1(ReportEvent):
    """A complex report's department opinion, or a special report's time limit, passed without it."""

    event_type: ClassVar[str] = TYPE_PREFIX + "report.overdue.v1"
    verb: ClassVar[str] = "overdue"

    limit: Literal["opinion", "time_limit"]
    due_at: datetime
    supervising_unit_code: str = Field(pattern=r"^\d{12}$")


# ── Evaluation: 好差评, rectifications and appeals (published by the evaluation service) ──────────────────

RatingLevel = Literal["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]
RatingChannel = Literal["sms_link", "kiosk", "window_pad", "lookup"]


class EvaluationEvent(EventPayload):
    """What every evaluation event carries: the item rated and the unit that handled it (the routing-key fields).
    Codes and ids only: never the comment, the phone or a name. A 体验官 finding may name a unit without an
    item: then the item, case and matter are null and the department is ``any``."""

    item_id: str | None
    case_id: str | None
    matter_code: str | None
    department_code: str
    level: Level
    unit_code: str = Field(pattern=r"^\d{12}$")
    district_code: str = Field(pattern=r"^\d{12}$")

    noun: ClassVar[str]
    verb: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "verb" in cls.__dict__:
            cls.routing_key_template = (f"{cls.noun}.{cls.verb}.{{district_code}}.{{level}}.{{unit_code}}"
                                        ".{department_code}")


class RatingSubmittedV1(EvaluationEvent):
    """A resident rated an item (or changed the rating within 24 hours: ``replaces`` names the earlier one)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rating.submitted.v1"
    noun: ClassVar[str] = "rating"
    verb: ClassVar[str] = "submitted"

    rating_id: str
    rating_level: RatingLevel
    channel: RatingChannel
    reason_codes: tuple[str, ...] = ()
    replaces: str | None = Field(default=None, description="the rating id this one replaces")
    submitted_at: datetime

    def subject(self) -> str:
        return self.rating_id


class RectificationEvent(EvaluationEvent):
    noun: ClassVar[str] = "rectification"

    rectification_id: str
    origin: Literal["rating", "finding"]
    origin_id: str

    def subject(self) -> str:
        return self.rectification_id


class RectificationOpenedV1(RectificationEvent):
    """A bad rating or a 体验官 finding opened a rectification, owned by the unit that handled the item."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rectification.opened.v1"
    verb: ClassVar[str] = "opened"

    deadline: datetime
    opened_at: datetime


class RectificationOpenedV2(RectificationEvent):
    """A bad rating or a 体验官 finding opened a rectification, owned by the unit that handled the item; with the
    provisional flag of its due time and the escalation time. Published beside ``rectification.opened.v1`` (same
    routing key) until every subscriber of v1 has moved."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rectification.opened.v2"
    verb: ClassVar[str] = "opened"

    deadline: datetime
    deadline_provisional: bool = Field(
        description="True when the due time was counted in a year whose official holiday arrangement (调休) is not "
                    "loaded yet: its days off were derived from the law; rectification.due-date-revised follows "
                    "once the arrangement is loaded")
    escalate_at: datetime = Field(description="when an unclosed rectification goes to the level above")
    escalate_at_provisional: bool
    opened_at: datetime


class RectificationClosedV1(RectificationEvent):
    """The owning unit closed a rectification with a result (or an upheld appeal ended it)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rectification.closed.v1"
    verb: ClassVar[str] = "closed"

    result: Literal["rectified", "explained", "cannot_rectify", "appeal_upheld"] = Field(
        description="整改完成, 解释说明, 无法整改; appeal_upheld when the level above upheld the unit's appeal "
                    "against the rating that opened it")
    callback_outcome: Literal["reached_satisfied", "reached_unsatisfied", "not_reached"] | None
    closed_at: datetime


# The coded reason a unit gives when it closes a rectification with 解释说明 or 无法整改, by result, with what the
# resident is told for it: a code on the bus, so her SMS can say why while the unit's free text stays in
# evaluation. One list: evaluation checks a closing against it, the console offers it, notification words it.
RECTIFICATION_REASONS: dict[str, dict[str, str]] = {
    "explained": {"handled_by_rules": "经核实，办理过程符合相关规定",
                  "policy_explained": "已就相关政策规定作出说明",
                  "misunderstanding": "经核实系误解，已说明情况"},
    "cannot_rectify": {"beyond_authority": "超出本单位职权范围",
                       "policy_restriction": "受现行政策法规限制",
                       "conditions_lacking": "客观条件暂不具备"},
}
RectificationReasonCode = Literal[tuple(code for codes in RECTIFICATION_REASONS.values() for code in codes)]


class RectificationClosedV2(RectificationEvent):
    """The owning unit closed a rectification with a result and, for 解释说明 or 无法整改, a coded reason (or an
    upheld appeal ended it). Published beside ``rectification.closed.v1`` (same routing key) until every
    subscriber of v1 has moved."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rectification.closed.v2"
    verb: ClassVar[str] = "closed"

    result: Literal["rectified", "explained", "cannot_rectify", "appeal_upheld"] = Field(
        description="整改完成, 解释说明, 无法整改; appeal_upheld when the level above upheld the unit's appeal "
                    "against the rating that opened it")
    reason_code: RectificationReasonCode | None = Field(
        default=None, description="why it was explained or cannot be rectified (a code; the unit's own words stay "
                                  "in the evaluation service); null for rectified, appeal_upheld, or a closing "
                                  "that gave no code")
    case_number: str | None = Field(default=None, description="the case's number (SJ…), when the rectification "
                                                               "concerns an item of a completed case")
    community_code: str | None = Field(default=None, pattern=r"^\d{12}$",
                                       description="the case's community, when there is a case")
    callback_outcome: Literal["reached_satisfied", "reached_unsatisfied", "not_reached"] | None
    closed_at: datetime


class RectificationOverdueV1(RectificationEvent):
    """A rectification passed its deadline (stage warning), then its grace (stage escalated: the unit above
    named here takes it up)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rectification.overdue.v1"
    verb: ClassVar[str] = "overdue"

    stage: Literal["warning", "escalated"]
    deadline: datetime
    supervising_unit_code: str | None = Field(default=None, pattern=r"^\d{12}$")
    raised_at: datetime


class RectificationDueDateRevisedV1(RectificationEvent):
    """A rectification's due time (or its escalation time) was counted across a provisional year (no official
    holiday arrangement loaded) and has been counted again under the arrangement loaded since: from the same start
    and the same working days. Published when a time moved *or* only its provisional flag cleared; the previous
    times are given so that a consumer can tell whether the due time it showed actually changed."""

    event_type: ClassVar[str] = TYPE_PREFIX + "rectification.due-date-revised.v1"
    verb: ClassVar[str] = "due-date-revised"

    state: Literal["open", "warned", "escalated", "closed"] = Field(description="the rectification's state")
    deadline: datetime
    deadline_provisional: bool = Field(description="still True only if the due time reaches a year whose "
                                                   "arrangement is still not loaded")
    previous_deadline: datetime
    escalate_at: datetime
    escalate_at_provisional: bool
    previous_escalate_at: datetime
    revised_at: datetime


class AppealDecidedV1(EvaluationEvent):
    """The level above decided a unit's appeal against a rating; upheld, the rating leaves the rates."""

    event_type: ClassVar[str] = TYPE_PREFIX + "appeal.decided.v1"
    noun: ClassVar[str] = "appeal"
    verb: ClassVar[str] = "decided"

    appeal_id: str
    rating_id: str
    grounds: Literal["wrong_case", "abusive_text", "unrelated_to_service", "malicious"]
    upheld: bool
    deciding_unit_code: str = Field(pattern=r"^\d{12}$")
    decided_at: datetime

    def subject(self) -> str:
        return self.appeal_id


class SupervisionOrderEvent(EvaluationEvent):
    """A 督办单: ``unit_code`` (and ``level``) is the unit the order is addressed to, the item, case, matter and
    department those of its subject (an item, or a rectification's item; a rectification without an item:
    department ``any``). What the order asks and the answer stay in the evaluation service."""

    noun: ClassVar[str] = "supervision-order"

    order_id: str
    subject_type: Literal["item", "rectification"]
    subject_id: str
    issuer_unit_code: str = Field(pattern=r"^\d{12}$", description="the supervising street or district")
    due_at: datetime

    def subject(self) -> str:
        return self.order_id


class SupervisionOrderIssuedV1(SupervisionOrderEvent):
    """Street or district staff ordered a unit of their jurisdiction to act on an item or a rectification (督办单)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "supervision-order.issued.v1"
    verb: ClassVar[str] = "issued"

    issued_at: datetime


class SupervisionOrderAnsweredV1(SupervisionOrderEvent):
    """The unit a 督办单 names answered it (``late`` when after its due time)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "supervision-order.answered.v1"
    verb: ClassVar[str] = "answered"

    answered_at: datetime
    late: bool


PAYLOAD_TYPES: dict[str, type[EventPayload]] = {
    payload.event_type: payload
    for payload in (CaseSubmittedV1, ItemRoutedV1, ItemClaimedV1, ItemAcceptedV1, ItemSupplementRequestedV1,
                    ItemSupplementSuppliedV1, ItemResolvedV1, ItemRejectedV1, ItemReturnedV1, ItemReleasedV1,
                    ItemTerminatedV1, CustodyRecordedV1, DeferralReminderV1, CaseCompletedV1, EscalationOrderedV1,
                    ItemEscalatedV1, ItemDeadlineRevisedV1, DeferralDueDateRevisedV1,
                    ItemDeadlineWarningV1, ItemSupervisionEscalatedV1, WhistleCalledV1, WhistleAcknowledgedV1,
                    WhistleEscalatedV1, ReportFiledV1, ReportClassifiedV1, ReportAssignedV1, ReportContactRecordedV1,
                    ReportDeferralGrantedV1, ReportClosedV1, ReportReturnVisitedV1, ReportReopenedV1,
                    ReportOverdueV1, RatingSubmittedV1, RectificationOpenedV1, RectificationClosedV1,
                    RectificationOverdueV1, AppealDecidedV1, RectificationClosedV2, SupervisionOrderIssuedV1,
                    SupervisionOrderAnsweredV1, RectificationOpenedV2, RectificationDueDateRevisedV1)
}


# CloudEvents extension attributes that other systems on the bus add, and that are accepted (and kept)
# rather than dead-lettered: Distributed Tracing (W3C trace context) and Partitioning. Any other attribute
# outside the core set is still refused: an unknown attribute is as likely a mistake or a smuggled field
# (an ID number beside ``data``) as an extension, and refusing it is what keeps personal data off the bus.
EXTENSION_ATTRIBUTES = ("traceparent", "tracestate", "partitionkey")


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope. ``source`` + ``id`` identify an event; consumers dedupe on them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: dict
    # Extensions (see EXTENSION_ATTRIBUTES): W3C trace context, and the partitioning key.
    traceparent: str | None = Field(default=None, max_length=55,
                                    pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
    tracestate: str | None = Field(default=None, max_length=512)
    partitionkey: str | None = Field(default=None, max_length=256)

    @model_serializer(mode="wrap")
    def _without_absent_extensions(self, handler):
        """An extension that is not set is absent from the JSON (not ``null``): the core stays as it was."""
        document = handler(self)
        for name in EXTENSION_ATTRIBUTES:
            if document.get(name) is None:
                document.pop(name, None)
        return document

    @classmethod
    def wrap(cls, payload: EventPayload, *, source: str, time: datetime, event_id: str | None = None):
        return cls(
            id=event_id or new_id(),
            source=source,
            type=payload.event_type,
            subject=payload.subject(),
            time=time,
            dataschema=dataschema_of(payload.event_type),
            data=payload.model_dump(mode="json"),
        )

    def payload(self) -> EventPayload:
        """The typed payload; raises ``UnknownEventType`` or a pydantic ``ValidationError``."""
        try:
            payload_type = PAYLOAD_TYPES[self.type]
        except KeyError:
            raise UnknownEventType(self.type) from None
        return payload_type.model_validate(self.data)

    def dedupe_key(self) -> str:
        return f"{self.source}#{self.id}"


class UnknownEventType(ValueError):
    def __init__(self, event_type: str):
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


def source_of(service: str) -> str:
    return f"/sanji/{service}"
