"""Readiness of a service's two dependencies: the broker and the database."""

from __future__ import annotations

from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import Engine


def broker_reachable(amqp_uri: str, timeout: float = 2.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            return True
    except Exception:  # noqa: BLE001
        return False


def health_report(service: str, amqp_uri: str, engine: Engine) -> tuple[int, dict]:
    checks = {"broker": broker_reachable(amqp_uri), "database": database_reachable(engine)}
    healthy = all(checks.values())
    return (200 if healthy else 503), {"status": "ok" if healthy else "degraded", "service": service,
                                       "checks": checks}
