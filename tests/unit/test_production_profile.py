"""The production profile fails closed: one rule at a time, from settings fit for production."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys

import pytest

from shared.config import DEV_KEYS_FILE, REPO_ROOT, Settings, development_assertion_key
from shared.production import production_problems, profile_problems

SECRET_DATA_KEYS = "prod-1:" + base64.urlsafe_b64encode(os.urandom(32)).decode()
SECRET_PII_KEY = "a-long-secret-pii-key-from-the-vault"
DEV_DATA_KEY = "dev-1:" + __import__("yaml").safe_load(DEV_KEYS_FILE.read_text())["data_keys"][0]["key"]


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  - name: kiosk-1\n    kind: kiosk\n    unit: \"320113003021\"\n"
                    f"    sha256: {hashlib.sha256(b'a-real-secret-token').hexdigest()}\n")
    return path


@pytest.fixture
def fit(tokens_file, tmp_path) -> Settings:
    return Settings(
        amqp_uri="amqps://intake:pw@rabbitmq.sanji.svc:5671/", database_url="postgresql://sanji:pw@db/sanji?sslmode=verify-full",
        http_host="0.0.0.0", http_port=8000, log_format="json", log_level="INFO",
        catalogue_dir=REPO_ROOT / "catalogue" / "nanjing", tokens_file=tokens_file,
        calendar_overrides=REPO_ROOT / "config" / "calendar-overrides.yaml",
        credit_flags=REPO_ROOT / "config" / "credit-flags.yaml", var_dir=tmp_path,
        pii_key=SECRET_PII_KEY, data_keys=SECRET_DATA_KEYS, keys_file=tmp_path / "no-keys-file.yaml",
        profile="production",
        notification={"SANJI_NOTIFICATION_SMS_URL": "https://sms.example.invalid/send",
                      "SANJI_NOTIFICATION_SMTP_HOST": "smtp.example.invalid"},
        evaluation={"SANJI_EVALUATION_LINK_KEY": "a-long-secret-link-key-from-the-vault"},
        assertion_key="an-assertion-key-from-the-vault-of-40-bytes")


def replace(settings, **changes):
    """The settings with some fields changed (pydantic models are frozen)."""
    return settings.model_copy(update=changes)


def problems_of(settings, service="intake"):
    return production_problems(service, settings, extra_checks=[])


def test_settings_fit_for_production_pass(fit):
    assert problems_of(fit) == [] and problems_of(fit, "notification") == [] and problems_of(fit, None) == []


def test_the_rating_link_key_must_be_a_real_secret(fit):
    assert problems_of(fit, "evaluation") == []
    for key, words in (("", "not set"), ("change-me", "placeholder"), ("short-key", "shorter"),
                       ("dev-only-rating-link-key-change-me", "development key")):
        [line] = problems_of(replace(fit, evaluation={"SANJI_EVALUATION_LINK_KEY": key} if key else {}),
                             "evaluation")
        assert "SANJI_EVALUATION_LINK_KEY" in line and words in line
    assert problems_of(replace(fit, evaluation={}), "routing") == []  # only evaluation signs links


def test_rating_links_in_the_completion_sms_need_a_public_https_page_and_a_real_key(fit):
    """Nothing sets SANJI_NOTIFICATION_RATING_LINK_BASE in production (run-all's default is development only);
    set, it must be the public page, and the notification service signs with a real key."""
    base = {**fit.notification, "SANJI_NOTIFICATION_RATING_LINK_BASE": "https://pj.sanji.example.cn/rate/"}
    with_links = replace(fit, notification=base)
    assert problems_of(with_links, "notification") == []
    [line] = problems_of(replace(with_links, evaluation={}), "notification")
    assert "completion SMS signs rating links" in line and "SANJI_EVALUATION_LINK_KEY is not set" in line
    for page in ("http://pj.sanji.example.cn/rate/", "https://127.0.0.1:8004/rate/", "http://localhost:8004/rate/"):
        [line] = problems_of(replace(
            fit, notification={**base, "SANJI_NOTIFICATION_RATING_LINK_BASE": page}), "notification")
        assert "not a public https:// address" in line
    assert problems_of(replace(fit, evaluation={}), "notification") == []  # no links, no key needed


def test_the_development_tokens_file_is_refused(fit):
    [line] = problems_of(replace(fit, tokens_file=REPO_ROOT / "config" / "dev-tokens.yaml"))
    assert "development tokens file" in line


def test_tokens_in_clear_or_development_digests_are_refused(fit, tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("tokens:\n  - {name: a, kind: kiosk, unit: '320113003021', token: plain-token}\n"
                    f"  - {{name: b, kind: kiosk, unit: '320113003021', "
                    f"sha256: {hashlib.sha256(b'dev-kiosk-xinhe').hexdigest()}}}\n")
    lines = problems_of(replace(fit, tokens_file=path))
    assert len(lines) == 2 and "in clear" in lines[0] and "development token(s) by digest" in lines[1]


def test_development_accounts_are_a_pluggable_check(fit):
    def no_dev_accounts(service, settings):
        return ["the console's accounts table holds development account admin"]

    assert production_problems("intake", fit, extra_checks=[no_dev_accounts]) == [
        "the console's accounts table holds development account admin"]


@pytest.mark.parametrize("change, expected", [
    ({"pii_key": None, "data_keys": None, "keys_file": DEV_KEYS_FILE}, "development keys file"),
    ({"pii_key": None}, "SANJI_PII_KEY is missing"),
    ({"data_keys": None}, "SANJI_DATA_KEYS is missing"),
    ({"pii_key": "dev-only-pii-key-change-me"}, "known development value"),
    ({"pii_key": "change-me"}, "at least 16 bytes"),
    ({"data_keys": DEV_DATA_KEY}, "dev-1 are development keys"),
    ({"data_keys": "k1:not-a-key"}, "SANJI_DATA_KEYS"),
])
def test_keys_missing_or_known_are_refused(fit, change, expected):
    [line] = problems_of(replace(fit, **change))
    assert expected in line
    assert problems_of(replace(fit, **change), "routing") == []  # routing keeps no personal data


@pytest.mark.parametrize("assertion_key, expected", [
    (None, "SANJI_ASSERTION_KEY is missing"),
    (development_assertion_key(), "known development value"),
    ("change-me", "known development value"),
    ("short-but-not-a-placeholder", "shorter than 32 bytes"),
])
def test_the_person_assertion_key_must_be_a_real_secret_in_every_service(fit, assertion_key, expected):
    unfit = replace(fit, assertion_key=assertion_key)
    for service in ("intake", "routing", "console"):
        [line] = problems_of(unfit, service)
        assert expected in line


def test_file_sinks_for_sms_and_email_are_refused(fit):
    lines = problems_of(replace(fit, notification={}), "notification")
    assert len(lines) == 2 and "SANJI_NOTIFICATION_SMS_URL" in lines[0] and "SANJI_NOTIFICATION_SMTP_HOST" in lines[1]


def test_sqlite_is_refused(fit, tmp_path):
    [line] = problems_of(replace(fit, database_url=f"sqlite:///{tmp_path}/x.db"))
    assert "SQLite" in line


def test_the_guest_broker_user_is_refused(fit):
    [line] = problems_of(replace(fit, amqp_uri="amqps://guest:guest@rabbitmq:5671/"))
    assert "guest" in line


def test_tls_is_required_unless_the_deployment_declares_it_off(fit):
    plain = replace(fit, amqp_uri="amqp://intake:pw@rabbitmq:5672/",
                                database_url="postgresql://sanji:pw@db/sanji")
    lines = problems_of(plain)
    assert len(lines) == 2 and "sslmode=unset" in lines[0] and "amqps://" in lines[1]
    assert problems_of(replace(plain, broker_tls="off", database_tls="off")) == []
    assert "required or off" in problems_of(replace(fit, broker_tls="maybe"))[0]
    assert problems_of(replace(fit, database_url="postgresql://s:p@db/s?sslmode=prefer"))


def test_an_unknown_profile_is_refused(fit):
    assert "not a profile" in profile_problems(replace(fit, profile="prod"))[0]


def test_a_service_started_with_the_production_profile_on_development_settings_refuses(tmp_path):
    """`sanji serve` as a container would run it: one line per problem, status 2, no traceback."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SANJI_")}
    env.update(SANJI_PROFILE="production", SANJI_VAR_DIR=str(tmp_path), PYTHONPATH=str(REPO_ROOT))
    for service, expected in (("intake", ["development tokens file", "development keys file",
                                          "SANJI_ASSERTION_KEY is a known development value", "SQLite",
                                          "broker user is guest", "TLS is required for the broker"]),
                              ("notification", ["development tokens file", "SMS go to a file sink",
                                                "e-mail goes to a file sink",
                                                "SANJI_ASSERTION_KEY is a known development value", "SQLite",
                                                "broker user is guest",
                                                "TLS is required for the broker"])):
        result = subprocess.run([sys.executable, "-m", "sanji.cli", "serve", service], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert len(lines) == len(expected), lines
        for line, fragment in zip(lines, expected, strict=True):
            assert line.startswith(f"sanji: {service}: refused: ") and fragment in line, line


def test_metrics_port_and_probe_window_reach_the_container_config(monkeypatch):
    from shared.config import nameko_config

    monkeypatch.setenv("SANJI_ROUTING_METRICS_PORT", "9101")
    monkeypatch.setenv("SANJI_DB_PROBE_SECONDS", "2.5")
    config = nameko_config("routing", Settings.from_env("routing"))
    assert config["SANJI_METRICS_ADDRESS"].endswith(":9101") and config["SANJI_DB_PROBE_SECONDS"] == 2.5
    monkeypatch.delenv("SANJI_ROUTING_METRICS_PORT")
    assert "SANJI_METRICS_ADDRESS" not in nameko_config("routing", Settings.from_env("routing"))
