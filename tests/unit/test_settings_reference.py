"""Every setting documented from the code, and a bad value refused in one line naming it.

docs/settings.md is generated from the settings models (`sanji settings`); these tests fail when it drifts,
when the code reads a ``SANJI_…`` variable that the document does not list, and when a bad value of any kind
gets past the command as a traceback instead of one line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sanji.settings_reference import NOT_VARIABLES, documented_variables, settings_markdown
from shared.config import REPO_ROOT, SERVICES, Settings, SettingsInvalid

VARIABLE = re.compile(r"SANJI_[A-Z0-9_]+")


def test_docs_settings_md_is_the_generated_reference():
    committed = (REPO_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed == settings_markdown(), "docs/settings.md is stale: run `sanji settings > docs/settings.md`"


def _variables_read_by_the_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for package in ("shared", "services", "sanji"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for name in VARIABLE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_every_variable_the_code_reads_is_documented():
    documented = documented_variables() | set(NOT_VARIABLES)
    missing = {}
    for name, paths in _variables_read_by_the_code().items():
        if name.endswith("_"):  # a prefix (SANJI_NOTIFICATION_, SANJI_{service}_): some listed name has it
            if not any(known.startswith(name) for known in documented):
                missing[name] = paths
        elif name not in documented:
            missing[name] = paths
    assert not missing, f"read by the code but not in docs/settings.md (add them to a settings model): {missing}"
    # ... and the exception list holds only names the code really uses.
    assert set(NOT_VARIABLES) <= set(_variables_read_by_the_code())


def test_the_per_service_forms_are_listed_for_every_service():
    documented = documented_variables()
    for service in SERVICES:
        for name in ("DATABASE_URL", "HTTP_PORT", "AMQP_URI", "METRICS_PORT"):
            assert f"SANJI_{service.upper()}_{name}" in documented


def test_the_readme_points_to_the_reference_and_does_not_contradict_it():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "docs/settings.md" in section
    reference = settings_markdown()
    rows = {}
    for line in reference.splitlines():
        cells = [cell.strip() for cell in line.split(" | ")]
        if line.startswith("| `") and len(cells) == 5:
            for variable in re.findall(r"`([A-Z0-9_<>]+)`", cells[0]):
                rows[variable] = cells[2]
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.split(" | ")]
        variable = re.findall(r"`([A-Z0-9_<>]+)`", cells[0])[0]
        assert variable in rows, f"README lists {variable}, docs/settings.md does not"
        assert cells[1] == rows[variable], f"README's default of {variable} differs from docs/settings.md"


# ── a bad value: one line naming the variable, exit status 2, no traceback ──────────────────────────────────

BAD_VALUES = [  # (variable, value, what the line says it expected): one of each kind
    ("SANJI_MAX_WORKERS", "abc", "expected an integer, got 'abc'"),
    ("SANJI_INTAKE_HTTP_PORT", "80800", "expected a port number (1-65535), got '80800'"),
    ("SANJI_HTTP_PORT", "http", "expected a port number (1-65535), got 'http'"),
    ("SANJI_RELAY_POLL_SECONDS", "fast", "expected a number, got 'fast'"),
    ("SANJI_DB_PROBE_SECONDS", "-1", "expected at least 0, got '-1'"),
    ("SANJI_PROFILE", "prod", "expected one of development or production, got 'prod'"),
    ("SANJI_BROKER_TLS", "maybe", "expected one of required or off, got 'maybe'"),
    ("SANJI_AMQP_URI", "rabbitmq:5672", "expected an amqp:// or amqps:// URL"),
    ("SANJI_DATABASE_URL", "postgres ql://x", "expected a database URL (sqlite:///… or postgresql://…)"),
    ("SANJI_VAR_DIR", str(REPO_ROOT / "README.md"), "expected a directory (it is created when missing), not a file"),
    ("SANJI_BUS_USERS", "intake=sanji-intake", "expected service=user pairs naming intake"),
]


def _sanji(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SANJI_", "PGSSL"))}
    env.update(environment, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "sanji.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT)


def _assert_one_line(result: subprocess.CompletedProcess, variable: str, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"sanji: {variable}: ") and expected in line, line


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_VALUES, ids=[case[0] for case in BAD_VALUES])
def test_serve_refuses_a_bad_value_in_one_line(variable, value, expected):
    _assert_one_line(_sanji("serve", "intake", **{variable: value}), variable, expected)


@pytest.mark.parametrize("command", [("run-all",), ("migrate", "all"), ("migrate", "routing"), ("check-production",),
                                     ("check-production", "intake"), ("serve", "console")])
def test_every_command_that_starts_or_checks_refuses_in_one_line(command):
    _assert_one_line(_sanji(*command, SANJI_MAX_WORKERS="abc"), "SANJI_MAX_WORKERS",
                     "expected an integer, got 'abc'")


@pytest.mark.parametrize(("service", "variable", "value", "expected"), [
    ("notification", "SANJI_NOTIFICATION_SMTP_PORT", "smtp", "expected a port number (1-65535), got 'smtp'"),
    ("notification", "SANJI_NOTIFICATION_SMTP_STARTTLS", "maybe", "expected true or false, got 'maybe'"),
    ("notification", "SANJI_NOTIFICATION_SMS_URL", "gateway.example", "expected an http:// or https:// URL"),
    ("escalation", "SANJI_ESCALATION_WARNING_SHARE", "1.5", "expected less than 1, got '1.5'"),
    ("evaluation", "SANJI_EVALUATION_BASIC_WEIGHT", "heavy", "expected a number, got 'heavy'"),
    ("console", "SANJI_CONSOLE_SESSION_IDLE_MINUTES", "0", "expected at least 1, got '0'"),
    ("routing", "SANJI_MAX_RETURNS", "two", "expected an integer, got 'two'"),
    ("intake", "SANJI_WALKING_SPEED_M_PER_MIN", "500", "expected at most 200"),
])
def test_a_service_setting_is_refused_before_the_service_starts(service, variable, value, expected):
    _assert_one_line(_sanji("serve", service, **{variable: value}), variable, expected)


def test_a_secret_is_named_but_never_echoed():
    result = _sanji("serve", "intake", SANJI_AMQP_URI="rabbit://admin:hunter2-secret@host/")
    _assert_one_line(result, "SANJI_AMQP_URI", "expected an amqp:// or amqps:// URL")
    assert "hunter2" not in result.stderr


def test_the_per_service_variable_is_the_one_named(monkeypatch):
    monkeypatch.setenv("SANJI_HTTP_PORT", "8100")
    monkeypatch.setenv("SANJI_ROUTING_HTTP_PORT", "x")
    assert Settings.from_env("intake").http_port == 8100
    with pytest.raises(SettingsInvalid, match="^SANJI_ROUTING_HTTP_PORT: expected a port number"):
        Settings.from_env("routing")


def test_defaults_and_fallbacks_are_kept(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("SANJI_", "PGSSL")):
            monkeypatch.delenv(name)
    settings = Settings.from_env("routing")
    assert (settings.http_port, settings.database_url, settings.max_workers, settings.profile) == (
        8001, f"sqlite:///{REPO_ROOT / 'var'}/routing.db", 10, "development")
    assert settings.assertion_key and settings.bus_users == dict.fromkeys(SERVICES, "guest")
    assert Settings.from_env().http_port is None and Settings.from_env().database_url.endswith("/sanji.db")
    monkeypatch.setenv("SANJI_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SANJI_PROFILE", " Production ")
    monkeypatch.setenv("SANJI_MAX_WORKERS", "  ")  # blank is unset
    monkeypatch.setenv("SANJI_ROUTING_AMQP_URI", "amqp://sanji-routing:pw@host/")
    monkeypatch.setenv("SANJI_ROUTING_DATABASE_URL", "postgresql://r@db/r")
    monkeypatch.setenv("SANJI_NOTIFICATION_SMS_URL", "https://sms.example/")
    monkeypatch.setenv("SANJI_NOTIFICATION_HTTP_PORT", "9003")
    routing = Settings.from_env("routing")
    assert (routing.profile, routing.max_workers, routing.amqp_uri, routing.database_url) == (
        "production", 10, "amqp://sanji-routing:pw@host/", "postgresql://r@db/r")
    assert routing.bus_users["routing"] == "sanji-routing" and routing.bus_users["intake"] == "guest"
    assert Settings.from_env("intake").database_url == f"sqlite:///{tmp_path}/intake.db"
    notification = Settings.from_env("notification")
    assert notification.notification == {"SANJI_NOTIFICATION_SMS_URL": "https://sms.example/"}
    assert notification.http_port == 9003
