"""The values the event catalogue's examples are built from: one story, told by every event type.

A case of 流动人口一件事 taken in at 馨合家园社区 (迈皋桥街道, 栖霞区, 南京); its residence-permit item is handled
by 公安 at the street. Ids are fixed made-up uuids, accounts are the development accounts' kind of name, and the
only name is masked (``刘**``): nothing here is personal data.

``FIELD_EXAMPLES`` gives a value by field name, for every type with that field; ``TYPE_EXAMPLES`` gives the
values of one type where the shared value does not fit it (an item's status after the event, above all). A field
named in neither takes its first allowed value (a ``Literal``), ``False``, the example time or date, or its
default; a required string in neither is a gap in these tables, and building the catalogue says which.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

EXAMPLE_TIME = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
EXAMPLE_DATE = date(2026, 12, 8)

CASE_ID = "00000000-0000-4000-8000-000000000001"
ITEM_ID = "00000000-0000-4000-8000-000000000002"
CALL_ID = "00000000-0000-4000-8000-000000000004"
REPORT_ID = "00000000-0000-4000-8000-000000000005"
RECTIFICATION_ID = "00000000-0000-4000-8000-000000000006"
RATING_ID = "00000000-0000-4000-8000-000000000007"
APPEAL_ID = "00000000-0000-4000-8000-000000000009"
ORDER_ID = "00000000-0000-4000-8000-00000000000a"
COMMUNITY = "320113003021"   # 馨合家园社区
STREET = "320113003000"      # 迈皋桥街道
DISTRICT = "320113000000"    # 栖霞区
STAFF = "staff-maigaoqiao-street"

PICKUP = {"method": "pickup", "place": "迈皋桥街道为民服务中心 3号窗口"}

# By field name, in the JSON form of the event (what ``model_dump(mode="json")`` gives).
FIELD_EXAMPLES: dict[str, object] = {
    "case_id": CASE_ID,
    "item_id": ITEM_ID,
    "call_id": CALL_ID,
    "report_id": REPORT_ID,
    "rectification_id": RECTIFICATION_ID,
    "rating_id": RATING_ID,
    "appeal_id": APPEAL_ID,
    "order_id": ORDER_ID,
    "origin_id": RATING_ID,
    "subject_id": ITEM_ID,
    "case_number": "SJ20261201-000000000000",
    "report_number": "BCS20261201-00000000",
    "community_code": COMMUNITY,
    "unit_code": STREET,
    "district_code": DISTRICT,
    "level": "street",
    "department_code": "police",
    "matter_code": "residence-permit",
    "matter_codes": ["residence-permit"],
    "material_code": "landlord-id-copy",
    "material_codes": ["landlord-id-copy"],
    "catalogue_version": "2026.12.1",
    "bundle_code": "migrant-bundle",
    "applicant_masked_name": "刘**",
    "deferred_materials": [{"matter_code": "residence-permit", "material_code": "landlord-id-copy",
                            "due_date": "2026-12-08", "due_date_provisional": False}],
    "actor": STAFF,
    "owner": STAFF,
    "assigned_by": STAFF,
    "classified_by": STAFF,
    "specialist": "specialist-maigaoqiao",
    "closed_by": "specialist-maigaoqiao",
    "visited_by": "specialist-maigaoqiao",
    "granted_by": "specialist-maigaoqiao",
    "acknowledged_by": "dept-qixia-housing",
    "caller_unit_code": STREET,
    "from_unit_code": COMMUNITY,
    "escalated_to_unit_code": DISTRICT,
    "issuer_unit_code": DISTRICT,
    "deciding_unit_code": DISTRICT,
    "supervising_unit_code": DISTRICT,
    "legal_deadline": "2026-12-22T09:30:00Z",
    "promised_deadline": "2026-12-15T09:30:00Z",
    "previous_legal_deadline": "2026-12-23T09:30:00Z",
    "previous_promised_deadline": "2026-12-16T09:30:00Z",
    "deadline": "2026-12-08T09:30:00Z",
    "previous_deadline": "2026-12-09T09:30:00Z",
    "escalate_at": "2026-12-10T09:30:00Z",
    "previous_escalate_at": "2026-12-11T09:30:00Z",
    "ack_due_at": "2026-12-01T02:30:00Z",
    "due_at": "2026-12-08T09:30:00Z",
    "due_date": "2026-12-08",
    "previous_due_date": "2026-12-09",
    "share_used": 0.8,
    "return_count": 1,
    "reopen_count": 1,
    "cause_code": "missing-material",
    "what": "房东房产证复印件 1 份",
    "outcomes": [{"item_id": ITEM_ID, "matter_code": "residence-permit", "status": "resolved"}],
    "delivery": PICKUP,
}

# By event name (the type without prefix and version): where the shared value does not fit this type.
TYPE_EXAMPLES: dict[str, dict[str, object]] = {
    "item.routed": {"status": "queued"},
    "item.claimed": {"status": "claimed"},
    "item.accepted": {"status": "accepted"},
    "item.supplement-requested": {"status": "supplement_requested", "clock_paused": True},
    "item.supplement-supplied": {"status": "accepted"},
    "item.resolved": {"status": "resolved", "result": "居住证 320113-2026-000123"},
    "item.rejected": {"status": "rejected", "reason_code": "not-eligible"},
    "item.returned": {"status": "queued", "reason_code": "wrong-level"},
    "item.released": {"status": "queued"},
    "item.terminated": {"status": "terminated", "reason_code": "deferral_expired"},
    "item.deadline-revised": {"status": "accepted"},
    "item.custody-recorded": {"status": "accepted", "step": "handed_to_window"},
    "item.escalated": {"status": "queued", "from_level": "community", "reason": "internal_loop_expired"},
    "item.deadline-warning": {"status": "accepted"},
    "item.supervision-escalated": {"status": "accepted", "supervising_level": "district"},
    "escalation.ordered": {"from_level": "community"},
    "whistle.called": {"department_code": "housing", "caller_level": "street"},
    "whistle.acknowledged": {"department_code": "housing", "caller_level": "street"},
    "whistle.escalated": {"department_code": "housing", "caller_level": "street", "escalated_to_level": "district",
                          "item_ordered_up": True},
    "report.filed": {"channel": "kiosk"},
    "report.classified": {"report_class": "complex", "department_code": "housing",
                          "opinion_due_at": "2026-12-08T09:30:00Z"},
    "report.contact-recorded": {"department_code": "housing"},
    "report.closed": {"outcome": "solved"},
    "report.return-visited": {"agrees_solved": True},
    "rating.submitted": {"rating_level": "dissatisfied", "reason_codes": ["slow"]},
    "rectification.closed": {"result": "explained", "reason_code": "policy_explained",
                             "callback_outcome": "reached_satisfied"},
    "rectification.overdue": {"stage": "warning"},
    "appeal.decided": {"grounds": "wrong_case", "upheld": False},
    "supervision-order.issued": {"subject_type": "item"},
}
