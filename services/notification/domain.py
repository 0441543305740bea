"""Who is told what, over which channel, when, and what happens after an attempt: pure rules, no I/O.

The heart is ``RULES``, a table from event type to the messages it causes: a message kind (one template
per kind and channel), an audience, the template context, and when the message is urgent. Adding an
event (a deadline warning, an escalation, a 吹哨 call-in) is a few lines here plus its templates; an
event type with no rule is recorded as processed and otherwise ignored.

Time, randomness and the catalogue's names are passed in, so every rule is testable with fakes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from shared.catalogue import Catalogue
from shared.events import (
    RECTIFICATION_REASONS,
    AppealDecidedV1,
    CaseCompletedV1,
    CaseSubmittedV1,
    DeferralDueDateRevisedV1,
    DeferralReminderV1,
    Delivery,
    EventPayload,
    ItemDeadlineRevisedV1,
    ItemDeadlineWarningV1,
    ItemEscalatedV1,
    ItemEvent,
    ItemRejectedV1,
    ItemReleasedV1,
    ItemResolvedV1,
    ItemRoutedV1,
    ItemSupervisionEscalatedV1,
    ItemSupplementRequestedV1,
    ItemTerminatedV1,
    RectificationClosedV2,
    RectificationDueDateRevisedV1,
    RectificationEvent,
    RectificationOpenedV2,
    RectificationOverdueV1,
    ReportAssignedV1,
    ReportClosedV1,
    ReportFiledV1,
    ReportOverdueV1,
    SupervisionOrderAnsweredV1,
    SupervisionOrderEvent,
    SupervisionOrderIssuedV1,
    WhistleCalledV1,
    WhistleEscalatedV1,
)
from shared.identity import mask_phone
from shared.logging import redact_text
from shared.workdays import SHANGHAI

Audience = Literal["resident", "unit_staff", "department", "specialist"]

# The channels each audience is reached on. A resident's email is optional: when the event says which
# kinds of address intake holds (``resident_channels`` on case.submitted and the first item.routed), only
# those are planned; otherwise a delivery is planned for each and recorded as skipped when intake has no
# address (the notification service never holds the contact details; see docs/notifications.md).
AUDIENCE_CHANNELS: Mapping[str, tuple[str, ...]] = {
    "resident": ("sms", "email"),
    "unit_staff": ("inbox",),
    "department": ("webhook",),
    "specialist": ("inbox",),   # the 办不成事 specialist a report is assigned to, in the inbox of the report's unit
}
CHANNELS = ("sms", "email", "webhook", "inbox")
# Channels that deliver inside our own database, in the transaction that plans them.
LOCAL_CHANNELS = frozenset({"inbox"})

LEVEL_LABELS = {"community": "社区", "street": "街道", "district": "区"}
RATING_LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
TERMINATION_REASONS = {
    "deferral_expired": "容缺材料未在承诺期限内补齐",
    "supplement_expired": "补正材料未在告知期限内提交",
    "prerequisite_rejected": "前置事项未予办理",
    "prerequisite_terminated": "前置事项已终止办理",
}
OUTCOME_LABELS = {"resolved": "已办结", "rejected": "不予办理", "terminated": "已终止办理"}
ROUTE_REASONS = {"submitted": "", "returned": "原承办单位退回后重新转办", "escalated": "上报至上级办理",
                 "assigned": "上级协调后指定承办单位"}
ESCALATION_REASONS = {"internal_loop_expired": "下级内部循环办理期满仍未办结",
                      "whistle_unacknowledged": "“吹哨”后被叫部门未按时报到",
                      "supervisor_decision": "督办人员决定上报"}
SUPERVISION_STAGES = {"promised_breach": "已超过承诺办结期限", "legal_breach": "已超过法定办结期限"}
REPORT_CHANNELS = {"kiosk": "自助终端", "staff": "工作人员代为登记"}
REPORT_OUTCOMES = {"solved": "问题已解决", "explained": "已向您作出解释说明", "referred": "已转交有权处理的部门办理",
                   "deferral_granted": "已同意容缺受理，请在约定期限内补齐材料",
                   "not_solvable": "经协调，该事项目前确实无法办理"}
REPORT_LIMITS = {"opinion": "部门意见", "time_limit": "承诺办理时限"}
# Evaluation (好差评 rectifications, appeals, 督办单): the wording for the codes its events carry.
RECTIFICATION_ORIGINS = {"rating": "群众“不满意”评价", "finding": "政务服务体验官发现的问题"}
RECTIFICATION_RESULTS = {"rectified": "整改完成", "explained": "解释说明", "cannot_rectify": "无法整改"}
# What the resident is told for each coded reason (shared/events.py, one list for every service).
RECTIFICATION_REASON_TEXTS = {code: text for codes in RECTIFICATION_REASONS.values() for code, text in codes.items()}
APPEAL_GROUNDS = {"wrong_case": "评价对象有误", "abusive_text": "评价含有辱骂等不当内容",
                  "unrelated_to_service": "评价内容与政务服务无关", "malicious": "恶意评价"}
ORDER_SUBJECTS = {"item": "办件", "rectification": "整改事项"}

# A door delivery this close is told at once, even at night: held until morning, the notice could
# reach the resident after the social worker is already at the door.
URGENT_VISIT_WITHIN = timedelta(hours=12)


# ── Names ───────────────────────────────────────────────────────────────────────────────────────────


# What a message says for a code the catalogue does not know. Messages show catalogue names only, never text
# taken from an event: an unknown code (or a forged one) becomes one of these plain phrases.
UNKNOWN_NAMES = {"matter": "相关事项", "unit": "承办单位", "department": "相关部门", "material": "相关材料",
                 "reject_reason": "不符合办理条件", "termination_reason": "未能继续办理",
                 "escalation_reason": "按规定上报"}


class Names(Protocol):
    """Display names for the codes events carry; a code the catalogue does not know gets a generic phrase
    (``UNKNOWN_NAMES``), never the code itself."""

    def matter(self, code: str) -> str: ...
    def unit(self, code: str) -> str: ...
    def department(self, code: str) -> str: ...
    def material(self, code: str) -> str: ...
    def reject_reason(self, code: str) -> str: ...


class CatalogueNames:
    def __init__(self, catalogue: Catalogue, rating_link=None):
        self._catalogue = catalogue
        # (case_id, completed_at) -> the signed rating URL, or None when no rating page is configured.
        self.rating_link = rating_link
        self._materials = {material.code: material.name
                           for matter in catalogue.matters.values() for material in matter.materials}
        self._reject_reasons = {code: reason.name
                                for code, reason in getattr(catalogue, "reject_reasons", {}).items()}

    def matter(self, code: str) -> str:
        matter = self._catalogue.matters.get(code)
        return matter.name if matter else UNKNOWN_NAMES["matter"]

    def unit(self, code: str) -> str:
        unit = self._catalogue.units.get(code)
        return unit.name if unit else UNKNOWN_NAMES["unit"]

    def department(self, code: str) -> str:
        department = self._catalogue.departments.get(code)
        return department.name if department else UNKNOWN_NAMES["department"]

    def material(self, code: str) -> str:
        return self._materials.get(code, UNKNOWN_NAMES["material"])

    def reject_reason(self, code: str) -> str:
        return self._reject_reasons.get(code, UNKNOWN_NAMES["reject_reason"])


# ── Formatting for templates (dates the way a resident reads them, in China's time) ─────────────────


def day_text(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def local_day_text(moment: datetime) -> str:
    return day_text(moment.astimezone(SHANGHAI).date())


def local_time_text(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{day_text(local.date())} {local:%H:%M}"


# ── Template contexts, one builder per message kind ────────────────────────────────────────────────


# Case and report numbers are ours (SJ20261201-0B7F6A52C1D4, BC20261201-…): letters, digits and hyphens. Anything
# else an event calls a number is not shown, so no event can put words, a link or a phone number into a message
# through it.
_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
UNSHOWN_NUMBER = "（编号请以受理回执为准）"


def shown_number(number: str) -> str:
    return number if _NUMBER.fullmatch(number) else UNSHOWN_NUMBER


def _delivery(delivery: Delivery | None) -> dict | None:
    if delivery is None:
        return None
    return {"method": delivery.method, "place": delivery.place or "", "agent": delivery.agent_id or "",
            "time": local_time_text(delivery.scheduled_for) if delivery.scheduled_for else ""}


def _item_basics(event: ItemEvent, names: Names) -> dict:
    return {"case_number": shown_number(event.case_number), "item_id": event.item_id,
            "matter": names.matter(event.matter_code), "unit": names.unit(event.unit_code),
            "department": names.department(event.department_code),
            "level": LEVEL_LABELS.get(event.level, event.level)}


def receipt_context(event: CaseSubmittedV1, names: Names) -> dict:
    return {
        "case_number": shown_number(event.case_number),
        "submitted_at": local_time_text(event.submitted_at),
        "matters": [names.matter(code) for code in event.matter_codes],
        "deferred": [{"material": names.material(d.material_code), "matter": names.matter(d.matter_code),
                      "due": day_text(d.due_date)} for d in event.deferred_materials],
        "due_provisional": any(d.due_date_provisional for d in event.deferred_materials),
    }


def item_routed_context(event: ItemRoutedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "promised": local_day_text(event.promised_deadline),
            "waiting_for": [names.matter(code) for code in event.waiting_for],
            "route_reason": ROUTE_REASONS[event.route_reason]}


def new_item_context(event: ItemRoutedV1 | ItemReleasedV1, names: Names) -> dict:
    route_reason = event.route_reason if isinstance(event, ItemRoutedV1) else "submitted"
    return {**_item_basics(event, names), "promised": local_day_text(event.promised_deadline),
            "legal": local_day_text(event.legal_deadline), "released": isinstance(event, ItemReleasedV1),
            "route_reason": ROUTE_REASONS[route_reason]}


def supplement_requested_context(event: ItemSupplementRequestedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "materials": [names.material(code) for code in event.material_codes],
            "due": day_text(event.due_date), "due_provisional": event.due_date_provisional,
            "clock_paused": event.clock_paused}


def deferral_reminder_context(event: DeferralReminderV1, names: Names) -> dict:
    return {"case_number": shown_number(event.case_number), "material": names.material(event.material_code),
            "matters": [names.matter(code) for code in event.matter_codes], "due": day_text(event.due_date)}


def supplement_due_revised_context(event: ItemDeadlineRevisedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "due": day_text(event.supplement_due_date),
            "previous_due": day_text(event.previous_supplement_due_date),
            "due_provisional": bool(event.supplement_due_date_provisional)}


def deferral_due_revised_context(event: DeferralDueDateRevisedV1, names: Names) -> dict:
    return {"case_number": shown_number(event.case_number), "material": names.material(event.material_code),
            "matters": [names.matter(code) for code in event.matter_codes], "due": day_text(event.due_date),
            "previous_due": day_text(event.previous_due_date), "due_provisional": event.due_date_provisional}


def item_resolved_context(event: ItemResolvedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "result": event.result, "delivery": _delivery(event.delivery)}


def item_rejected_context(event: ItemRejectedV1, names: Names) -> dict:
    # The reason's catalogue name only: staff's free-text note stays in the item's history, because a message
    # to a resident carries no text an event brought in (a forged or careless note would reach her phone).
    return {**_item_basics(event, names), "reason": names.reject_reason(event.reason_code)}


def item_terminated_context(event: ItemTerminatedV1, names: Names) -> dict:
    return {**_item_basics(event, names),
            "reason": TERMINATION_REASONS.get(event.reason_code, UNKNOWN_NAMES["termination_reason"])}


def case_completed_context(event: CaseCompletedV1, names: Names) -> dict:
    return {
        "case_number": shown_number(event.case_number),
        "granted": [names.matter(o.matter_code) for o in event.outcomes if o.status == "resolved"],
        "not_granted": [{"matter": names.matter(o.matter_code), "status": OUTCOME_LABELS[o.status]}
                        for o in event.outcomes if o.status != "resolved"],
        "delivery": _delivery(event.delivery),
    }


def rating_invitation_context(event: CaseCompletedV1, names: Names) -> dict:
    # The signed 好差评 link, where the deployment names a rating page (CatalogueNames.rating_link).
    link = getattr(names, "rating_link", None)
    return {"case_number": shown_number(event.case_number), "levels": list(RATING_LEVELS),
            "rating_link": link(event.case_id, event.completed_at) if link else None}


# Escalation (督办, 吹哨, 办不成事). Whistle and report events carry no case number: messages name the item's
# matter and the call, or the report's number.


def _level(level: str | None) -> str:
    return LEVEL_LABELS.get(level, level) if level else ""


def deadline_warning_context(event: ItemDeadlineWarningV1, names: Names) -> dict:
    return {**_item_basics(event, names), "share_used": f"{min(event.share_used, 1.0):.0%}",
            "promised": local_time_text(event.promised_deadline)}


def item_escalated_context(event: ItemEscalatedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "from_unit": names.unit(event.from_unit_code),
            "from_level": _level(event.from_level),
            "reason": ESCALATION_REASONS.get(event.reason, UNKNOWN_NAMES["escalation_reason"])}


def supervision_escalated_context(event: ItemSupervisionEscalatedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "stage": SUPERVISION_STAGES[event.stage],
            "legal": event.stage == "legal_breach", "deadline": local_time_text(event.deadline),
            "supervising_unit": names.unit(event.supervising_unit_code),
            "supervising_level": _level(event.supervising_level)}


def _whistle_basics(event: WhistleCalledV1 | WhistleEscalatedV1, names: Names) -> dict:
    return {"call_id": event.call_id, "item_id": event.item_id, "matter": names.matter(event.matter_code),
            "department": names.department(event.department_code), "desk_unit": names.unit(event.unit_code),
            "desk_level": _level(event.level), "caller_unit": names.unit(event.caller_unit_code),
            "caller_level": _level(event.caller_level), "ack_due": local_time_text(event.ack_due_at)}


def whistle_called_context(event: WhistleCalledV1, names: Names) -> dict:
    return _whistle_basics(event, names)


def whistle_escalated_context(event: WhistleEscalatedV1, names: Names) -> dict:
    return {**_whistle_basics(event, names), "escalated_to_unit": names.unit(event.escalated_to_unit_code),
            "escalated_to_level": _level(event.escalated_to_level), "item_ordered_up": event.item_ordered_up}


def report_assigned_context(event: ReportAssignedV1, names: Names) -> dict:
    return {"report_number": shown_number(event.report_number), "report_id": event.report_id,
            "unit": names.unit(event.unit_code),
            "specialist": event.specialist, "assigned_by": event.assigned_by}


def report_receipt_context(event: ReportFiledV1, names: Names) -> dict:
    return {"report_number": shown_number(event.report_number), "unit": names.unit(event.unit_code),
            "filed_at": local_time_text(event.occurred_at), "channel": REPORT_CHANNELS[event.channel],
            "matter": names.matter(event.matter_code) if event.matter_code else ""}


def report_closed_context(event: ReportClosedV1, names: Names) -> dict:
    return {"report_number": shown_number(event.report_number), "unit": names.unit(event.unit_code),
            "outcome": REPORT_OUTCOMES[event.outcome], "closed_at": local_time_text(event.occurred_at)}


def report_overdue_context(event: ReportOverdueV1, names: Names) -> dict:
    return {"report_number": shown_number(event.report_number), "report_id": event.report_id,
            "unit": names.unit(event.unit_code),
            "limit": REPORT_LIMITS[event.limit], "due": local_time_text(event.due_at),
            "supervising_unit": names.unit(event.supervising_unit_code)}


# Evaluation (published by the evaluation service). Its events carry no text: what a 督办单 asks, a unit's reasons
# and answers stay there, so messages name the codes' wording and say where to read the rest.


def _evaluation_basics(event, names: Names) -> dict:
    return {"item_id": event.item_id or "", "matter": names.matter(event.matter_code) if event.matter_code else "",
            "unit": names.unit(event.unit_code), "level": _level(event.level)}


def _rectification_basics(event: RectificationEvent, names: Names) -> dict:
    return {**_evaluation_basics(event, names), "rectification_id": event.rectification_id,
            "origin": RECTIFICATION_ORIGINS[event.origin]}


def rectification_opened_context(event: RectificationOpenedV2, names: Names) -> dict:
    return {**_rectification_basics(event, names), "due": local_time_text(event.deadline),
            "due_provisional": event.deadline_provisional}


def rectification_due_revised_context(event: RectificationDueDateRevisedV1, names: Names) -> dict:
    return {**_rectification_basics(event, names), "due": local_time_text(event.deadline),
            "previous_due": local_time_text(event.previous_deadline), "due_provisional": event.deadline_provisional,
            "escalate_at": local_time_text(event.escalate_at)}


def rectification_overdue_context(event: RectificationOverdueV1, names: Names) -> dict:
    supervising = event.supervising_unit_code
    return {**_rectification_basics(event, names), "due": local_time_text(event.deadline),
            "escalated": event.stage == "escalated", "supervising_unit": names.unit(supervising) if supervising else ""}


def rectification_closed_context(event: RectificationClosedV2, names: Names) -> dict:
    # The reason's wording for its code only: the unit's own words stay in the evaluation service.
    return {"case_number": shown_number(event.case_number) if event.case_number else "",
            "matter": names.matter(event.matter_code) if event.matter_code else "",
            "unit": names.unit(event.unit_code), "result": RECTIFICATION_RESULTS.get(event.result, ""),
            "reason": RECTIFICATION_REASON_TEXTS.get(event.reason_code, "") if event.reason_code else "",
            "closed_at": local_day_text(event.closed_at)}


def appeal_decided_context(event: AppealDecidedV1, names: Names) -> dict:
    return {**_evaluation_basics(event, names), "appeal_id": event.appeal_id, "upheld": event.upheld,
            "grounds": APPEAL_GROUNDS[event.grounds], "deciding_unit": names.unit(event.deciding_unit_code),
            "decided_at": local_time_text(event.decided_at)}


def _order_basics(event: SupervisionOrderEvent, names: Names) -> dict:
    return {**_evaluation_basics(event, names), "order_id": event.order_id,
            "subject": ORDER_SUBJECTS[event.subject_type], "subject_id": event.subject_id,
            "issuer_unit": names.unit(event.issuer_unit_code), "due": local_time_text(event.due_at)}


def supervision_order_issued_context(event: SupervisionOrderIssuedV1, names: Names) -> dict:
    return {**_order_basics(event, names), "issued_at": local_time_text(event.issued_at)}


def supervision_order_answered_context(event: SupervisionOrderAnsweredV1, names: Names) -> dict:
    return {**_order_basics(event, names), "answered_at": local_time_text(event.answered_at), "late": event.late}


# ── Conditions ──────────────────────────────────────────────────────────────────────────────────────


def _always(_event) -> bool:
    return True


def _never(_event, _now) -> bool:
    return False


def in_queue(event: ItemEvent) -> bool:
    """The item is in a unit's queue (a routed item may instead wait for a prerequisite)."""
    return event.status == "queued"


