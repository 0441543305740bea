"""The console's account, session, CSRF and form rules, on fakes (a frozen clock, a SQLite file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import MultiDict

from services.console import accounts as rules
from services.console.pages_staff import action_body
from services.console.sessions import DEV_PASSWORD, SESSION_COOKIE, store_for
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.config import REPO_ROOT, development_assertion_key
from shared.migrate import migrate

CATALOGUE_DIR = REPO_ROOT / "catalogue" / "nanjing"
STREET = "320113003000"
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(CATALOGUE_DIR)


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def store_factory(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'console.db'}"
    migrate("console", url)

    def make(**config):
        config.setdefault("SANJI_ASSERTION_KEY", development_assertion_key())  # what make run uses
        return store_for(url, str(CATALOGUE_DIR), config, clock)

    return make


def request_with(cookie: str | None):
    return SimpleNamespace(cookies={SESSION_COOKIE: cookie} if cookie else {})


# ── passwords, accounts, roles ─────────────────────────────────────────────────────────────────────────

def test_passwords_are_argon2_hashes_and_only_the_right_one_verifies():
    hashed = rules.hash_password("a-long-secret-42")
    assert hashed.startswith("$argon2id$")
    assert rules.verify_password(hashed, "a-long-secret-42")
    assert not rules.verify_password(hashed, "a-long-secret-43")
    assert not rules.verify_password(None, "a-long-secret-42")       # no such account: same work, no
    assert not rules.verify_password("not-a-hash", "a-long-secret-42")


def test_weak_passwords_are_refused_with_the_field_named():
    with pytest.raises(rules.AccountRefused) as short:
        rules.check_password_strength("short", "wangfang")
    assert short.value.field == "password" and "10" in short.value.message
    with pytest.raises(rules.AccountRefused):
        rules.check_password_strength("wangfang-1234567", "wangfang")


def test_a_new_account_is_checked_field_by_field_in_form_order(catalogue):
    def check(username="wangfang", name="王芳", unit=STREET, department=None, roles=("window",)):
        return rules.check_new_account(username, name, unit, department, roles,
                                       units=catalogue.units, departments=catalogue.departments)

    assert check() == ("window",)
    for kwargs, field in (({"username": "Bad Name", "roles": ()}, "username"), ({"name": ""}, "display_name"),
                          ({"unit": "123"}, "unit"), ({"department": "nope"}, "department"),
                          ({"roles": ("king",)}, "roles"), ({"roles": ("department",)}, "department")):
        with pytest.raises(rules.AccountRefused) as refused:
            check(**kwargs)
        assert refused.value.field == field, kwargs
    assert check(roles="window, supervisor") == ("window", "supervisor")


def test_roles_decide_which_kind_of_client_a_person_acts_as():
    assert rules.acting_kind(("window",), None) == "staff"
    assert rules.acting_kind(("supervisor",), None) == "staff"
    assert rules.acting_kind(("department",), "police") == "department"
    assert rules.acting_kind(("specialist",), None) == "specialist"
    assert rules.acting_kind(("specialist", "window"), None) == "staff"


def test_sessions_end_when_idle_and_at_the_latest_after_their_maximum_age():
    policy = rules.SessionPolicy(idle=timedelta(minutes=30), max_age=timedelta(hours=10))
    assert policy.expiry_after_request(T0, T0) == T0 + timedelta(minutes=30)
    late = T0 + timedelta(hours=9, minutes=50)
    assert policy.expiry_after_request(T0, late) == T0 + timedelta(hours=10)
    assert policy.is_live(T0 + timedelta(minutes=30), T0 + timedelta(minutes=29))
    assert not policy.is_live(T0 + timedelta(minutes=30), T0 + timedelta(minutes=30))


def test_csrf_tokens_match_only_when_both_are_there_and_equal():
    token = rules.new_secret()
    assert rules.tokens_match(token, token)
    assert not rules.tokens_match(token, token + "x")
    assert not rules.tokens_match(token, None) and not rules.tokens_match(None, None) and not rules.tokens_match("", "")


def test_five_misses_in_a_row_lock_an_account_for_a_while():
    count, until = 0, None
    for _ in range(4):
        count, until = rules.after_failed_login(count, T0)
        assert until is None
    count, until = rules.after_failed_login(count, T0)
    assert (count, until) == (0, T0 + rules.LOCKOUT)
    assert rules.locked(count, until, T0 + timedelta(minutes=14))
    assert not rules.locked(count, until, T0 + timedelta(minutes=15))


# ── the store: logins, sessions, audit ─────────────────────────────────────────────────────────────────

def test_a_login_opens_a_session_that_expires_when_idle(store_factory, clock):
    store = store_factory()
    store.add_account(username="wangfang", display_name="王芳", unit_code=STREET, department=None,
                      roles=["window"], password="a-long-secret-42")
    assert not store.login("wangfang", "wrong-password").ok
    outcome = store.login("WangFang ", "a-long-secret-42")
    assert outcome.ok and outcome.user.unit_name == "迈皋桥街道" and outcome.user.kind == "staff"
    user = store.session_of(request_with(outcome.cookie))
    assert user.username == "wangfang" and user.csrf_token == outcome.user.csrf_token
    clock.advance(minutes=29)
    assert store.session_of(request_with(outcome.cookie)) is not None   # a request keeps it alive
    clock.advance(minutes=29)
    assert store.session_of(request_with(outcome.cookie)) is not None
    clock.advance(minutes=31)
    assert store.session_of(request_with(outcome.cookie)) is None
    assert store.session_of(request_with("forged")) is None and store.session_of(request_with(None)) is None
    actions = [(e.username, e.action, e.outcome) for e in reversed(store.audit_entries())]
    assert actions == [("cli", "account-add", "ok"), ("wangfang", "login", "refused"), ("wangfang", "login", "ok")]
    assert "wangfang,login,,refused" in store.audit_csv().replace('"', "")


def test_a_locked_disabled_or_development_account_cannot_log_in(store_factory, clock):
    store = store_factory()
    store.add_account(username="wangfang", display_name="王芳", unit_code=STREET, department=None,
                      roles=["window"], password="a-long-secret-42")
    for _ in range(rules.MAX_FAILED_LOGINS):
        store.login("wangfang", "wrong-password")
    assert "锁定" in store.login("wangfang", "a-long-secret-42").reason
    clock.advance(minutes=16)
    session = store.login("wangfang", "a-long-secret-42")
    assert session.ok
    store.set_disabled("wangfang")
    assert store.session_of(request_with(session.cookie)) is None       # disabling ends the sessions
    assert "停用" in store.login("wangfang", "a-long-secret-42").reason

    assert store.ensure_development_accounts() == ["dev-window", "dev-supervisor", "dev-admin"]
    assert store.ensure_development_accounts() == []                     # once
    assert store.login("dev-window", DEV_PASSWORD).ok
    production = store_factory(SANJI_PROFILE="production",
                               SANJI_ASSERTION_KEY="a-real-production-key-of-at-least-32-bytes")
    assert "开发账号" in production.login("dev-window", DEV_PASSWORD).reason
    with pytest.raises(rules.AccountRefused):
        production.ensure_development_accounts()


def test_production_refuses_the_development_assertion_key(store_factory):
    from services.console.settings import ConsoleConfigError

    with pytest.raises(ConsoleConfigError):
        store_factory(SANJI_PROFILE="production")


# ── item action forms ──────────────────────────────────────────────────────────────────────────────────

def test_action_forms_turn_into_api_bodies_or_field_errors(catalogue):
    matter = catalogue.matters["residence-permit"]

    def body(action, **fields):
        form = MultiDict([(k, v) for k, values in fields.items()
                          for v in (values if isinstance(values, list) else [values])])
        return action_body(action, form, matter, catalogue)

    assert body("resolve") == ({"result": "", "delivery": {"method": ""}},
                               {"result": "请填写办理结果", "method": "请选择送达方式"})
    assert body("resolve", result="已制证", method="pickup")[1] == {"place": "窗口领取须填写领取地点"}
    assert body("resolve", result="已制证", method="door", agent_id="sw-017") == (
        {"result": "已制证", "delivery": {"method": "door", "agent_id": "sw-017"}}, {})
    assert body("reject", reason_code="made-up")[1] == {"reason_code": "请选择原因"}
    reason = next(iter(catalogue.reject_reasons))
    assert body("reject", reason_code=reason) == ({"reason_code": reason, "note": ""}, {})
    assert body("request-supplement", materials=["photo"], due_in_working_days="0")[1] == {
        "due_in_working_days": "补正期限为 1 到 30 个工作日"}
    assert body("record-supplement", materials=["not-a-material"])[1] == {"materials": "材料不在该事项的材料清单中"}
    assert body("record-supplement")[1] == {"materials": "请至少选择一项材料"}
    assert body("custody", step="collected_at_home", what="")[1] == {"what": "请填写交接的材料或结果"}
    assert body("claim") == ({}, {})
