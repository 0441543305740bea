"""Templates: the shipped ones all render; a missing file, variable or block is found at start, by name."""

from __future__ import annotations

import shutil

import pytest
from jinja2 import UndefinedError

from services.notification import domain, samples
from services.notification.dependencies import check_templates
from services.notification.rendering import MessageTemplates, TemplateProblems
from services.notification.settings import TEMPLATES_DIR
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT

NAMES = domain.CatalogueNames(load_catalogue(REPO_ROOT / "catalogue" / "nanjing"))
RENDERINGS = domain.sample_renderings(samples.sample_events(), NAMES)


@pytest.fixture
def templates_copy(tmp_path):
    directory = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, directory)
    return directory


def replace(settings, **changes):
    """The settings with some fields changed (pydantic models are frozen)."""
    return settings.model_copy(update=changes)


def problems_in(directory) -> list[str]:
    return MessageTemplates(directory).check(domain.template_keys(), RENDERINGS)


def test_the_shipped_templates_cover_every_kind_and_channel_and_render_every_sample():
    assert problems_in(TEMPLATES_DIR) == []
    check_templates(MessageTemplates(TEMPLATES_DIR), NAMES)  # what the service runs at start


def identifier(kind: str) -> str:
    """What a message names its subject by: 吹哨 and 办不成事 events carry no case number, so the call or the
    report number; staff's messages about a rectification, an appeal or a 督办单 name it by its number;
    everything else (the resident's rectification result too) the case number."""
    if kind.startswith(("whistle_", "department_whistle_")):
        return samples.SAMPLE_CALL_ID
    if kind.startswith("report_"):
        return samples.SAMPLE_REPORT_NUMBER
    if kind in ("rectification_opened", "rectification_overdue", "rectification_escalated",
                "rectification_due_revised"):
        return samples.SAMPLE_RECTIFICATION_ID
    if kind == "appeal_decided":
        return samples.SAMPLE_APPEAL_ID
    if kind.startswith("supervision_order_"):
        return samples.SAMPLE_ORDER_ID
    return samples.SAMPLE_CASE_NUMBER


def test_every_kind_renders_in_chinese_with_its_case_call_or_report_number_and_no_leftover_markup():
    templates = MessageTemplates(TEMPLATES_DIR)
    rendered_kinds = set()
    for kind, channel, context in RENDERINGS:
        message = templates.render(kind, channel, context)
        text = message.subject + message.body
        assert identifier(kind) in text, (kind, channel)
        assert "您好" in message.body or channel in ("inbox", "webhook"), (kind, channel)
        for leftover in ("{{", "}}", "{%", "None", "[]"):
            assert leftover not in text, (kind, channel, leftover)
        if channel == "sms":
            assert "\n" not in message.body and message.subject == ""
        else:
            assert message.subject
        rendered_kinds.add((kind, channel))
    assert rendered_kinds == domain.template_keys()


def test_the_receipt_sms_carries_the_deferral_notice_with_its_due_date_and_consequence():
    templates = MessageTemplates(TEMPLATES_DIR)
    submitted = next(event for event in samples.sample_events() if getattr(event, "deferred_materials", ()))
    body = templates.render("receipt", "sms", domain.receipt_context(submitted, NAMES)).body
    assert "房东身份证复印件" in body and "2026年12月8日前" in body and "终止办理" in body


def test_a_supplement_sms_due_in_an_unarranged_year_says_the_date_is_provisional():
    """Issue 14: the SMS asked the resident to come on New Year's Day. The due date now skips the statutory
    holidays, and while the year's arrangement (调休) is not loaded the message says the date may move."""
    from datetime import date

    templates = MessageTemplates(TEMPLATES_DIR)
    events = [event for event in samples.sample_events() if type(event).__name__ == "ItemSupplementRequestedV1"]
    provisional = next(event for event in events if event.due_date_provisional)
    assert provisional.due_date == date(2027, 1, 4)
    body = templates.render("supplement_requested", "sms", domain.supplement_requested_context(provisional, NAMES)).body
    assert "2027年1月4日前" in body and "法定节假日推算" in body and "1月1日" not in body
    settled = next(event for event in events if not event.due_date_provisional)
    body = templates.render("supplement_requested", "sms", domain.supplement_requested_context(settled, NAMES)).body
    assert "法定节假日推算" not in body