def new_in_queue(event: ItemRoutedV1) -> bool:
    """In a unit's queue, and not brought there by escalation: the unit's staff hear of an escalated item once,
    from ``item.escalated`` (where it came from and why), not a second time as a plain new item."""
    return in_queue(event) and event.route_reason != "escalated"


def supplement_due_moved(event: ItemDeadlineRevisedV1) -> bool:
    """The resident was told a supplement due date, and the revision moved it (a flag cleared alone is no news)."""
    return (event.supplement_due_date is not None and event.previous_supplement_due_date is not None
            and event.supplement_due_date != event.previous_supplement_due_date)


def deferral_due_moved(event: DeferralDueDateRevisedV1) -> bool:
    return event.due_date != event.previous_due_date


def has_case(event) -> bool:
    """A 办不成事 report may concern no case: then there is no resident to reach through intake."""
    return getattr(event, "case_id", None) is not None


def overdue_warning(event: RectificationOverdueV1) -> bool:
    return event.stage == "warning"


def overdue_escalated(event: RectificationOverdueV1) -> bool:
    return event.stage == "escalated" and event.supervising_unit_code is not None


def rectification_due_moved(event: RectificationDueDateRevisedV1) -> bool:
    """The owning unit was told a due time, the revision moved it, and the rectification is still open (a flag
    cleared alone, or a closed rectification, is no news)."""
    return event.deadline != event.previous_deadline and event.state != "closed"


