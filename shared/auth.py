"""Bearer-token authentication for kiosks, staff and department systems, and person assertions.

Each token is bound to one principal: a kind and the unit whose jurisdiction it acts in. The tokens
file lists each token by its SHA-256 digest, so the file itself grants nothing if read. A development
file may list ``token:`` in clear for convenience; production files should carry ``sha256:`` only.

People (window staff, supervisors, specialists) sign in to the console with personal accounts. The console
then calls a service with a *person assertion*: a JWT it signs (HS256, key from ``SANJI_ASSERTION_KEY``,
named by a key id) that expires after five minutes and says who the person is (``sub``, ``name``), the
unit and department they act for, their roles, and which kind of client they act as. A service verifies
it here and gets a Principal whose ``person`` names the person, so the jurisdiction rules are the
unit's and the history names the person.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import jwt
import structlog
import yaml

from shared.http import ApiError

log = structlog.get_logger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_POINT_ID = re.compile(r"sp-[a-z0-9]+(?:-[a-z0-9]+)*")

# specialist: a “先解决问题再说” specialist of the 办不成事 window, acting within its unit's jurisdiction.
# console: the console service itself, for the narrow calls it makes on nobody's behalf (the resident
# lookup); every other API refuses it.
PrincipalKind = Literal["kiosk", "staff", "department", "specialist", "console"]


@dataclass(frozen=True)
class Principal:
    name: str
    kind: PrincipalKind
    unit_code: str            # a kiosk's community; a staff member's or department's unit
    department: str | None = None
    # A service point's self-service terminal: a kiosk of the point's community, bound to that point too.
    service_point_id: str | None = None
    person: str | None = None  # the signed-in person's name, when a person (not a machine) acts
    roles: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        """Who acted, as history records it: the person and their account, or the machine client."""
        return f"{self.person}（{self.name}）" if self.person else self.name

    def may_see_department(self, department_code: str | None) -> bool:
        """Whether this client may see a thing of ``department_code``. A department system sees its own
        department only, and one whose token names no department sees nothing (it never means "every
        department"); staff and specialists act for their unit whatever the department."""
        if self.kind == "department":
            return self.department is not None and department_code == self.department
        return self.department in (None, department_code)


ASSERTION_ISSUER = "sanji-console"
ASSERTION_AUDIENCE = "sanji-services"
ASSERTION_LIFETIME = timedelta(minutes=5)
PERSON_KINDS = ("staff", "department", "specialist")


def assertion_key_id(key: str) -> str:
    """A key's public name (so keys can be rotated): the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def issue_person_assertion(key: str, *, username: str, name: str, unit_code: str, kind: str,
                           department: str | None, roles: tuple[str, ...] | list[str], now: datetime) -> str:
    """A five-minute assertion that ``username`` acts as ``kind`` for ``unit_code`` (signed by the console)."""
    if kind not in PERSON_KINDS:
        raise ValueError(f"a person acts as {', '.join(PERSON_KINDS)}, not {kind!r}")
    claims = {"iss": ASSERTION_ISSUER, "aud": ASSERTION_AUDIENCE, "sub": username, "name": name,
              "unit": unit_code, "department": department, "roles": list(roles), "kind": kind,
              "iat": int(now.timestamp()), "exp": int((now + ASSERTION_LIFETIME).timestamp())}
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": assertion_key_id(key)})


class PersonAssertions:
    """Verifies person assertions against the configured keys (the first signs; later ones still verify)."""

    def __init__(self, keys: list[str]):
        self._keys = {assertion_key_id(key): key for key in keys if key}

    @classmethod
    def from_config_value(cls, value: str | None) -> PersonAssertions:
        return cls((value or "").split())

    @staticmethod
    def looks_like_assertion(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("eyJ")

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ApiError(401, "unauthenticated", "the person assertion is malformed") from None
        key = self._keys.get(str(header.get("kid", "")))
        if key is None:
            raise ApiError(401, "unauthenticated", "the person assertion is signed with an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=["HS256"], audience=ASSERTION_AUDIENCE,
                                issuer=ASSERTION_ISSUER, leeway=10,
                                options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "unauthenticated", "the person assertion has expired") from None
        except jwt.PyJWTError:
            raise ApiError(401, "unauthenticated", "the person assertion is not valid") from None
        unit, kind = str(claims.get("unit", "")), claims.get("kind")
        if len(unit) != 12 or not unit.isdigit() or kind not in PERSON_KINDS:
            raise ApiError(401, "unauthenticated", "the person assertion names no valid unit or kind")
        return Principal(name=str(claims["sub"]), kind=kind, unit_code=unit,
                         department=claims.get("department") or None,
                         person=str(claims.get("name") or claims["sub"]),
                         roles=tuple(str(role) for role in claims.get("roles") or ()))


class TokenFileError(ValueError):
    pass


class TokenRegistry:
    def __init__(self, principals_by_digest: dict[str, Principal]):
        self._by_digest = principals_by_digest

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def from_file(cls, path: Path) -> TokenRegistry:
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise TokenFileError(f"tokens file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise TokenFileError(f"tokens file {path}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(document, dict) or not isinstance(document.get("tokens"), list):
            raise TokenFileError(f"tokens file {path}: expected a mapping with a 'tokens' list")
        if not document["tokens"]:
            raise TokenFileError(f"tokens file {path}: lists no tokens, so no client could authenticate")
        principals: dict[str, Principal] = {}
        for index, entry in enumerate(document["tokens"]):
            if not isinstance(entry, dict):
                raise TokenFileError(f"tokens file {path}, entry {index + 1}: must be a mapping")
            where = f"tokens file {path}, entry {index + 1} ({entry.get('name', '?')})"
            if "sha256" in entry:
                digest = str(entry["sha256"]).lower()
                if not _SHA256_HEX.fullmatch(digest):
                    raise TokenFileError(f"{where}: sha256 must be 64 hexadecimal digits")
            elif "token" in entry:
                digest = cls.digest(str(entry["token"]))
            else:
                raise TokenFileError(f"{where}: needs 'sha256' (or 'token' in development)")
            kind = entry.get("kind")
            if kind not in ("kiosk", "staff", "department", "specialist", "console"):
                raise TokenFileError(f"{where}: kind must be kiosk, staff, department, specialist or console")
            unit = str(entry.get("unit", ""))
            if len(unit) != 12 or not unit.isdigit():
                raise TokenFileError(f"{where}: unit must be a 12-digit division code")
            service_point = entry.get("service_point")
            if service_point is not None and (kind != "kiosk" or not isinstance(service_point, str)
                                              or not _POINT_ID.fullmatch(service_point)):
                raise TokenFileError(f"{where}: service_point binds a kiosk to a point id like 'sp-qx-xinhe-suguo'")
            if kind == "department" and not entry.get("department"):
                # Not refused, so that a file with one such slip still starts; but it grants nothing.
                log.warning("a department token names no department; it will see nothing",
                            token_name=entry.get("name"))
            if digest in principals:
                raise TokenFileError(f"{where}: the same token is listed twice")
            principals[digest] = Principal(name=str(entry.get("name", f"client-{index + 1}")), kind=kind,
                                           unit_code=unit, department=entry.get("department") or None,
                                           service_point_id=service_point)
        return cls(principals)

    def authenticate(self, authorization_header: str | None,
                     assertions: PersonAssertions | None = None) -> Principal:
        scheme, _, token = (authorization_header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "send 'Authorization: Bearer <token>'")
        if assertions is not None and PersonAssertions.looks_like_assertion(token.strip()):
            return assertions.verify(token.strip())
        # Looking up the digest leaks nothing useful through timing: learning a digest's prefix does
        # not help find a token that hashes to it.
        principal = self._by_digest.get(self.digest(token.strip()))
        if principal is None:
            raise ApiError(401, "unauthenticated", "the bearer token is not recognised")
        return principal
