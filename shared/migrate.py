"""Schema migrations (Alembic): the kernel branch plus one branch per service.

Every service's branch depends on the kernel branch, so ``migrate("routing", url)`` brings the kernel
tables and the routing tables to head. On PostgreSQL an advisory lock makes concurrent replicas take
turns: the first migrates, the others find nothing left to do.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from shared.db import create_db_engine

_KERNEL_DIR = Path(__file__).resolve().parent / "migrations"
_SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"

# Any constant shared by all replicas; it only has to differ from other advisory locks in the database.
_MIGRATION_LOCK_ID = 0x53414E4A49  # "SANJI"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_KERNEL_DIR))
    locations = [str(_KERNEL_DIR / "versions")] + sorted(
        str(path) for path in _SERVICES_DIR.glob("*/migrations") if path.is_dir()
    )
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    return config


def migrate(service: str, database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
                connection.commit()
            try:
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, f"{service}@head")
                connection.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
                    connection.commit()
    finally:
        engine.dispose()


@cache
def _branch_revisions(service: str) -> tuple[str, frozenset[str], frozenset[str]] | None:
    """The head of the service's branch, the revisions this code knows of that branch, and of all
    branches (None: the service has no branch, e.g. a test double)."""
    script = ScriptDirectory.from_config(_alembic_config())
    try:
        (head,) = script.get_revisions(f"{service}@head")
    except Exception:  # noqa: BLE001
        return None
    branch = {revision.revision for revision in script.iterate_revisions(head.revision, "base")}
    everything = {revision.revision for revision in script.walk_revisions()}
    return head.revision, frozenset(branch), frozenset(everything)


def schema_current(engine: Engine, service: str) -> bool:
    """Whether the database holds this code's migrations of the service (for readiness).

    Current means the branch's head is applied, or a revision this code does not know is (a newer
    release migrated further during a rolling upgrade: the old pods stay ready). A known older revision,
    or none at all, means migrations are pending.
    """
    branch = _branch_revisions(service)
    if branch is None:
        return True
    head, known, all_known = branch
    try:
        with engine.connect() as connection:
            applied = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
    except Exception:  # noqa: BLE001 - no version table, or the database unreachable: not ready
        return False
    if head in applied:
        return True
    mine = applied & known
    if mine:
        return False  # an older revision of this branch: migrations pending
    return bool(applied - all_known)  # a newer release's revision; nothing applied at all: not ready