def resident_told_of_closing(event: RectificationClosedV2) -> bool:
    """A rectification a resident's rating opened, closed by its unit: not a 体验官's finding (no resident), and
    not one an upheld appeal ended (the rating itself was found wrong or abusive)."""
    return event.origin == "rating" and event.case_id is not None and event.result != "appeal_upheld"


def _urgent(_event, _now) -> bool:
    return True


def door_visit_soon(event: ItemResolvedV1 | CaseCompletedV1, now: datetime) -> bool:
    delivery = event.delivery
    return (delivery is not None and delivery.method == "door" and delivery.scheduled_for is not None
            and delivery.scheduled_for - now <= URGENT_VISIT_WITHIN)


# ── The table ───────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Rule:
    kind: str                                           # names the templates: <kind>.<channel>.j2
    audience: Audience
    context: Callable[[EventPayload, Names], dict]
    when: Callable[[EventPayload], bool] = _always
    urgent: Callable[[EventPayload, datetime], bool] = _never
    # unit_staff and specialist audiences: the unit whose inbox is addressed (default: the event's unit_code)
    unit: Callable[[EventPayload], str] | None = None
    # Only these of the audience's channels (default: all of them), e.g. an SMS-only message to a resident.
    channels: tuple[str, ...] | None = None


def rule_channels(rule: Rule) -> tuple[str, ...]:
    """The channels a rule's message goes out on: its audience's, or the subset the rule names."""
    channels = AUDIENCE_CHANNELS[rule.audience]
    return channels if rule.channels is None else tuple(c for c in channels if c in rule.channels)


