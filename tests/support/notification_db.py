"""Read the notification service's tables from a test, on a connection of its own."""

from __future__ import annotations

from sqlalchemy import create_engine, select

from services.notification.adapters.orm import Delivery, DeliveryAttempt, InboxMessage
from shared.db import normalise_url


def _rows(database_url: str, query) -> list[dict]:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()


def deliveries(database_url: str, **equal) -> list[dict]:
    query = select(*Delivery.__table__.columns).order_by(Delivery.created_at, Delivery.kind, Delivery.channel)
    for column, value in equal.items():
        query = query.where(Delivery.__table__.c[column] == value)
    return _rows(database_url, query)


def attempts(database_url: str, delivery_id: str | None = None) -> list[dict]:
    query = select(*DeliveryAttempt.__table__.columns).order_by(DeliveryAttempt.seq)
    if delivery_id is not None:
        query = query.where(DeliveryAttempt.delivery_id == delivery_id)
    return _rows(database_url, query)


def inbox(database_url: str) -> list[dict]:
    return _rows(database_url, select(*InboxMessage.__table__.columns).order_by(InboxMessage.created_at))


def one(database_url: str, **equal) -> dict:
    [row] = deliveries(database_url, **equal)
    return row
