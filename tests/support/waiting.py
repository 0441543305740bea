"""Waiting in tests for what another greenthread or process does: a bound, never a speed target."""

from __future__ import annotations

import time

import eventlet


def wait_until(check, timeout: float = 20.0, what: str = "condition"):
    """Call ``check`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        eventlet.sleep(0.02)
    result = check()
    if result:
        return result
    raise AssertionError(f"{what} not met within {timeout}s")