RULES: Mapping[str, tuple[Rule, ...]] = {
    CaseSubmittedV1.event_type: (
        Rule("receipt", "resident", receipt_context),
    ),
    ItemRoutedV1.event_type: (
        Rule("item_routed", "resident", item_routed_context),
        Rule("staff_new_item", "unit_staff", new_item_context, when=new_in_queue),
        Rule("department_new_item", "department", new_item_context, when=in_queue),
    ),
    ItemReleasedV1.event_type: (
        Rule("staff_new_item", "unit_staff", new_item_context),
        Rule("department_new_item", "department", new_item_context),
    ),
    ItemSupplementRequestedV1.event_type: (
        Rule("supplement_requested", "resident", supplement_requested_context),
    ),
    DeferralReminderV1.event_type: (
        Rule("deferral_reminder", "resident", deferral_reminder_context),
    ),
    # A provisional due date counted again once its year's holiday arrangement was loaded: the resident hears
    # of it only when the date she was told moved.
    ItemDeadlineRevisedV1.event_type: (
        Rule("supplement_due_revised", "resident", supplement_due_revised_context, when=supplement_due_moved),
    ),
    DeferralDueDateRevisedV1.event_type: (
        Rule("deferral_due_revised", "resident", deferral_due_revised_context, when=deferral_due_moved),
    ),
    ItemResolvedV1.event_type: (
        Rule("item_resolved", "resident", item_resolved_context, urgent=door_visit_soon),
    ),
    ItemRejectedV1.event_type: (
        Rule("item_rejected", "resident", item_rejected_context),
    ),
    ItemTerminatedV1.event_type: (
        Rule("item_terminated", "resident", item_terminated_context),
    ),
    CaseCompletedV1.event_type: (
        Rule("case_completed", "resident", case_completed_context, urgent=door_visit_soon),
        Rule("rating_invitation", "resident", rating_invitation_context),
    ),
    # ── escalation: 督办, the ladder, 吹哨 and the 办不成事 window ──
    ItemDeadlineWarningV1.event_type: (
        Rule("deadline_warning", "unit_staff", deadline_warning_context),
    ),
    # The resident hears of an escalation once, from the accompanying item.routed (route_reason escalated),
    # which carries the promised date; the staff of the unit it arrived at hear of it here.
    ItemEscalatedV1.event_type: (
        Rule("staff_item_escalated", "unit_staff", item_escalated_context),
    ),
    ItemSupervisionEscalatedV1.event_type: (
        Rule("supervision_escalated", "unit_staff", supervision_escalated_context,
             unit=lambda event: event.supervising_unit_code),
    ),
    WhistleCalledV1.event_type: (
        Rule("whistle_called", "unit_staff", whistle_called_context, urgent=_urgent),
        Rule("department_whistle_called", "department", whistle_called_context, urgent=_urgent),
    ),
    WhistleEscalatedV1.event_type: (
        Rule("whistle_escalated", "unit_staff", whistle_escalated_context,
             unit=lambda event: event.escalated_to_unit_code),
    ),
    ReportFiledV1.event_type: (
        Rule("report_receipt", "resident", report_receipt_context, when=has_case),
    ),
    ReportAssignedV1.event_type: (
        Rule("report_assigned", "specialist", report_assigned_context),
    ),
    ReportClosedV1.event_type: (
        Rule("report_closed", "resident", report_closed_context),
    ),
    ReportOverdueV1.event_type: (
        Rule("report_overdue", "unit_staff", report_overdue_context, unit=lambda event: event.supervising_unit_code),
    ),
    # ── evaluation: rectifications, appeals and 督办单 (rectification.opened.v1 and .closed.v1 are left to v2, which
    # have the provisional flag and the reason) ──
    RectificationOpenedV2.event_type: (
        Rule("rectification_opened", "unit_staff", rectification_opened_context),
    ),
    # A provisional due time counted again once its year's holiday arrangement was loaded: the owning unit hears of
    # it only when the due time it was told moved.
    RectificationDueDateRevisedV1.event_type: (
        Rule("rectification_due_revised", "unit_staff", rectification_due_revised_context,
             when=rectification_due_moved),
    ),
    RectificationOverdueV1.event_type: (
        Rule("rectification_overdue", "unit_staff", rectification_overdue_context, when=overdue_warning),
        Rule("rectification_escalated", "unit_staff", rectification_overdue_context, when=overdue_escalated,
             unit=lambda event: event.supervising_unit_code),
    ),
    RectificationClosedV2.event_type: (
        Rule("rectification_closed", "resident", rectification_closed_context, when=resident_told_of_closing,
             channels=("sms",)),
    ),
    AppealDecidedV1.event_type: (
        Rule("appeal_decided", "unit_staff", appeal_decided_context),
    ),
    SupervisionOrderIssuedV1.event_type: (
        Rule("supervision_order_issued", "unit_staff", supervision_order_issued_context),
    ),
    SupervisionOrderAnsweredV1.event_type: (
        Rule("supervision_order_answered", "unit_staff", supervision_order_answered_context,
             unit=lambda event: event.issuer_unit_code),
    ),
}

