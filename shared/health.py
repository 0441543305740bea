"""Readiness of a service's two dependencies: the broker and the database.

The broker check of a running service reads the state of the service's own long-lived connections
(``LinkState``) rather than opening a new connection on every probe:

- the consumer connection (required): nameko's queue consumer marks it up when its consumers are
  ready, and down when the connection is lost or a reconnect fails. A consuming service whose
  consumer is not connected does no work, whatever a fresh connection would say;
- the outbox relay connection (optional): it is opened lazily, only when there is something to
  publish, so "never used" counts as fine; it counts against health only after a failed publish, until
  the relay gets through again.

Only a service with no consumer falls back to opening a fresh connection (``broker_reachable``). This
also keeps Kubernetes probes (every few seconds, on every pod) from churning broker connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import structlog
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = structlog.get_logger(__name__)


class LinkState:
    """Whether one of the service's own broker connections is up, as its owner last saw it.

    ``up`` is None until the owner first connects (or, for an optional link, while it is unused).
    """

    def __init__(self, name: str, *, required: bool):
        self.name = name
        self.required = required
        self.up: bool | None = None
        self.since = time.monotonic()
        self.error: str | None = None
        self._lock = threading.Lock()

    def mark_up(self) -> None:
        with self._lock:
            if self.up is not True:
                if self.up is False:
                    log.info("broker link restored", link=self.name)
                self.up, self.since, self.error = True, time.monotonic(), None

    def mark_down(self, error: object = None) -> None:
        with self._lock:
            if self.up is not False:
                self.error = None if error is None else f"{type(error).__name__}: {error}"[:300]
                log.warning("broker link down", link=self.name, error=self.error)
                self.up, self.since = False, time.monotonic()

    def healthy(self) -> bool:
        return self.up is True if self.required else self.up is not False


def broker_reachable(amqp_uri: str, timeout: float = 2.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def broker_healthy(amqp_uri: str, links: Sequence[LinkState] = ()) -> bool:
    """The service's own links when it has a required one; otherwise a fresh connection."""
    if any(link.required for link in links):
        return all(link.healthy() for link in links)
    return all(link.healthy() for link in links) and broker_reachable(amqp_uri)


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            return True
    except Exception:  # noqa: BLE001
        return False


class CachedCheck:
    """A yes/no check run at most once per ``ttl`` seconds, whatever the rate of probes.

    /health is probed every few seconds by every probe of every pod, and /metrics scraped as often: each
    one running ``SELECT 1`` would put load on the database for nothing and, with a pool of one
    (SQLite), queue behind real work. A probe inside the window gets the last answer; one probe at a
    time refreshes it, the others meanwhile get the previous answer.
    """

    def __init__(self, check, ttl: float, clock=time.monotonic):
        self._check, self._ttl, self._clock = check, ttl, clock
        self._lock = threading.Lock()
        self._value: bool | None = None
        self._checked_at = float("-inf")

    def __call__(self) -> bool:
        if self._value is not None and self._clock() - self._checked_at < self._ttl:
            return self._value
        if not self._lock.acquire(blocking=self._value is None):
            return self._value  # another probe is refreshing it
        try:
            self._value = bool(self._check())
            self._checked_at = self._clock()
            return self._value
        finally:
            self._lock.release()


def health_report(service: str, amqp_uri: str, engine: Engine,
                  links: Sequence[LinkState] = (), database_check=None, schema_check=None) -> tuple[int, dict]:
    """Readiness: the broker and the database answer, and (``schema_check``) the service's migrations
    are applied. A service not ready is taken out of its load balancer but not restarted."""
    database_ok = database_check() if database_check is not None else database_reachable(engine)
    checks = {"broker": broker_healthy(amqp_uri, links), "database": database_ok}
    if schema_check is not None:
        checks["migrations"] = database_ok and schema_check()
    healthy = all(checks.values())
    return (200 if healthy else 503), {"status": "ok" if healthy else "degraded", "service": service,
                                       "checks": checks}
