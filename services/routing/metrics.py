"""Routing's scrape-time gauges: items per status, and open items past their promised deadline."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import column, func, select, table
from sqlalchemy.engine import Engine

from services.routing.lifecycle import FINAL_STATUSES, OPEN_STATUSES
from shared.db import UTCDateTime
from shared.metrics import collector_up

_routing_items = table("routing_items", column("status"), column("clock_paused_at"),
                       column("promised_deadline", UTCDateTime()))


class RoutingItemsCollector:
    """Routing's items per status, and the open ones past their promised deadline, at scrape time."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._open = sorted(OPEN_STATUSES)
        self._statuses = sorted(OPEN_STATUSES | FINAL_STATUSES)

    def describe(self):
        return []

    def collect(self):
        now = datetime.now(UTC)
        per_status = select(_routing_items.c.status, func.count()).group_by(_routing_items.c.status)
        overdue = select(func.count()).where(_routing_items.c.status.in_(self._open),
                                             _routing_items.c.clock_paused_at.is_(None),
                                             _routing_items.c.promised_deadline < now)
        try:
            with self._engine.connect() as connection:
                counts = dict(connection.execute(per_status).all())
                overdue_count = connection.execute(overdue).scalar_one()
        except Exception:  # noqa: BLE001
            yield collector_up("routing_items", False)
            return
        items = GaugeMetricFamily("sanji_routing_items", "Routing items per status", labels=["status"])
        for status in sorted(set(self._statuses) | set(counts)):
            items.add_metric([status], counts.get(status, 0))
        late = GaugeMetricFamily("sanji_routing_items_overdue",
                                 "Open items past their promised deadline (clock not paused)")
        late.add_metric([], overdue_count)
        yield items
        yield late
        yield collector_up("routing_items", True)
