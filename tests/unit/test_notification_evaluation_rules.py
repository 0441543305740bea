"""Who is told what about evaluation: a rectification opened, overdue, escalated and closed, an appeal decided,
a 督办单 issued and answered."""

from __future__ import annotations

from datetime import datetime

from services.notification import domain, samples
from services.notification.domain import QuietHours
from services.notification.rendering import MessageTemplates
from services.notification.settings import TEMPLATES_DIR
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.events import (
    AppealDecidedV1,
    RatingSubmittedV1,
    RectificationClosedV1,
    RectificationClosedV2,
    RectificationDueDateRevisedV1,
    RectificationOpenedV1,
    RectificationOpenedV2,
    RectificationOverdueV1,
    SupervisionOrderAnsweredV1,
    SupervisionOrderIssuedV1,
)
from shared.workdays import SHANGHAI
from tests.support.notification_fakes import sample

V2_ONLY = {"reason_code", "case_number", "community_code"}  # what rectification.closed.v1 lacks
OPENED_V2_ONLY = {"deadline_provisional", "escalate_at", "escalate_at_provisional"}  # what opened.v1 lacks
CATALOGUE = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
NAMES = domain.CatalogueNames(CATALOGUE)
TEMPLATES = MessageTemplates(TEMPLATES_DIR)
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
CASE = samples.SAMPLE_CASE_ID
COMMUNITY, STREET = samples.SAMPLE_COMMUNITY, samples.SAMPLE_STREET


def planned(payload, now=DAYTIME):
    return domain.plan(payload.event_type, payload, now=now, names=NAMES, webhooks=(), within=CATALOGUE.is_within,
                       quiet_hours=QuietHours())


def summary(messages) -> set[tuple[str, str, str]]:
    return {(message.kind, message.recipient.key, message.channel) for message in messages}


def text(message) -> str:
    rendered = TEMPLATES.render(message.kind, message.channel, message.context)
    return rendered.subject + rendered.body


def test_an_opened_rectification_goes_to_the_owning_units_inbox_with_its_due_date():
    [message] = planned(sample(RectificationOpenedV2.event_type))
    assert summary([message]) == {("rectification_opened", f"unit:{COMMUNITY}:police", "inbox")}
    assert "2026年12月8日 17:30前" in text(message) and "居住证办理" in text(message)
    assert "暂定" not in text(message)
    # A 体验官 finding about no item: the unit's inbox all the same, department "any".
    [found] = planned(sample(RectificationOpenedV2.event_type, 1))
    assert summary([found]) == {("rectification_opened", f"unit:{COMMUNITY}:any", "inbox")}
    assert "政务服务体验官" in text(found)
    # v1 is published beside v2 and tells no one (else the unit would hear twice).
    v1 = RectificationOpenedV1.model_validate(sample(RectificationOpenedV2.event_type).model_dump(
        exclude=OPENED_V2_ONLY))
    assert planned(v1) == []


def test_a_provisional_due_time_is_told_as_provisional():
    [message] = planned(sample(RectificationOpenedV2.event_type, 2))
    assert message.context["due_provisional"] is True
    assert "2027年1月5日 17:30前完成（暂定）" in text(message) and "重新计算" in text(message)


def test_a_revised_due_time_is_told_to_the_owning_unit_only_when_it_moved_and_the_rectification_is_open():
    revised = sample(RectificationDueDateRevisedV1.event_type)
    [message] = planned(revised)
    assert summary([message]) == {("rectification_due_revised", f"unit:{COMMUNITY}:police", "inbox")}
    body = text(message)
    assert "由2027年1月5日 17:30更正为2027年1月4日 17:30" in body and samples.SAMPLE_RECTIFICATION_ID in body
    assert "仍按法定节假日推算" not in body
    still = planned(sample(RectificationDueDateRevisedV1.event_type, 1))  # warned, and still provisional
    assert summary(still) == {("rectification_due_revised", f"unit:{COMMUNITY}:police", "inbox")}
    assert "仍按法定节假日推算" in text(still[0])
    # Only the flag cleared, or the rectification closed already: nothing to tell.
    assert planned(sample(RectificationDueDateRevisedV1.event_type, deadline=revised.previous_deadline)) == []
    assert planned(sample(RectificationDueDateRevisedV1.event_type, state="closed")) == []


