"""Who may see and do what: staff and specialists within their unit's jurisdiction, department systems within
their unit's jurisdiction and for their own department only (as in the other services)."""

from __future__ import annotations

from services.escalation.domain import ReportRefused
from shared.auth import Principal
from shared.catalogue import Catalogue


class Forbidden(ReportRefused):
    status = 403


class NotFound(ReportRefused):
    status = 404


def prefix_for(principal: Principal, catalogue: Catalogue, *, kinds: tuple[str, ...], reason: str) -> str:
    """The caller's jurisdiction as a division-code prefix; 403 for a kind of client that may not act here."""
    prefix = catalogue.jurisdiction_prefix(principal.unit_code) if principal.unit_code in catalogue.units else None
    if principal.kind not in kinds or prefix is None:
        raise Forbidden(reason, f"this is for {', '.join(kinds)} clients only", kinds=list(kinds))
    return prefix


def in_scope(prefix: str, *codes: str | None) -> bool:
    return any(code is not None and code.startswith(prefix) for code in codes)
