"""Routing's scrape-time gauges: items per status, and open items past their promised deadline.

Neither scans the items: the per-status figure is kept (services/routing/status_counts.py: folded counts plus
the changes not folded yet), and the overdue one is a range of the partial index of open items whose clock
runs (``ix_routing_items_running_clock_deadline``), so it reads the overdue open items only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.routing.adapters.orm import OPEN_STATUS_LIST, RoutedItem
from services.routing.lifecycle import FINAL_STATUSES, OPEN_STATUSES
from services.routing.status_counts import items_per_status
from shared.metrics import collector_up


class RoutingItemsCollector:
    """Routing's items per status, and the open ones past their promised deadline, at scrape time."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._statuses = sorted(OPEN_STATUSES | FINAL_STATUSES)

    def describe(self):
        return []

    def collect(self):
        now = datetime.now(UTC)
        # Written as the partial index's predicate is, so that the planner can use it.
        overdue = select(func.count()).select_from(RoutedItem).where(RoutedItem.status.in_(OPEN_STATUS_LIST),
                                                                     RoutedItem.clock_paused_at.is_(None),
                                                                     RoutedItem.promised_deadline < now)
        try:
            with Session(self._engine) as session:
                counts = items_per_status(session)
                overdue_count = session.execute(overdue).scalar_one()
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
