from __future__ import annotations

from sqlalchemy import create_engine, func, select, table

from shared.db import normalise_url


def count_rows(database_url: str, *table_names: str) -> dict[str, int]:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return {name: connection.scalar(select(func.count()).select_from(table(name))) for name in table_names}
    finally:
        engine.dispose()


INTAKE_TABLES = ("intake_cases", "intake_applicants", "intake_case_items", "intake_deferred_materials",
                 "intake_idempotency_keys", "outbox_messages")


def outbox_bodies(database_url: str, event_type_suffix: str) -> list[dict]:
    """The CloudEvents a service recorded in its outbox for one type (``cn.sanji.<suffix>``), in order."""
    import json

    from sqlalchemy import text

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            bodies = connection.execute(
                select(text("body")).select_from(text("outbox_messages"))
                .where(text("event_type = :t")).order_by(text("seq")),
                {"t": f"cn.sanji.{event_type_suffix}"}).scalars().all()
    finally:
        engine.dispose()
    return [json.loads(body) for body in bodies]
