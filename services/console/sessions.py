"""Accounts, sessions and the audit trail in the console's own tables, as a nameko dependency.

``Accounts`` builds its engine and loads the catalogue once (``setup``); each worker gets an
``AccountStore`` with domain-named methods. The rules (hashing, expiry, lockout, roles) are in
``services/console/accounts.py``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nameko.extensions import DependencyProvider
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from services.console import accounts as rules
from services.console.adapters.orm import Account, AuditEntry, LoginSession
from services.console.oidc import KeySource
from services.console.settings import ConsoleSettings
from shared.auth import issue_person_assertion
from shared.catalogue import Catalogue, load_catalogue
from shared.clock import Clock, SystemClock
from shared.db import session_factory, shared_engine

SESSION_COOKIE = "sanji_session"
FORM_COOKIE = "sanji_form"  # a signed-out form's CSRF token (double submit)

DEV_USERNAME = "dev-window"
DEV_PASSWORD = "sanji-dev-password"  # noqa: S105 - documented development login, refused in production
DEV_ACCOUNTS = (  # (username, name, unit, department, roles), all with DEV_PASSWORD
    (DEV_USERNAME, "王窗口（开发）", "320113003000", None, ("window",)),
    ("dev-supervisor", "李督办（开发）", "320113003000", None, ("supervisor",)),
    ("dev-admin", "赵管理（开发）", "320113000000", None, ("admin", "supervisor")),
)


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request, with the session's CSRF token."""

    username: str
    display_name: str
    unit_code: str
    unit_name: str
    unit_level: str
    department: str | None
    department_name: str | None
    roles: tuple[str, ...]
    csrf_token: str
    expires_at: datetime

    @property
    def kind(self) -> str:
        return rules.acting_kind(self.roles, self.department)

    def has(self, *roles: str) -> bool:
        return bool(set(self.roles) & set(roles))

    @property
    def role_names(self) -> str:
        return "、".join(rules.ROLES[role] for role in self.roles if role in rules.ROLES)


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    cookie: str | None = None
    user: SignedIn | None = None
    reason: str = ""          # in Chinese, for the page


