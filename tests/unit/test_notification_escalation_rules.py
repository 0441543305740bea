"""Who is told what about escalation: 督办 warnings and breaches, the ladder, 吹哨 and the 办不成事 window."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.notification import domain, samples
from services.notification.domain import QuietHours, WebhookSubscription
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.events import (
    ItemDeadlineWarningV1,
    ItemEscalatedV1,
    ItemRoutedV1,
    ItemSupervisionEscalatedV1,
    ReportAssignedV1,
    ReportClassifiedV1,
    ReportClosedV1,
    ReportFiledV1,
    ReportOverdueV1,
    ReportReopenedV1,
    WhistleAcknowledgedV1,
    WhistleCalledV1,
    WhistleEscalatedV1,
)
from shared.workdays import SHANGHAI
from tests.support.notification_fakes import sample

CATALOGUE = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
NAMES = domain.CatalogueNames(CATALOGUE)
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
HOOK_KEYS = ("whsec_" + "c2" * 16,)  # planning never signs
POLICE_QIXIA = WebhookSubscription("qixia-police", "http://127.0.0.1:9/hook", HOOK_KEYS, department="police",
                                   scope="320113000000")
NEW_ITEMS_ONLY = WebhookSubscription("new-items", "http://127.0.0.1:9/hook", HOOK_KEYS,
                                     kinds=("department_new_item",))
CASE = samples.SAMPLE_CASE_ID
STREET, DISTRICT = samples.SAMPLE_STREET, samples.SAMPLE_DISTRICT


def planned(payload, now=DAYTIME, webhooks=(POLICE_QIXIA,), case_id=None):
    return domain.plan(payload.event_type, payload, now=now, names=NAMES, webhooks=webhooks,
                       within=CATALOGUE.is_within, quiet_hours=QuietHours(), case_id=case_id)


def summary(messages) -> set[tuple[str, str, str]]:
    return {(message.kind, message.recipient.key, message.channel) for message in messages}


def test_a_deadline_warning_goes_to_the_inbox_of_the_items_unit():
    event = sample(ItemDeadlineWarningV1.event_type)
    assert summary(planned(event)) == {("deadline_warning", f"unit:{STREET}:police", "inbox")}
    [message] = planned(event)
    assert message.context["share_used"] == "80%" and message.context["promised"] == "2026年12月15日 17:30"


def test_an_escalation_is_told_to_the_unit_it_arrived_at_and_the_resident_hears_once_from_the_routing():
    escalated = sample(ItemEscalatedV1.event_type)
    routed = sample(ItemRoutedV1.event_type, 3)
    assert routed.route_reason == "escalated" and routed.status == "queued"
    assert summary(planned(escalated)) == {("staff_item_escalated", f"unit:{STREET}:police", "inbox")}
    assert summary(planned(routed)) == {("item_routed", f"resident:{CASE}", "sms"),
                                        ("item_routed", f"resident:{CASE}", "email"),
                                        ("department_new_item", "webhook:qixia-police", "webhook")}
    both = planned(escalated) + planned(routed)
    assert sorted(m.channel for m in both if m.recipient.audience == "resident") == ["email", "sms"]
    assert [m.kind for m in both if m.recipient.audience == "unit_staff"] == ["staff_item_escalated"]
    [staff] = planned(escalated)
    assert staff.context["from_unit"] == "馨合家园社区" and "内部循环" in staff.context["reason"]


def test_a_returned_item_is_still_a_new_item_for_the_staff():
    returned = sample(ItemRoutedV1.event_type, 2)
    assert ("staff_new_item", f"unit:{STREET}:police", "inbox") in summary(planned(returned))


@pytest.mark.parametrize("index, legal", [(0, False), (1, True)])
def test_a_supervision_breach_goes_to_the_supervising_units_inbox_not_the_items(index, legal):
    event = sample(ItemSupervisionEscalatedV1.event_type, index)
    [message] = planned(event)
    assert (message.kind, message.recipient.key, message.channel) == (
        "supervision_escalated", f"unit:{DISTRICT}:police", "inbox")
    assert message.recipient.unit_code == DISTRICT and message.context["legal"] is legal


def test_a_whistle_call_reaches_the_departments_desk_inbox_and_its_webhook_urgently_even_at_night():
    event = sample(WhistleCalledV1.event_type)
    messages = planned(event, now=NIGHT, webhooks=(POLICE_QIXIA, NEW_ITEMS_ONLY))
    assert summary(messages) == {("whistle_called", f"unit:{STREET}:police", "inbox"),
                                 ("department_whistle_called", "webhook:qixia-police", "webhook")}
    assert all(m.urgent and m.hold_reason is None and m.not_before == NIGHT for m in messages)
    assert messages[0].context["ack_due"] == "2026年12月1日 10:30"
    # Quiet hours hold only residents' SMS; an urgent message would not be held even there.
    assert domain.schedule(NIGHT, channel="sms", audience="department", urgent=True,
                           quiet_hours=QuietHours()) == (NIGHT, None)


def test_a_whistle_call_to_another_department_or_district_reaches_no_police_webhook():
    housing = sample(WhistleCalledV1.event_type, department_code="housing")
    assert [m.kind for m in planned(housing)] == ["whistle_called"]
    xuanwu = sample(WhistleCalledV1.event_type, unit_code="320102002000", district_code="320102000000",
                    caller_unit_code="320102002000")
    assert [m.kind for m in planned(xuanwu)] == ["whistle_called"]


@pytest.mark.parametrize("index", [0, 1])
def test_an_unacknowledged_call_goes_to_the_unit_it_was_escalated_to(index):
    event = sample(WhistleEscalatedV1.event_type, index)
    assert summary(planned(event)) == {("whistle_escalated", f"unit:{DISTRICT}:police", "inbox")}


def test_a_report_filed_about_a_case_sends_the_resident_a_receipt_and_one_about_no_case_sends_nothing():
    with_case = sample(ReportFiledV1.event_type, 0)
    without = sample(ReportFiledV1.event_type, 1)
    assert summary(planned(with_case)) == {("report_receipt", f"resident:{CASE}", "sms"),
                                           ("report_receipt", f"resident:{CASE}", "email")}
    assert without.case_id is None and planned(without) == []


def test_an_assigned_report_reaches_its_specialist_in_the_inbox_of_the_reports_unit():
    event = sample(ReportAssignedV1.event_type)
    [message] = planned(event)
    assert (message.kind, message.recipient.key, message.channel) == (
        "report_assigned", "specialist:specialist-maigaoqiao", "inbox")
    assert message.recipient.unit_code == STREET and message.recipient.department_code is None
    assert domain.AUDIENCE_CHANNELS["specialist"] == ("inbox",)


def test_a_closed_report_tells_the_resident_of_the_case_remembered_from_its_filing_and_no_one_without():
    event = sample(ReportClosedV1.event_type, 4)
    assert ReportClosedV1.event_type in domain.REPORT_CASE_FROM_FILING
    messages = planned(event, case_id=CASE)
    assert summary(messages) == {("report_closed", f"resident:{CASE}", "sms"),
                                 ("report_closed", f"resident:{CASE}", "email")}
    assert {m.recipient.case_id for m in messages} == {CASE}
    assert "无法办理" in messages[0].context["outcome"]
    assert planned(event) == []


def test_an_overdue_report_goes_to_the_supervising_unit():
    event = sample(ReportOverdueV1.event_type)
    assert summary(planned(event)) == {("report_overdue", f"unit:{DISTRICT}:None", "inbox")}


def test_the_other_escalation_events_tell_no_one():
    call = sample(WhistleCalledV1.event_type).model_dump(exclude={"ack_due_at"})
    acknowledged = WhistleAcknowledgedV1(**call, acknowledged_by="dept-qixia-police")
    report = sample(ReportAssignedV1.event_type).model_dump(exclude={"specialist", "assigned_by"})
    classified = ReportClassifiedV1(**report, report_class="simple", cause_code="other", classified_by="s")
    reopened = ReportReopenedV1(**report, reason="return_visit_disagreed", reopen_count=1)
    for event in (acknowledged, classified, reopened):
        assert planned(event, case_id=CASE) == []


def test_every_new_kind_has_its_templates():
    keys = domain.template_keys()
    for key in [("deadline_warning", "inbox"), ("staff_item_escalated", "inbox"), ("supervision_escalated", "inbox"),
                ("whistle_called", "inbox"), ("department_whistle_called", "webhook"), ("whistle_escalated", "inbox"),
                ("report_assigned", "inbox"), ("report_receipt", "sms"), ("report_receipt", "email"),
                ("report_closed", "sms"), ("report_closed", "email"), ("report_overdue", "inbox")]:
        assert key in keys