def test_a_receipt_with_a_deferral_due_in_an_unarranged_year_says_the_date_is_provisional():
    templates = MessageTemplates(TEMPLATES_DIR)
    submitted = [event for event in samples.sample_events() if getattr(event, "deferred_materials", ())]
    provisional = next(e for e in submitted if any(d.due_date_provisional for d in e.deferred_materials))
    body = templates.render("receipt", "sms", domain.receipt_context(provisional, NAMES)).body
    assert "2027年1月4日前" in body and "法定节假日推算" in body
    settled = next(e for e in submitted if not any(d.due_date_provisional for d in e.deferred_materials))
    assert "法定节假日推算" not in templates.render("receipt", "sms", domain.receipt_context(settled, NAMES)).body


def test_a_missing_template_is_named(templates_copy):
    (templates_copy / "item_rejected.sms.j2").unlink()
    assert problems_in(templates_copy) == ["item_rejected.sms.j2: missing (message kind 'item_rejected' on channel "
                                           "'sms')"]


def test_a_misspelt_variable_is_named_with_the_variables_there_are(templates_copy):
    path = templates_copy / "deferral_reminder.sms.j2"
    path.write_text(path.read_text(encoding="utf-8").replace("{{ due }}", "{{ due_date }}"), encoding="utf-8")
    [problem] = problems_in(templates_copy)
    assert problem.startswith("deferral_reminder.sms.j2: 'due_date' is undefined")
    assert "due" in problem.split("the context has:")[1]


def test_a_variable_used_only_in_one_branch_is_still_checked(templates_copy):
    path = templates_copy / "item_resolved.email.j2"
    path.write_text(path.read_text(encoding="utf-8").replace("{{ delivery.agent }}", "{{ delivery.worker }}"),
                    encoding="utf-8")
    assert any("item_resolved.email.j2" in problem and "worker" in problem for problem in problems_in(templates_copy))


def test_a_stray_file_a_syntax_error_and_a_missing_block_are_each_named(templates_copy):
    (templates_copy / "reciept.sms.j2").write_text("{% block body %}x{% endblock %}", encoding="utf-8")
    (templates_copy / "receipt.sms.j2").write_text("{% block body %}{% if %}{% endblock %}", encoding="utf-8")
    (templates_copy / "receipt.email.j2").write_text("{% block body %}{{ case_number }}{% endblock %}",
                                                     encoding="utf-8")
    problems = problems_in(templates_copy)
    assert any(p.startswith("reciept.sms.j2: no rule sends") for p in problems)
    assert any(p.startswith("receipt.sms.j2: line 1") for p in problems)
    assert any(p.startswith("receipt.email.j2: the email channel needs a {% block subject %}") for p in problems)


def test_an_sms_that_is_too_long_or_empty_is_refused(templates_copy):
    (templates_copy / "item_terminated.sms.j2").write_text("{% block body %}" + "很长" * 300 + "{% endblock %}",
                                                           encoding="utf-8")
    (templates_copy / "item_rejected.sms.j2").write_text("{% block body %}  {% endblock %}", encoding="utf-8")
    problems = problems_in(templates_copy)
    assert "item_terminated.sms.j2: an SMS of 600 characters is longer than 500" in problems
    assert "item_rejected.sms.j2: renders an empty body" in problems


