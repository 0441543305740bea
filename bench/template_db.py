"""A template database for the bench: migrated, holding earlier items, made once and copied by each run.

PostgreSQL copies a template database file by file (``CREATE DATABASE … TEMPLATE``), so each run starts
from the same preloaded state in seconds instead of loading it again. The template's name carries the
item count and the schema's heads, so a migration added later makes a new one.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import create_engine, text

from bench.stack import POSTGRES_ADMIN_URL
from shared.db import normalise_url


def _schema_tag() -> str:
    from alembic.script import ScriptDirectory

    from shared.migrate import _alembic_config

    heads = sorted(ScriptDirectory.from_config(_alembic_config()).get_heads())
    return hashlib.sha256(" ".join(heads).encode()).hexdigest()[:8]


def ensure_template(items: int, say=print) -> str:
    from bench.preload_items import load_items
    from shared.bus import SERVICES
    from shared.migrate import migrate

    name = f"sanji_bench_template_{items}_{_schema_tag()}"
    admin = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": name}).scalar()
            if exists:
                return name
            say(f"making the template database {name}: migrations, then {items} earlier items by COPY (once) ...")
            building = name + "_building"
            connection.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{building}"'))
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{building}"
        for service in SERVICES:
            migrate(service, url)
        load_items(url, items, say=say)
        with admin.connect() as connection:  # only a finished load gets the name runs look for
            connection.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
        say(f"template {name} ready")
        return name
    finally:
        admin.dispose()
