"""The production profile's rule for the console: no development account may remain in its table.

Registered with ``shared.production`` when the console's service module is imported, which `sanji serve
console` does before it checks the settings.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from services.console.adapters.orm import Account
from shared.config import Settings
from shared.db import session_factory, shared_engine
from shared.production import register_check


@register_check
def development_accounts(service: str, settings: Settings) -> list[str]:
    if service not in ("console", ""):
        return []
    try:
        with session_factory(shared_engine(settings.database_url))() as session:
            names = list(session.scalars(select(Account.username).where(Account.development.is_(True),
                                                                         Account.disabled.is_(False))))
    except SQLAlchemyError:
        return []  # no console table yet (not migrated): nothing can be in it
    if names:
        return [f"the console has {len(names)} development account(s) ({', '.join(sorted(names)[:3])}): "
                "disable them (`sanji users disable NAME`)"]
    return []