# Report events after ``report.filed`` do not name the case; the service remembers it from report.filed.
REPORT_CASE_FROM_FILING = frozenset({ReportClosedV1.event_type})


def template_keys(rules: Mapping[str, tuple[Rule, ...]] = RULES) -> set[tuple[str, str]]:
    """Every (kind, channel) the table can produce: each needs a template."""
    return {(rule.kind, channel) for event_rules in rules.values() for rule in event_rules
            for channel in rule_channels(rule)}


def sample_renderings(events: Iterable[EventPayload], names: Names,
                      rules: Mapping[str, tuple[Rule, ...]] = RULES) -> list[tuple[str, str, dict]]:
    """(kind, channel, context) for every rule each sample event meets, its condition aside: what the
    start-up check renders every template with."""
    return [(rule.kind, channel, rule.context(event, names))
            for event in events for rule in rules.get(event.event_type, ())
            for channel in rule_channels(rule)]


def event_types_without_samples(events: Iterable[EventPayload],
                                rules: Mapping[str, tuple[Rule, ...]] = RULES) -> set[str]:
    return set(rules) - {event.event_type for event in events}


# ── Recipients ──────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class WebhookSubscription:
    """A department system that takes its messages as HTTP POSTs signed to the Standard Webhooks spec instead of
    from the bus. ``secrets``: its ``whsec_…`` signing secrets, the current one first; during a rotation every
    delivery is signed with each, so the receiver may switch to the new one whenever it is ready."""

    name: str
    url: str
    secrets: tuple[str, ...] = field(repr=False)
    department: str | None = None   # only items of this department; None: every department
    scope: str | None = None        # only items at this unit or below it; None: everywhere
    kinds: tuple[str, ...] = ()     # only these message kinds; empty: every department kind

    def wants(self, kind: str, event: EventPayload, within: Callable[[str, str], bool]) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        if self.department is not None and getattr(event, "department_code", None) != self.department:
            return False
        if self.scope is not None:
            unit = getattr(event, "unit_code", None) or getattr(event, "community_code", None)
            return unit is not None and within(unit, self.scope)
        return True


