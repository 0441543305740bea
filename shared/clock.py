"""Time and identifiers are injected, so tests can freeze them."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

# Development only (the production profile refuses it, shared/production.py): a file holding a number of
# seconds the services' clock runs ahead of the machine's. The chaos suite writes it to jump the clock the
# sweeps read (容缺 expiry, 督办 warnings, 吹哨 limits) while everything runs; docs/reliability.md.
CLOCK_OFFSET_FILE_VARIABLE = "SANJI_CLOCK_OFFSET_FILE"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def __init__(self, offset_file: str | None = None):
        self._offset_file = offset_file or os.environ.get(CLOCK_OFFSET_FILE_VARIABLE, "").strip() or None
        self._offset = timedelta(0)
        self._checked_at = 0.0

    def now(self) -> datetime:
        if self._offset_file is None:
            return datetime.now(UTC)
        return datetime.now(UTC) + self._current_offset()

    def _current_offset(self) -> timedelta:
        if time.monotonic() - self._checked_at >= 0.5:  # read at most twice a second
            self._checked_at = time.monotonic()
            try:
                with open(self._offset_file, encoding="utf-8") as file:
                    self._offset = timedelta(seconds=float(file.read().strip() or 0))
            except (OSError, ValueError):
                self._offset = timedelta(0)
        return self._offset


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, **delta) -> None:
        self._at += timedelta(**delta)


def new_id() -> str:
    return str(uuid.uuid4())
