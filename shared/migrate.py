"""Schema migrations (Alembic): the kernel branch plus one branch per service.

Every service's branch depends on the kernel branch, so ``migrate("routing", url)`` brings the kernel
tables and the routing tables to head. On PostgreSQL an advisory lock makes concurrent replicas take
turns: the first migrates, the others find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

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