@dataclass(frozen=True)
class Recipient:
    key: str                        # unique per person or system: resident:<case>, unit:<unit>:<dept>,
    audience: Audience              # webhook:<name>, specialist:<account>
    unit_code: str | None = None
    department_code: str | None = None
    case_id: str | None = None      # a resident's case (the one intake is asked about)


def recipients_for(rule: Rule, event: EventPayload, *, webhooks: Iterable[WebhookSubscription],
                   within: Callable[[str, str], bool], case_id: str | None = None) -> list[Recipient]:
    """``case_id``: the resident's case when the event itself does not name it (a report's, remembered from
    its filing); no case, no resident message."""
    if rule.audience == "resident":
        case = getattr(event, "case_id", None) or case_id
        return [Recipient(f"resident:{case}", "resident", case_id=case)] if case else []
    if rule.audience == "unit_staff":
        unit = rule.unit(event) if rule.unit else event.unit_code
        department = getattr(event, "department_code", None)
        return [Recipient(f"unit:{unit}:{department}", "unit_staff", unit_code=unit, department_code=department)]
    if rule.audience == "specialist":
        unit = rule.unit(event) if rule.unit else event.unit_code
        return [Recipient(f"specialist:{event.specialist}", "specialist", unit_code=unit)]
    if rule.audience == "department":
        return [Recipient(f"webhook:{hook.name}", "department", department_code=getattr(event, "department_code", None))
                for hook in webhooks if hook.wants(rule.kind, event, within)]
    raise ValueError(f"no recipients defined for audience {rule.audience!r}")


# ── Quiet hours ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class QuietHours:
    """A nightly window in local time (22:00–08:00 Asia/Shanghai by default) when residents get no SMS."""

    start: time = time(22, 0)
    end: time = time(8, 0)
    tz: tzinfo = SHANGHAI

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-08:00"``; ``"off"`` (or an empty window) disables quiet hours."""
        text = text.strip()
        if text.lower() in ("off", "none", ""):
            return cls(time(0), time(0))
        match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
        if not match:
            raise ValueError(f"quiet hours {text!r}: write them as HH:MM-HH:MM (e.g. 22:00-08:00) or 'off'")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            return cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f"quiet hours {text!r}: not a time of day") from None

    @property
    def enabled(self) -> bool:
        return self.start != self.end

    def contains(self, moment: datetime) -> bool:
        if not self.enabled:
            return False
        local = moment.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release(self, moment: datetime) -> datetime:
        """``moment`` itself outside the window; inside it, the window's end (the next morning)."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.tz)
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC)


def quiet_hours_apply(channel: str, audience: str) -> bool:
    """Only residents' phones are kept quiet: email waits in an inbox anyway, staff read their own queue."""
    return channel == "sms" and audience == "resident"


