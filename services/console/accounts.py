"""Personal staff accounts, sessions and CSRF: the rules, pure Python (no nameko, no SQLAlchemy).

- Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile).
- After ``MAX_FAILED_LOGINS`` misses in a row an account is locked for ``LOCKOUT``.
- A session ends after ``idle`` without a request, and at the latest ``max_age`` after login.
- Every form carries the session's CSRF token (a signed-out form: a token in a cookie and in the form).
- Roles decide which pages a person sees and which kind of client they act as towards the services.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES = {
    "window": "窗口人员",
    "department": "部门人员",
    "specialist": "“先解决问题再说”专员",
    "supervisor": "督办人员",
    "admin": "系统管理员",
}
STAFF_ROLES = ("window", "department", "specialist")  # work items and reports
DESK_ROLES = ("supervisor", "admin")

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verifying against this when the account does not exist takes as long as a real check, so the time a
# login takes does not tell whether the username exists.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountRefused(ValueError):
    """A bad value for an account: ``field`` names the form field, ``message`` says why in Chinese."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_password_strength(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRefused("password", f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    if username and username.lower() in password.lower():
        raise AccountRefused("password", "密码不能包含用户名")


def parse_roles(roles: list[str] | tuple[str, ...] | str) -> tuple[str, ...]:
    names = roles.replace(",", " ").split() if isinstance(roles, str) else list(roles)
    unknown = [name for name in names if name not in ROLES]
    if unknown or not names:
        raise AccountRefused("roles", "角色须为：" + "、".join(f"{code}（{label}）" for code, label in ROLES.items()))
    return tuple(dict.fromkeys(names))


def check_new_account(username: str, display_name: str, unit_code: str, department: str | None,
                      roles, *, units: dict, departments: dict) -> tuple[str, ...]:
    """The account's roles, or AccountRefused for the first bad field in form order; ``units`` and
    ``departments`` are the catalogue's."""
    if not USERNAME.fullmatch(username or ""):
        raise AccountRefused("username", "用户名为 3–64 位小写字母、数字、点、横线或下划线，以字母开头")
    if not display_name or len(display_name) > 64:
        raise AccountRefused("display_name", "请填写姓名（不超过 64 字）")
    if unit_code not in units:
        raise AccountRefused("unit", "单位须为目录中的 12 位区划代码")
    if department and department not in departments:
        raise AccountRefused("department", "部门须为目录中的部门代码")
    roles = parse_roles(roles)
    if "department" in roles and not department:
        raise AccountRefused("department", "部门人员须指定部门")
    return roles


def acting_kind(roles: tuple[str, ...], department: str | None) -> str:
    """Which kind of client a person acts as towards the services (shared/auth.py PERSON_KINDS)."""
    if "department" in roles and department:
        return "department"
    if "specialist" in roles and not set(roles) & {"window", "supervisor", "admin"}:
        return "specialist"
    return "staff"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    max_age: timedelta

    def expiry_after_request(self, created_at: datetime, now: datetime) -> datetime:
        return min(now + self.idle, created_at + self.max_age)

    def is_live(self, expires_at: datetime, now: datetime) -> bool:
        return now < expires_at


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def locked(failed_logins: int, locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


def after_failed_login(failed_logins: int, now: datetime) -> tuple[int, datetime | None]:
    """The new miss count, and the lock's end when this miss reaches the limit."""
    count = failed_logins + 1
    return (0, now + LOCKOUT) if count >= MAX_FAILED_LOGINS else (count, None)