class AccountStore:
    def __init__(self, provider: Accounts, clock: Clock | None = None):
        self._factory = provider.session_factory
        self.settings: ConsoleSettings = provider.settings
        self.catalogue: Catalogue = provider.catalogue
        self._clock = clock or provider.clock
        self.oidc_keys = provider.oidc_keys
        self.policy = rules.SessionPolicy(idle=timedelta(minutes=self.settings.session_idle_minutes),
                                          max_age=timedelta(hours=self.settings.session_max_hours))

    # ── sessions ───────────────────────────────────────────────────────────────────────────────────
    def login(self, username: str, password: str) -> LoginOutcome:
        now = self._clock.now()
        username = (username or "").strip().lower()
        with self._factory() as session:
            account = session.get(Account, username) if username else None
            if account is not None and rules.locked(account.failed_logins, account.locked_until, now):
                self._audit(session, username, "login", outcome="locked")
                session.commit()
                return LoginOutcome(False, reason="登录失败次数过多，账号已暂时锁定，请 15 分钟后再试")
            good = rules.verify_password(account.password_hash if account else None, password or "")
            refusal = None
            if not good:
                refusal = "用户名或密码不正确"
            elif account.disabled:
                refusal = "该账号已停用，请联系系统管理员"
            elif account.development and self.settings.production:
                refusal = "开发账号不能在生产环境登录"
            if refusal:
                if account is not None and not good:
                    account.failed_logins, account.locked_until = rules.after_failed_login(account.failed_logins, now)
                self._audit(session, username or "-", "login", outcome="refused",
                            detail="bad credentials" if not good else refusal)
                session.commit()
                return LoginOutcome(False, reason=refusal)
            if rules.needs_rehash(account.password_hash):
                account.password_hash = rules.hash_password(password)
            account.failed_logins, account.locked_until = 0, None
            cookie, user = self._open_session(session, account, now)
            self._audit(session, account.username, "login")
            session.commit()
            return LoginOutcome(True, cookie=cookie, user=user)

    def login_by_oidc_subject(self, subject: str) -> LoginOutcome:
        now = self._clock.now()
        with self._factory() as session:
            account = session.scalars(select(Account).where(Account.oidc_subject == subject)).first()
            if account is None or account.disabled:
                self._audit(session, "-", "login-oidc", outcome="refused", detail="no active account for subject")
                session.commit()
                return LoginOutcome(False, reason="此统一身份认证账号未开通工作台权限，请联系系统管理员")
            cookie, user = self._open_session(session, account, now)
            self._audit(session, account.username, "login-oidc")
            session.commit()
            return LoginOutcome(True, cookie=cookie, user=user)

    def _open_session(self, session, account: Account, now: datetime) -> tuple[str, SignedIn]:
        secret = rules.new_secret()
        row = LoginSession(digest=rules.digest(secret), username=account.username, csrf_token=rules.new_secret(),
                           created_at=now, last_seen_at=now,
                           expires_at=self.policy.expiry_after_request(now, now))
        session.add(row)
        session.execute(delete(LoginSession).where(LoginSession.expires_at < now - timedelta(days=1)))
        return secret, self._signed_in(account, row)

    def session_of(self, request, *, touch: bool = True) -> SignedIn | None:
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return None
        now = self._clock.now()
        with self._factory() as session:
            row = session.get(LoginSession, rules.digest(secret))
            if row is None:
                return None
            account = session.get(Account, row.username)
            if (not self.policy.is_live(row.expires_at, now) or account is None or account.disabled
                    or (account.development and self.settings.production)):
                session.delete(row)
                session.commit()
                return None
            if touch and (now - row.last_seen_at) > timedelta(seconds=30):
                row.last_seen_at = now
                row.expires_at = self.policy.expiry_after_request(row.created_at, now)
                session.commit()
            return self._signed_in(account, row)

    def logout(self, request) -> None:
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return
        with self._factory() as session:
            row = session.get(LoginSession, rules.digest(secret))
            if row is not None:
                self._audit(session, row.username, "logout")
                session.delete(row)
                session.commit()

    def _signed_in(self, account: Account, row: LoginSession) -> SignedIn:
        unit = self.catalogue.units.get(account.unit_code)
        return SignedIn(username=account.username, display_name=account.display_name,
                        unit_code=account.unit_code, unit_name=unit.name if unit else account.unit_code,
                        unit_level=str(unit.level) if unit else "", department=account.department,
                        department_name=(self.catalogue.departments[account.department].name
                                         if account.department in self.catalogue.departments
                                         else account.department),
                        roles=account.role_list, csrf_token=row.csrf_token, expires_at=row.expires_at)

    def token_for(self, user: SignedIn, kind: str | None = None) -> str:
        """A five-minute person assertion for calling the other services as this person."""
        return issue_person_assertion(self.settings.assertion_key, username=user.username, name=user.display_name,
                                      unit_code=user.unit_code, kind=kind or user.kind,
                                      department=user.department, roles=user.roles,
                                      # transport time, not the service clock: tests freeze the latter
                                      now=datetime.now(UTC))

    # ── accounts ───────────────────────────────────────────────────────────────────────────────────
    def add_account(self, *, username: str, display_name: str, unit_code: str, department: str | None,
                    roles, password: str | None, oidc_subject: str | None = None, development: bool = False,
                    by: str = "cli") -> Account:
        username = (username or "").strip().lower()
        department = (department or "").strip() or None
        role_tuple = rules.check_new_account(username, (display_name or "").strip(), unit_code, department, roles,
                                             units=self.catalogue.units, departments=self.catalogue.departments)
        if password is None and not oidc_subject:
            raise rules.AccountRefused("password", "请设置密码（或绑定统一身份认证账号）")
        if password is not None:
            rules.check_password_strength(password, username)
        now = self._clock.now()
        with self._factory() as session:
            if session.get(Account, username) is not None:
                raise rules.AccountRefused("username", "该用户名已存在")
            account = Account(username=username, display_name=display_name.strip(), unit_code=unit_code,
                              department=department, roles=" ".join(role_tuple),
                              password_hash=rules.hash_password(password) if password is not None else None,
                              oidc_subject=oidc_subject or None, disabled=False, development=development,
                              created_at=now, failed_logins=0, locked_until=None)
            session.add(account)
            self._audit(session, by, "account-add", target=username,
                        detail=json.dumps({"unit": unit_code, "roles": list(role_tuple)}, ensure_ascii=False))
            try:
                session.commit()
            except IntegrityError:
                raise rules.AccountRefused("oidc_subject", "该统一身份认证账号已绑定其他用户") from None
            return account

    def set_disabled(self, username: str, disabled: bool = True, by: str = "cli") -> bool:
        with self._factory() as session:
            account = session.get(Account, username)
            if account is None:
                return False
            account.disabled = disabled
            if disabled:
                session.execute(delete(LoginSession).where(LoginSession.username == username))
            self._audit(session, by, "account-disable" if disabled else "account-enable", target=username)
            session.commit()
            return True

    def list_accounts(self) -> list[Account]:
        with self._factory() as session:
            return list(session.scalars(select(Account).order_by(Account.unit_code, Account.username)))

    def ensure_development_accounts(self) -> list[str]:
        """The documented development logins (`make run`); never in production."""
        if self.settings.production:
            raise rules.AccountRefused("environment", "development accounts are refused in production")
        made = []
        with self._factory() as session:
            existing = {row for row in session.scalars(select(Account.username))}
        for username, name, unit, department, roles in DEV_ACCOUNTS:
            if username not in existing:
                self.add_account(username=username, display_name=name, unit_code=unit, department=department,
                                 roles=roles, password=DEV_PASSWORD, development=True, by="setup")
                made.append(username)
        return made

    # ── audit trail ────────────────────────────────────────────────────────────────────────────────
    def audit(self, username: str, action: str, target: str = "", outcome: str = "ok", detail: str = "") -> None:
        with self._factory() as session:
            self._audit(session, username, action, target=target, outcome=outcome, detail=detail)
            session.commit()

    def _audit(self, session, username: str, action: str, target: str = "", outcome: str = "ok",
               detail: str = "") -> None:
        session.add(AuditEntry(at=self._clock.now(), username=username[:64], action=action, target=target[:128],
                               outcome=outcome, detail=detail[:2000]))

    def audit_entries(self, since: datetime | None = None, until: datetime | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.seq.desc())
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        if limit:
            query = query.limit(limit)
        with self._factory() as session:
            return list(session.scalars(query))

    def audit_csv(self, since: datetime | None = None, until: datetime | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["seq", "at", "username", "action", "target", "outcome", "detail"])
        for entry in reversed(self.audit_entries(since, until)):
            writer.writerow([entry.seq, entry.at.isoformat(), entry.username, entry.action, entry.target,
                             entry.outcome, entry.detail])
        return out.getvalue()


class Accounts(DependencyProvider):
    def __init__(self, clock: Clock | None = None):
        self.clock = clock or SystemClock()

    def setup(self):
        config = self.container.config
        self.settings = ConsoleSettings.from_config(config)
        self.catalogue = load_catalogue(config["SANJI_CATALOGUE_DIR"])
        self.session_factory = session_factory(shared_engine(config["DATABASE_URL"]))
        self.oidc_keys = KeySource(url=self.settings.oidc_jwks_url, file=self.settings.oidc_jwks_file)

    def get_dependency(self, worker_ctx):
        return AccountStore(self)


def store_for(database_url: str, catalogue_dir: str, config: dict | None = None,
              clock: Clock | None = None) -> AccountStore:
    """An AccountStore outside nameko (the `sanji users` command, tests)."""
    provider = Accounts(clock)
    provider.settings = ConsoleSettings.from_config(config or {})
    provider.catalogue = load_catalogue(catalogue_dir)
    provider.session_factory = session_factory(shared_engine(database_url))
    provider.oidc_keys = KeySource(url=provider.settings.oidc_jwks_url, file=provider.settings.oidc_jwks_file)
    return AccountStore(provider)