def test_overdue_warns_the_owner_and_an_escalation_goes_to_the_level_above_only():
    warning, escalated = (sample(RectificationOverdueV1.event_type, index) for index in (0, 1))
    assert summary(planned(warning)) == {("rectification_overdue", f"unit:{COMMUNITY}:police", "inbox")}
    [up] = planned(escalated)
    assert summary([up]) == {("rectification_escalated", f"unit:{STREET}:police", "inbox")}
    assert "迈皋桥街道督办" in text(up) and "馨合家园社区" in text(up)


def test_the_resident_gets_one_sms_with_the_result_and_the_coded_reason():
    for index, (result, reason) in enumerate([("整改完成", None), ("解释说明", "已就相关政策规定作出说明"),
                                              ("无法整改", "超出本单位职权范围"), ("无法整改", None)]):
        [message] = planned(sample(RectificationClosedV2.event_type, index))
        assert summary([message]) == {("rectification_closed", f"resident:{CASE}", "sms")}
        assert message.recipient.case_id == CASE
        body = text(message)
        assert f"结果：{result}" in body and samples.SAMPLE_CASE_NUMBER in body
        if reason:
            assert f"理由：{reason}" in body
        elif result == "无法整改":
            assert "具体理由可向馨合家园社区咨询" in body
        else:
            assert "理由" not in body


def test_a_closing_tells_no_one_when_there_is_no_resident_or_the_rating_was_found_wrong():
    closed = sample(RectificationClosedV2.event_type)
    finding = sample(RectificationClosedV2.event_type, origin="finding", item_id=None, case_id=None, matter_code=None,
                     case_number=None, community_code=None, department_code="any")
    assert planned(finding) == []
    assert planned(sample(RectificationClosedV2.event_type, result="appeal_upheld")) == []
    assert planned(sample(RectificationClosedV2.event_type, case_id=None)) == []
    # v1 is published beside v2 and tells no one (else the resident would hear twice).
    v1 = RectificationClosedV1.model_validate(closed.model_dump(exclude=V2_ONLY))
    assert planned(v1) == []
    # A rating by itself tells no one.
    assert RatingSubmittedV1.event_type not in domain.RULES


def test_the_resident_sms_waits_for_the_morning_and_staff_messages_do_not():
    [sms] = planned(sample(RectificationClosedV2.event_type), now=NIGHT)
    assert sms.hold_reason == "quiet_hours" and sms.not_before == datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI)
    [inbox] = planned(sample(RectificationOpenedV2.event_type), now=NIGHT)
    assert inbox.hold_reason is None


def test_the_unit_hears_the_appeal_decision():
    upheld, dismissed = (planned(sample(AppealDecidedV1.event_type, index)) for index in (0, 1))
    assert summary(upheld) == summary(dismissed) == {("appeal_decided", f"unit:{COMMUNITY}:police", "inbox")}
    assert "申诉成立" in text(upheld[0]) and "迈皋桥街道" in text(upheld[0])
    assert "申诉不成立" in text(dismissed[0])


def test_an_order_goes_to_the_addressed_unit_and_its_answer_to_the_issuer():
    [issued] = planned(sample(SupervisionOrderIssuedV1.event_type))
    assert summary([issued]) == {("supervision_order_issued", f"unit:{COMMUNITY}:police", "inbox")}
    assert "2026年12月8日 17:30前" in text(issued) and samples.SAMPLE_ORDER_ID in text(issued)
    [answered] = planned(sample(SupervisionOrderAnsweredV1.event_type, 1))
    assert summary([answered]) == {("supervision_order_answered", f"unit:{STREET}:police", "inbox")}
    assert "逾期" in text(answered)
    [in_time] = planned(sample(SupervisionOrderAnsweredV1.event_type, 0))
    assert "逾期" not in text(in_time)


def test_no_evaluation_message_carries_text_from_the_event():
    """Events carry codes; a forged code becomes nothing or a generic phrase, never the code itself."""
    forged = sample(RectificationOpenedV2.event_type, matter_code="<a href=x>点此</a>", unit_code="999999999999")
    body = text(planned(forged)[0])
    assert "<a" not in body and "999999999999" not in body and "相关事项" in body
