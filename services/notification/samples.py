"""Sample events, one or more per event type in the rules, covering each branch the templates take.

At start the service renders every template with the contexts these samples produce through the real
rules, so a missing template or variable stops the service there and then, not when a resident's
message is due. A new event type in ``domain.RULES`` needs its samples here (a unit test checks).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from shared.events import (
    AppealDecidedV1,
    CaseCompletedV1,
    CaseSubmittedV1,
    DeferralDueDateRevisedV1,
    DeferralReminderV1,
    DeferredMaterial,
    Delivery,
    EventPayload,
    ItemDeadlineRevisedV1,
    ItemDeadlineWarningV1,
    ItemEscalatedV1,
    ItemOutcome,
    ItemRejectedV1,
    ItemReleasedV1,
    ItemResolvedV1,
    ItemRoutedV1,
    ItemSupervisionEscalatedV1,
    ItemSupplementRequestedV1,
    ItemTerminatedV1,
    RectificationClosedV2,
    RectificationDueDateRevisedV1,
    RectificationOpenedV2,
    RectificationOverdueV1,
    ReportAssignedV1,
    ReportClosedV1,
    ReportFiledV1,
    ReportOverdueV1,
    SupervisionOrderAnsweredV1,
    SupervisionOrderIssuedV1,
    WhistleCalledV1,
    WhistleEscalatedV1,
)

SAMPLE_TIME = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SAMPLE_CASE_ID = "00000000-0000-4000-8000-000000000001"
SAMPLE_ITEM_ID = "00000000-0000-4000-8000-000000000002"
SAMPLE_CASE_NUMBER = "SJ20261201-SAMPLE01"
SAMPLE_COMMUNITY = "320113003021"
SAMPLE_STREET = "320113003000"
SAMPLE_DISTRICT = "320113000000"
SAMPLE_CALL_ID = "00000000-0000-4000-8000-000000000004"
SAMPLE_REPORT_ID = "00000000-0000-4000-8000-000000000005"
SAMPLE_REPORT_NUMBER = "BC20261201-SAMPLE01"

_ITEM = dict(item_id=SAMPLE_ITEM_ID, case_id=SAMPLE_CASE_ID, case_number=SAMPLE_CASE_NUMBER,
             matter_code="residence-permit", department_code="police", level="street", unit_code=SAMPLE_STREET,
             district_code=SAMPLE_DISTRICT, community_code=SAMPLE_COMMUNITY, occurred_at=SAMPLE_TIME)
_DEADLINES = dict(legal_deadline=datetime(2026, 12, 22, 9, 30, tzinfo=UTC),
                  promised_deadline=datetime(2026, 12, 15, 9, 30, tzinfo=UTC), deadline_provisional=False)
_PICKUP = Delivery(method="pickup", place="迈皋桥街道为民服务中心 3号窗口")
_DOOR = Delivery(method="door", agent_id="sw-0042", scheduled_for=datetime(2026, 12, 2, 1, 30, tzinfo=UTC))
# A call to the police desk of 迈皋桥街道 for an item escalated there from 馨合家园社区.
_CALL = dict(call_id=SAMPLE_CALL_ID, item_id=SAMPLE_ITEM_ID, case_id=SAMPLE_CASE_ID, matter_code="residence-permit",
             department_code="police", level="street", unit_code=SAMPLE_STREET, district_code=SAMPLE_DISTRICT,
             caller_level="street", caller_unit_code=SAMPLE_STREET, occurred_at=SAMPLE_TIME)
_ACK_DUE = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
_REPORT = dict(report_id=SAMPLE_REPORT_ID, report_number=SAMPLE_REPORT_NUMBER, district_code=SAMPLE_DISTRICT,
               unit_code=SAMPLE_STREET, occurred_at=SAMPLE_TIME)


def escalation_samples() -> list[EventPayload]:
    """督办, the ladder, 吹哨 and the 办不成事 window (published by the escalation service and routing)."""
    return [
        ItemDeadlineWarningV1(**_ITEM, status="accepted", share_used=0.8,
                              promised_deadline=_DEADLINES["promised_deadline"], raised_at=SAMPLE_TIME),
        ItemEscalatedV1(**{**_ITEM, "unit_code": SAMPLE_STREET}, status="queued", from_level="community",
                        from_unit_code=SAMPLE_COMMUNITY, reason="internal_loop_expired"),
        ItemRoutedV1(**_ITEM, **_DEADLINES, status="queued", route_reason="escalated", catalogue_version="sample"),
        ItemSupervisionEscalatedV1(**_ITEM, status="accepted", stage="promised_breach",
                                   deadline=_DEADLINES["promised_deadline"], supervising_level="district",
                                   supervising_unit_code=SAMPLE_DISTRICT, raised_at=SAMPLE_TIME),
        ItemSupervisionEscalatedV1(**_ITEM, status="accepted", stage="legal_breach",
                                   deadline=_DEADLINES["legal_deadline"], supervising_level="district",
                                   supervising_unit_code=SAMPLE_DISTRICT, raised_at=SAMPLE_TIME),
        WhistleCalledV1(**_CALL, ack_due_at=_ACK_DUE),
        WhistleEscalatedV1(**_CALL, ack_due_at=_ACK_DUE, escalated_to_level="district",
                           escalated_to_unit_code=SAMPLE_DISTRICT, item_ordered_up=True),
        WhistleEscalatedV1(**{**_CALL, "level": "district", "unit_code": SAMPLE_DISTRICT, "caller_level": "district",
                              "caller_unit_code": SAMPLE_DISTRICT}, ack_due_at=_ACK_DUE,
                           escalated_to_level="district", escalated_to_unit_code=SAMPLE_DISTRICT,
                           item_ordered_up=False),
        ReportFiledV1(**_REPORT, channel="kiosk", community_code=SAMPLE_COMMUNITY, case_id=SAMPLE_CASE_ID,
                      item_id=SAMPLE_ITEM_ID, matter_code="residence-permit", department_code="police",
                      level="street", owner="staff-sample"),
        ReportFiledV1(**_REPORT, channel="staff", owner="staff-sample"),
        ReportAssignedV1(**_REPORT, specialist="specialist-maigaoqiao", assigned_by="staff-sample"),
        *(ReportClosedV1(**_REPORT, outcome=outcome, closed_by="specialist-maigaoqiao")
          for outcome in ("solved", "explained", "referred", "deferral_granted", "not_solvable")),
        ReportOverdueV1(**_REPORT, limit="opinion", due_at=datetime(2026, 12, 8, 9, 30, tzinfo=UTC),
                        supervising_unit_code=SAMPLE_DISTRICT),
        ReportOverdueV1(**_REPORT, limit="time_limit", due_at=datetime(2026, 12, 8, 9, 30, tzinfo=UTC),
                        supervising_unit_code=SAMPLE_DISTRICT),
    ]


SAMPLE_RECTIFICATION_ID = "00000000-0000-4000-8000-000000000006"
SAMPLE_RATING_ID = "00000000-0000-4000-8000-000000000007"
SAMPLE_FINDING_ID = "00000000-0000-4000-8000-000000000008"
SAMPLE_APPEAL_ID = "00000000-0000-4000-8000-000000000009"
SAMPLE_ORDER_ID = "00000000-0000-4000-8000-00000000000a"
SAMPLE_COMMUNITY_DUE = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
# A rectification opened on 28 December 2026, due in 2027 before its arrangement was loaded, and revised after.
SAMPLE_PROVISIONAL_DUE = datetime(2027, 1, 5, 9, 30, tzinfo=UTC)
SAMPLE_REVISED_DUE = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
_RECTIFICATION_DUE = dict(deadline=SAMPLE_COMMUNITY_DUE, deadline_provisional=False,
                          escalate_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC), escalate_at_provisional=False)
# An item of 馨合家园社区 rated 不满意; its rectification, appeal and a 督办单 of 迈皋桥街道 about it.
_RATED = dict(item_id=SAMPLE_ITEM_ID, case_id=SAMPLE_CASE_ID, matter_code="residence-permit", department_code="police",
              level="community", unit_code=SAMPLE_COMMUNITY, district_code=SAMPLE_DISTRICT)
_RECTIFICATION = dict(_RATED, rectification_id=SAMPLE_RECTIFICATION_ID, origin="rating", origin_id=SAMPLE_RATING_ID)
_FOUND = dict(item_id=None, case_id=None, matter_code=None, department_code="any", level="community",
              unit_code=SAMPLE_COMMUNITY, district_code=SAMPLE_DISTRICT, rectification_id=SAMPLE_RECTIFICATION_ID,
              origin="finding", origin_id=SAMPLE_FINDING_ID)
_ORDER = dict(_RATED, order_id=SAMPLE_ORDER_ID, subject_type="item", subject_id=SAMPLE_ITEM_ID,
              issuer_unit_code=SAMPLE_STREET, due_at=SAMPLE_COMMUNITY_DUE)


def evaluation_samples() -> list[EventPayload]:
    """Rectifications, appeals and 督办单 (published by the evaluation service)."""
    closed = dict(_RECTIFICATION, callback_outcome="reached_unsatisfied", closed_at=SAMPLE_TIME,
                  case_number=SAMPLE_CASE_NUMBER, community_code=SAMPLE_COMMUNITY)
    return [
        RectificationOpenedV2(**_RECTIFICATION, **_RECTIFICATION_DUE, opened_at=SAMPLE_TIME),
        RectificationOpenedV2(**_FOUND, **_RECTIFICATION_DUE, opened_at=SAMPLE_TIME),
        RectificationOpenedV2(**_RECTIFICATION, **{**_RECTIFICATION_DUE, "deadline": SAMPLE_PROVISIONAL_DUE,
                                                   "deadline_provisional": True, "escalate_at_provisional": True},
                              opened_at=SAMPLE_TIME),
        RectificationDueDateRevisedV1(**_RECTIFICATION, state="open", deadline=SAMPLE_REVISED_DUE,
                                      deadline_provisional=False, previous_deadline=SAMPLE_PROVISIONAL_DUE,
                                      escalate_at=datetime(2027, 1, 6, 9, 30, tzinfo=UTC),
                                      escalate_at_provisional=False,
                                      previous_escalate_at=datetime(2027, 1, 7, 9, 30, tzinfo=UTC),
                                      revised_at=SAMPLE_TIME),
        RectificationDueDateRevisedV1(**_RECTIFICATION, state="warned", deadline=SAMPLE_REVISED_DUE,
                                      deadline_provisional=True, previous_deadline=SAMPLE_PROVISIONAL_DUE,
                                      escalate_at=datetime(2027, 1, 6, 9, 30, tzinfo=UTC),
                                      escalate_at_provisional=True,
                                      previous_escalate_at=datetime(2027, 1, 7, 9, 30, tzinfo=UTC),
                                      revised_at=SAMPLE_TIME),
        RectificationOverdueV1(**_RECTIFICATION, stage="warning", deadline=SAMPLE_COMMUNITY_DUE, raised_at=SAMPLE_TIME),
        RectificationOverdueV1(**_RECTIFICATION, stage="escalated", deadline=SAMPLE_COMMUNITY_DUE,
                               supervising_unit_code=SAMPLE_STREET, raised_at=SAMPLE_TIME),
        RectificationClosedV2(**closed, result="rectified"),
        RectificationClosedV2(**closed, result="explained", reason_code="policy_explained"),
        RectificationClosedV2(**closed, result="cannot_rectify", reason_code="beyond_authority"),
        RectificationClosedV2(**closed, result="cannot_rectify"),  # no coded reason given
        AppealDecidedV1(**_RATED, appeal_id=SAMPLE_APPEAL_ID, rating_id=SAMPLE_RATING_ID, grounds="malicious",
                        upheld=True, deciding_unit_code=SAMPLE_STREET, decided_at=SAMPLE_TIME),
        AppealDecidedV1(**_RATED, appeal_id=SAMPLE_APPEAL_ID, rating_id=SAMPLE_RATING_ID, grounds="wrong_case",
                        upheld=False, deciding_unit_code=SAMPLE_STREET, decided_at=SAMPLE_TIME),
        SupervisionOrderIssuedV1(**_ORDER, issued_at=SAMPLE_TIME),
        SupervisionOrderIssuedV1(**{**_ORDER, "item_id": None, "case_id": None, "matter_code": None,
                                    "department_code": "any", "subject_type": "rectification",
                                    "subject_id": SAMPLE_RECTIFICATION_ID}, issued_at=SAMPLE_TIME),
        SupervisionOrderAnsweredV1(**_ORDER, answered_at=SAMPLE_TIME, late=False),
        SupervisionOrderAnsweredV1(**_ORDER, answered_at=SAMPLE_TIME, late=True),
    ]


def sample_events() -> list[EventPayload]:
    submitted = dict(case_id=SAMPLE_CASE_ID, case_number=SAMPLE_CASE_NUMBER, community_code=SAMPLE_COMMUNITY,
                     catalogue_version="sample", bundle_code="migrant-bundle",
                     matter_codes=("residence-permit", "employment-registration"), channel="kiosk",
                     applicant_masked_name="刘**", submitted_at=SAMPLE_TIME)
    outcomes = (ItemOutcome(item_id=SAMPLE_ITEM_ID, matter_code="residence-permit", status="resolved"),
                ItemOutcome(item_id="00000000-0000-4000-8000-000000000003", matter_code="employment-registration",
                            status="rejected"))
    completed = dict(case_id=SAMPLE_CASE_ID, case_number=SAMPLE_CASE_NUMBER, community_code=SAMPLE_COMMUNITY,
                     outcomes=outcomes, completed_at=SAMPLE_TIME)
    return [
        CaseSubmittedV1(**submitted),
        CaseSubmittedV1(**submitted, deferred_materials=(
            DeferredMaterial(matter_code="residence-permit", material_code="landlord-id-copy",
                             due_date=date(2026, 12, 8)),)),
        CaseSubmittedV1(**submitted, deferred_materials=(
            DeferredMaterial(matter_code="residence-permit", material_code="landlord-id-copy",
                             due_date=date(2027, 1, 4), due_date_provisional=True),)),
        ItemRoutedV1(**_ITEM, **_DEADLINES, status="queued", catalogue_version="sample"),
        ItemRoutedV1(**_ITEM, **_DEADLINES, status="waiting", waiting_for=("residence-permit",),
                     catalogue_version="sample"),
        ItemRoutedV1(**_ITEM, **_DEADLINES, status="queued", route_reason="returned", catalogue_version="sample"),
        ItemReleasedV1(**_ITEM, **_DEADLINES, status="queued"),
        ItemSupplementRequestedV1(**_ITEM, status="supplement_requested", actor="staff-sample",
                                  material_codes=("landlord-id-copy",), due_date=date(2026, 12, 8),
                                  clock_paused=True),
        ItemSupplementRequestedV1(**_ITEM, status="supplement_requested", actor="staff-sample",
                                  material_codes=("landlord-id-copy", "job-or-school-proof"),
                                  due_date=date(2026, 12, 8), clock_paused=False),
        ItemSupplementRequestedV1(**_ITEM, status="supplement_requested", actor="staff-sample",
                                  material_codes=("landlord-id-copy",), due_date=date(2027, 1, 4),
                                  due_date_provisional=True, clock_paused=True),
        DeferralReminderV1(case_id=SAMPLE_CASE_ID, case_number=SAMPLE_CASE_NUMBER, community_code=SAMPLE_COMMUNITY,
                           material_code="landlord-id-copy", matter_codes=("residence-permit",),
                           due_date=date(2026, 12, 8)),
        ItemDeadlineRevisedV1(**_ITEM, status="supplement_requested", legal_deadline=_DEADLINES["legal_deadline"],
                              promised_deadline=_DEADLINES["promised_deadline"], deadline_provisional=False,
                              previous_legal_deadline=_DEADLINES["legal_deadline"],
                              previous_promised_deadline=_DEADLINES["promised_deadline"],
                              supplement_due_date=date(2027, 1, 9), supplement_due_date_provisional=False,
                              previous_supplement_due_date=date(2027, 1, 11), revised_at=SAMPLE_TIME),
        DeferralDueDateRevisedV1(case_id=SAMPLE_CASE_ID, case_number=SAMPLE_CASE_NUMBER,
                                 community_code=SAMPLE_COMMUNITY, material_code="landlord-id-copy",
                                 matter_codes=("residence-permit",), due_date=date(2027, 1, 9),
                                 due_date_provisional=False, previous_due_date=date(2027, 1, 11),
                                 revised_at=SAMPLE_TIME),
        ItemResolvedV1(**_ITEM, status="resolved", actor="staff-sample", result="居住证 320113-2026-000123",
                       delivery=_PICKUP),
        ItemResolvedV1(**_ITEM, status="resolved", actor="staff-sample", result="居住证 320113-2026-000123",
                       delivery=_DOOR),
        ItemRejectedV1(**_ITEM, status="rejected", actor="staff-sample", reason_code="not-eligible"),
        ItemRejectedV1(**_ITEM, status="rejected", actor="staff-sample", reason_code="not-eligible",
                       note="居住时间不满半年"),
        ItemTerminatedV1(**_ITEM, status="terminated", reason_code="deferral_expired"),
        CaseCompletedV1(**completed, delivery=_PICKUP),
        CaseCompletedV1(**completed, delivery=_DOOR),
        CaseCompletedV1(**{**completed, "outcomes": outcomes[1:]}, delivery=None),
        *escalation_samples(),
        *evaluation_samples(),
    ]
