"""Bearer-token authentication for kiosks, staff and department systems.

Each token is bound to one principal: a kind and the unit whose jurisdiction it acts in. The tokens
file lists each token by its SHA-256 digest, so the file itself grants nothing if read. A development
file may list ``token:`` in clear for convenience; production files should carry ``sha256:`` only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog
import yaml

from shared.http import ApiError

log = structlog.get_logger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# specialist: a “先解决问题再说” specialist of the 办不成事 window, acting within its unit's jurisdiction.
PrincipalKind = Literal["kiosk", "staff", "department", "specialist"]


@dataclass(frozen=True)
class Principal:
    name: str
    kind: PrincipalKind
    unit_code: str            # a kiosk's community; a staff member's or department's unit
    department: str | None = None

    def may_see_department(self, department_code: str | None) -> bool:
        """Whether this client may see a thing of ``department_code``. A department system sees its own
        department only, and one whose token names no department sees nothing (it never means "every
        department"); staff and specialists act for their unit whatever the department."""
        if self.kind == "department":
            return self.department is not None and department_code == self.department
        return self.department in (None, department_code)


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
            if kind not in ("kiosk", "staff", "department", "specialist"):
                raise TokenFileError(f"{where}: kind must be kiosk, staff, department or specialist")
            unit = str(entry.get("unit", ""))
            if len(unit) != 12 or not unit.isdigit():
                raise TokenFileError(f"{where}: unit must be a 12-digit division code")
            if kind == "department" and not entry.get("department"):
                # Not refused, so that a file with one such slip still starts; but it grants nothing.
                log.warning("a department token names no department; it will see nothing",
                            token_name=entry.get("name"))
            if digest in principals:
                raise TokenFileError(f"{where}: the same token is listed twice")
            principals[digest] = Principal(name=str(entry.get("name", f"client-{index + 1}")), kind=kind,
                                           unit_code=unit, department=entry.get("department") or None)
        return cls(principals)

    def authenticate(self, authorization_header: str | None) -> Principal:
        scheme, _, token = (authorization_header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "send 'Authorization: Bearer <token>'")
        # Looking up the digest leaks nothing useful through timing: learning a digest's prefix does
        # not help find a token that hashes to it.
        principal = self._by_digest.get(self.digest(token.strip()))
        if principal is None:
            raise ApiError(401, "unauthenticated", "the bearer token is not recognised")
        return principal