def test_the_start_up_check_raises_with_every_problem(templates_copy):
    (templates_copy / "receipt.sms.j2").unlink()
    (templates_copy / "receipt.email.j2").unlink()
    with pytest.raises(TemplateProblems) as refused:
        check_templates(MessageTemplates(templates_copy), NAMES)
    assert len(refused.value.problems) == 2 and "receipt.sms.j2" in str(refused.value)
    with pytest.raises(TemplateProblems, match="does not exist"):
        check_templates(MessageTemplates(templates_copy / "nowhere"), NAMES)


def test_rendering_with_a_missing_variable_raises_rather_than_printing_nothing():
    with pytest.raises(UndefinedError):
        MessageTemplates(TEMPLATES_DIR).render("deferral_reminder", "sms", {"case_number": "X"})


def test_the_rating_invitation_sms_carries_the_signed_rating_link_when_a_rating_page_is_configured():
    from datetime import timedelta

    from services.notification.dependencies import _rating_link
    from services.notification.settings import NotificationSettings
    from shared.events import CaseCompletedV1
    from shared.rating_links import verify_rating_link

    settings = NotificationSettings.from_config({"SANJI_NOTIFICATION_RATING_LINK_BASE": "https://pj.example.invalid/r/",
                                                 "SANJI_EVALUATION_LINK_KEY": "k" * 32})
    names = domain.CatalogueNames(load_catalogue(REPO_ROOT / "catalogue" / "nanjing"),
                                  rating_link=_rating_link(settings))
    event = next(e for e in samples.sample_events() if isinstance(e, CaseCompletedV1))
    message = MessageTemplates(TEMPLATES_DIR).render("rating_invitation", "sms",
                                                     domain.rating_invitation_context(event, names))
    import re

    token = re.search(r"https://pj\.example\.invalid/r/([A-Za-z0-9_.-]+)", message.body).group(1)
    assert verify_rating_link("k" * 32, token, now=event.completed_at + timedelta(days=29)) == event.case_id
    assert "自助终端" in message.body
    # Without a rating page the message is as before.
    plain = MessageTemplates(TEMPLATES_DIR).render("rating_invitation", "sms", domain.rating_invitation_context(
        event, domain.CatalogueNames(load_catalogue(REPO_ROOT / "catalogue" / "nanjing"))))
    assert "https://" not in plain.body


def test_in_development_the_completion_sms_links_to_the_console_s_rating_page_signed_with_evaluation_s_key(tmp_path):
    """`sanji run-all` points SANJI_NOTIFICATION_RATING_LINK_BASE at the console's /rate/ when it is unset in
    development; the notification service then signs with the key the evaluation service verifies with (its
    settings file's, when SANJI_EVALUATION_LINK_KEY is unset). Never in production, and never over a set value."""
    from services.evaluation.settings import link_key
    from services.notification.settings import NotificationSettings
    from shared.config import Settings, development_rating_link_base

    console = replace(Settings.from_env("console"), profile="development", http_host="127.0.0.1",
                      http_port=8004, console={})
    assert development_rating_link_base({}, console) == "http://127.0.0.1:8004/rate/"
    public = replace(console, console={"SANJI_CONSOLE_PUBLIC_URL": "https://sanji.example.cn/"})
    assert development_rating_link_base({}, public) == "https://sanji.example.cn/rate/"
    assert development_rating_link_base({"SANJI_NOTIFICATION_RATING_LINK_BASE": "https://x/r/"}, console) is None
    assert development_rating_link_base({}, replace(console, profile="production")) is None

    settings = NotificationSettings.from_config({"SANJI_NOTIFICATION_RATING_LINK_BASE": "http://127.0.0.1:8004/rate/"})
    assert settings.rating_link_key == link_key({})  # the development settings file's, as evaluation's
    assert NotificationSettings.from_config({}).rating_link_key is None   # no page: no key read, no link
    missing = tmp_path / "none.yaml"
    assert NotificationSettings.from_config({"SANJI_NOTIFICATION_RATING_LINK_BASE": "https://x/r/",
                                             "SANJI_EVALUATION_SETTINGS_FILE": str(missing)}).rating_link_key is None