def schedule(moment: datetime, *, channel: str, audience: str, urgent: bool,
             quiet_hours: QuietHours) -> tuple[datetime, str | None]:
    """When a message may go out, and why it waits (or None)."""
    if urgent or not quiet_hours_apply(channel, audience) or not quiet_hours.contains(moment):
        return moment, None
    return quiet_hours.release(moment), "quiet_hours"


# ── Planning: an event in, the messages it causes out ───────────────────────────────────────────────


@dataclass(frozen=True)
class PlannedMessage:
    kind: str
    recipient: Recipient
    channel: str
    context: dict
    urgent: bool
    not_before: datetime
    hold_reason: str | None


def plan(event_type: str, event: EventPayload, *, now: datetime, names: Names,
         webhooks: Iterable[WebhookSubscription], within: Callable[[str, str], bool],
         quiet_hours: QuietHours, rules: Mapping[str, tuple[Rule, ...]] = RULES,
         case_id: str | None = None) -> list[PlannedMessage]:
    """The messages an event causes. ``case_id`` names the resident's case for an event that does not carry
    it (a report's closing: the case remembered from its filing)."""
    planned = []
    for rule in rules.get(event_type, ()):
        if not rule.when(event):
            continue
        context = rule.context(event, names)
        urgent = rule.urgent(event, now)
        for recipient in recipients_for(rule, event, webhooks=webhooks, within=within, case_id=case_id):
            for channel in reachable(rule_channels(rule), recipient, event):
                not_before, hold_reason = schedule(now, channel=channel, audience=recipient.audience,
                                                   urgent=urgent, quiet_hours=quiet_hours)
                planned.append(PlannedMessage(rule.kind, recipient, channel, context, urgent, not_before,
                                              hold_reason))
    return planned


def reachable(channels: tuple[str, ...], recipient: Recipient, event: EventPayload) -> tuple[str, ...]:
    """A resident's channels that the event says intake holds an address for (``resident_channels``); all of
    them when it does not say (older events, and events other than case.submitted and the first item.routed):
    the send then finds out, and records a missing e-mail address as skipped."""
    said = getattr(event, "resident_channels", None)
    if recipient.audience != "resident" or said is None:
        return channels
    return tuple(channel for channel in channels if channel in said)


MAX_CAUSE_CHARS = 255


def cause_of(event_key: str, kind: str) -> str:
    """The cause in the delivery log's unique key (recipient, channel, cause): the event and the message kind.

    An event key too long for the column (ids are chosen by the publisher) is replaced by its SHA-256,
    which keeps the key unique and the same on every redelivery."""
    cause = f"{event_key}/{kind}"
    if len(cause) <= MAX_CAUSE_CHARS:
        return cause
    return f"sha256:{hashlib.sha256(event_key.encode()).hexdigest()}/{kind}"


# ── Sending: outcomes, retries, rate limits ─────────────────────────────────────────────────────────


class Outcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"       # worth another try later: timeout, connection refused, 5xx, 429
    PERMANENT = "permanent"       # never going to work: 4xx, invalid number, refused address
    SKIPPED = "skipped"           # nothing to send to (the resident gave no email address)


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    provider_ref: str | None = None


def classify_http_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (408, 425, 429) or status >= 500:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


# Aliyun SMS (dysmsapi SendSms): what each answer code means for the delivery. Retried: limits and faults that pass
# (the number's per-minute/hour flow control, a nonce the provider saw already - the retry signs with a new one -,
# throttling, the provider's own errors). Given up: the message or the number will not become valid by waiting,
# and account problems an operator has to fix (balance, key, sign name or template approval); retrying those
# for hours would only hide them: the delivery log and the warning line name the code at once.
ALIYUN_SMS_RETRY_CODES = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL", "SignatureNonceUsed", "Throttling", "Throttling.User", "Throttling.Api",
    "Throttling.Concurrency", "ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR",
    "SDK.ServerUnreachable", "isv.SYSTEM_ERROR",
})
ALIYUN_SMS_GIVE_UP_CODES = frozenset({
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT", "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.TEMPLATE_PARAMS_ILLEGAL", "isv.INVALID_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.PARAM_LENGTH_LIMIT",
    "isv.PARAM_NOT_SUPPORT_URL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
    "isv.OUT_OF_SERVICE", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL", "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGN_ILLEGAL", "isv.EXTEND_CODE_ERROR", "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
    "isv.DENY_IP_RANGE", "isv.SMS_CONTENT_ILLEGAL", "isv.PRODUCT_UN_SUBSCRIPT", "isv.PRODUCT_UNSUBSCRIBE",
    "isv.RAM_PERMISSION_DENY", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch",
    "InvalidTimeStamp.Expired", "MissingParameter", "InvalidParameter", "Forbidden.RAM",
})


