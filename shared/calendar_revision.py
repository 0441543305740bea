"""When a service revises the provisional deadlines it stores (shared/workdays.py ``revise_deadline``).

Each owning service (routing: item deadlines and supplement due dates; intake: 容缺 due dates) runs a timer
that asks its ``RevisionTrigger`` whether a pass is due: at the first tick after a start, whenever the
calendar's version changed (the override file was reloaded, e.g. after ``sanji calendar load``), and every
``full_pass_seconds`` besides, which catches a row another transaction held locked during the pass. The pass
itself is idempotent, so an extra one costs a read of the rows still flagged provisional and nothing else.
"""

from __future__ import annotations

import threading
import time

from nameko.extensions import DependencyProvider

FULL_PASS_SECONDS = 600.0


class RevisionTrigger:
    def __init__(self, full_pass_seconds: float = FULL_PASS_SECONDS, monotonic=time.monotonic):
        self._seen_version: int | None = None
        self._last_pass: float | None = None
        self._full_pass_seconds = full_pass_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()

    def due(self, calendar) -> int | None:
        """The calendar version to revise for, or None when no pass is due."""
        version = calendar.version
        now = self._monotonic()
        with self._lock:
            if (self._seen_version == version and self._last_pass is not None
                    and now - self._last_pass < self._full_pass_seconds):
                return None
            return version

    def done(self, version: int) -> None:
        """A pass for ``version`` finished (a failed pass is not marked: the next tick tries again)."""
        with self._lock:
            self._seen_version, self._last_pass = version, self._monotonic()


class RevisionTriggerProvider(DependencyProvider):
    """One ``RevisionTrigger`` per service container (per replica)."""

    def setup(self):
        self.trigger = RevisionTrigger()

    def get_dependency(self, worker_ctx):
        return self.trigger
