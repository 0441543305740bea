"""SMS as providers take it: the template file's checks, the parameters' guards, Aliyun's codes and signature."""

from __future__ import annotations

import pytest

from services.notification import domain, samples
from services.notification.adapters.channels import aliyun_rpc_signature
from services.notification.dependencies import check_sms_templates
from services.notification.domain import Outcome, classify_aliyun_sms
from services.notification.settings import SMS_TEMPLATES_FILE, NotificationConfigError, NotificationSettings
from services.notification.sms_templates import MAX_PARAM_CHARS, SmsTemplateProblems, SmsTemplates
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT

NAMES = domain.CatalogueNames(load_catalogue(str(REPO_ROOT / "catalogue" / "nanjing")))
SMS_KINDS = {kind for kind, channel in domain.template_keys() if channel == "sms"}


def document(**templates):
    return {"sign_name": "三级联办", "templates": templates}


def test_the_development_templates_cover_every_sms_kind_and_render_for_every_sample():
    templates = SmsTemplates.load(SMS_TEMPLATES_FILE)
    check_sms_templates(templates, NAMES)  # raises on any problem
    assert set(templates.templates) == SMS_KINDS
    for kind, channel, context in domain.sample_renderings(samples.sample_events(), NAMES):
        if channel == "sms":
            params = templates.request(kind, context).params
            assert all(0 < len(value) <= MAX_PARAM_CHARS for value in params.values())
            assert "${" not in templates.text(kind, params)


@pytest.mark.parametrize(("entry", "problem"), [
    ({"template_code": "SMS_1", "text": "您好，${case_number}，${due}", "params": {"case_number": "{{ case_number }}"}},
     "the text's ${due} has no parameter"),
    ({"template_code": "SMS_1", "text": "您好，${case_number}", "params": {"case_number": "{{ case_number }}",
                                                                      "unit": "{{ unit }}"}},
     "parameter(s) unit not in the text"),
    ({"template_code": "SMS_1", "text": "您好，${mobile}", "params": {"mobile": "{{ case_number }}"}},
     "'mobile' is not a name providers accept"),
    ({"template_code": "SMS 1!", "text": "您好", "params": {}}, "is not a provider template code"),
    ({"template_code": "SMS_1", "text": "您好"}, "needs exactly template_code, text and params"),
])
def test_a_broken_template_entry_is_refused_naming_the_kind(entry, problem):
    with pytest.raises(SmsTemplateProblems, match="receipt: .*" + problem.replace("$", r"\$").replace("(", r"\(")
                       .replace(")", r"\)").replace("{", r"\{").replace("}", r"\}")):
        SmsTemplates.from_document(document(receipt=entry), "test.yaml")


def test_an_unknown_kind_a_missing_kind_and_a_missing_variable_are_named_at_start():
    good = SmsTemplates.load(SMS_TEMPLATES_FILE).templates
    entries = {kind: {"template_code": t.template_code, "text": t.text, "params": dict(t.params)}
               for kind, t in good.items() if kind != "receipt"}
    entries["receipt_typo"] = {"template_code": "SMS_1", "text": "您好${n}", "params": {"n": "{{ case_number }}"}}
    entries["item_routed"]["params"]["matter"] = "{{ matter_name }}"
    templates = SmsTemplates.from_document(document(**entries), "test.yaml")
    with pytest.raises(SmsTemplateProblems) as refused:
        check_sms_templates(templates, NAMES)
    problems = refused.value.problems
    assert "receipt: no SMS template for this message kind (every resident SMS needs one)" in problems
    assert "receipt_typo: no rule sends this kind by SMS (a misspelt kind?)" in problems
    assert any(p.startswith("item_routed: parameter matter: 'matter_name' is undefined") for p in problems)


def test_parameters_never_carry_an_id_number_a_phone_or_an_email_and_are_cut_to_the_limit():
    templates = SmsTemplates.from_document(document(receipt={
        "template_code": "SMS_1", "text": "您好${case_number}${matters}",
        "params": {"case_number": "{{ case_number }}", "matters": "{{ matters | join('、') }}"}}), "test.yaml")
    for personal in ("11010519491231002X", "13912345678", "liu@example.com", "编号 320102198001011234 号"):
        assert templates.request("receipt", {"case_number": personal, "matters": ["x"]}).params["case_number"] == \
            "（已隐去）"
    long = templates.request("receipt", {"case_number": "SJ1", "matters": ["居住证办理"] * 10}).params["matters"]
    assert len(long) == MAX_PARAM_CHARS and long.endswith("…")


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (200, "OK", Outcome.SENT),
    (200, "isv.BUSINESS_LIMIT_CONTROL", Outcome.TRANSIENT), (400, "SignatureNonceUsed", Outcome.TRANSIENT),
    (400, "Throttling.User", Outcome.TRANSIENT), (500, "isp.SYSTEM_ERROR", Outcome.TRANSIENT),
    (200, "isv.MOBILE_NUMBER_ILLEGAL", Outcome.PERMANENT), (200, "isv.TEMPLATE_MISSING_PARAMETERS", Outcome.PERMANENT),
    (400, "isv.INVALID_PARAMETERS", Outcome.PERMANENT), (200, "isv.AMOUNT_NOT_ENOUGH", Outcome.PERMANENT),
    (503, None, Outcome.TRANSIENT), (502, "Something.New", Outcome.TRANSIENT),
    (200, "Something.New", Outcome.PERMANENT),
    (400, None, Outcome.PERMANENT),
])
def test_aliyun_codes_are_retried_or_given_up(status, code, outcome):
    assert classify_aliyun_sms(status, code) is outcome
    assert not domain.ALIYUN_SMS_RETRY_CODES & domain.ALIYUN_SMS_GIVE_UP_CODES


def test_the_request_signature_matches_alibaba_clouds_documented_example():
    params = {"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
              "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1", "Version": "2014-05-26",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0"}
    assert aliyun_rpc_signature("testsecret", "GET", params) == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


@pytest.mark.parametrize(("config", "problem"), [
    ({"SANJI_NOTIFICATION_SMS_PROVIDER": "tencent"},
     "SANJI_NOTIFICATION_SMS_PROVIDER: expected one of http or aliyun, got 'tencent'"),
    ({"SANJI_NOTIFICATION_SMS_PROVIDER": "aliyun"}, "needs SANJI_NOTIFICATION_SMS_URL"),
    ({"SANJI_NOTIFICATION_SMS_PROVIDER": "aliyun", "SANJI_NOTIFICATION_SMS_URL": "https://dysmsapi.aliyuncs.com/"},
     "needs SANJI_NOTIFICATION_SMS_ACCESS_KEY_ID"),
])
def test_an_incomplete_provider_setting_is_refused_by_name(config, problem):
    with pytest.raises(NotificationConfigError, match=problem.replace("?", r"\?")):
        NotificationSettings.from_config(config)