def classify_aliyun_sms(status: int, code: str | None) -> Outcome:
    """An Aliyun ``SendSms`` answer: ``OK`` is sent; a listed code is retried or given up as listed above; an
    unknown code goes by the HTTP status (5xx, 408, 425, 429 retried; any other, a 200 included, given up, so a
    new code is seen in the delivery log rather than retried for hours)."""
    if code == "OK" and 200 <= status < 300:
        return Outcome.SENT
    if code in ALIYUN_SMS_RETRY_CODES:
        return Outcome.TRANSIENT
    if code in ALIYUN_SMS_GIVE_UP_CODES:
        return Outcome.PERMANENT
    outcome = classify_http_status(status)
    return Outcome.PERMANENT if outcome is Outcome.SENT else outcome


class Random(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: Random) -> timedelta:
        """Exponential backoff with "equal jitter": half the step fixed, half random, never over the cap.

        The fixed half keeps retries apart; the random half keeps a crowd of messages that failed
        together (a gateway outage) from coming back together.
        """
        step = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        return timedelta(seconds=step / 2 + rng.uniform(0, step / 2))


@dataclass(frozen=True)
class NextState:
    status: Literal["pending", "sent", "failed", "skipped"]
    next_attempt_at: datetime | None
    hold_reason: str | None = None
    error: str | None = None


def after_attempt(result: SendResult, *, attempt: int, now: datetime, policy: RetryPolicy, rng: Random,
                  channel: str, audience: str, urgent: bool, quiet_hours: QuietHours) -> NextState:
    """Where a delivery stands after its ``attempt``-th try."""
    if result.outcome is Outcome.SENT:
        return NextState("sent", None)
    if result.outcome is Outcome.SKIPPED:
        return NextState("skipped", None, error=result.detail)
    if result.outcome is Outcome.PERMANENT:
        return NextState("failed", None, error=result.detail)
    if attempt >= policy.max_attempts:
        return NextState("failed", None, error=f"gave up after {attempt} attempts: {result.detail}")
    retry_at, hold_reason = schedule(now + policy.delay(attempt, rng), channel=channel, audience=audience,
                                     urgent=urgent, quiet_hours=quiet_hours)
    return NextState("pending", retry_at, hold_reason=hold_reason, error=result.detail)


class TokenBucket:
    """At most ``rate`` messages a second on average, ``burst`` at once. Times are seconds (any origin)."""

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0):
        if rate <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:  # a clock that stepped back adds nothing
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def available(self, now: float) -> int:
        self._refill(now)
        return math.floor(self._tokens + 1e-9)

    def take(self, count: int, now: float) -> int:
        """Take up to ``count`` tokens; returns how many were granted."""
        granted = min(count, self.available(now))
        self._tokens -= granted
        return granted


class RateLimiter:
    """One token bucket per provider (channel); a channel without a configured rate is not limited."""

    def __init__(self, rates: Mapping[str, float], now: float = 0.0):
        self._buckets = {channel: TokenBucket(rate, now=now) for channel, rate in rates.items()}

    def take(self, channel: str, wanted: int, now: float) -> int:
        bucket = self._buckets.get(channel)
        return wanted if bucket is None else bucket.take(wanted, now)

    def give_back(self, channel: str, count: int) -> None:
        """Return tokens taken for rows that turned out not to be there."""
        bucket = self._buckets.get(channel)
        if bucket is not None and count > 0:
            bucket._tokens = min(bucket.burst, bucket._tokens + count)


def parse_rate_limits(text: str) -> dict[str, float]:
    """``"sms=20,email=10,webhook=50"`` (messages per second, per provider)."""
    rates: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        channel, _, value = part.partition("=")
        channel = channel.strip()
        if channel not in CHANNELS or channel in LOCAL_CHANNELS:
            raise ValueError(f"rate limit {part!r}: the channel must be one of sms, email, webhook")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"rate limit {part!r}: write channel=messages-per-second, e.g. sms=20") from None
        if not rate > 0:
            raise ValueError(f"rate limit {part!r}: must be positive")
        rates[channel] = rate
    return rates


# ── Addresses and what may be written down about them ───────────────────────────────────────────────

_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\"]+")


def normalise_mobile(number: str) -> str | None:
    """A mainland mobile number as 11 digits, or None if it is not one (the message fails at once)."""
    digits = re.sub(r"[\s\-()]", "", number or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _MAINLAND_MOBILE.fullmatch(digits) else None


def plausible_email(address: str) -> bool:
    return bool(address) and _EMAIL.fullmatch(address.strip()) is not None


def mask_email(address: str) -> str:
    local, _, domain = address.strip().partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


def address_hint(channel: str, address: str) -> str:
    """What the delivery log keeps of an address: enough to recognise it, not enough to use it."""
    if channel == "sms":
        return mask_phone(address)
    if channel == "email":
        return mask_email(address)
    return safe_url(address)[:128]


def safe_url(url: str) -> str:
    """A URL without the credentials or query string it may carry, for logs and the delivery log."""
    parts = urlsplit(url)
    if not parts.hostname:
        return parts.scheme + "://…" if parts.scheme else "…"
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, limit: int = 300) -> str:
    """A provider's error text, safe to store and log: phone, ID numbers and email addresses removed."""
    return _EMAIL.sub("[email redacted]", redact_text(str(text)))[:limit]
