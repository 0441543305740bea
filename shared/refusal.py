"""The one exception a domain raises to refuse a request: pure Python, so domain layers stay free of HTTP.

``shared.http.api_endpoint`` turns any ``Refusal`` into an RFC 9457 problem with the same status and
machine-readable reason, so entrypoints need no translation code of their own.
"""

from __future__ import annotations


class Refusal(Exception):
    """A request refused by a rule. ``reason`` is machine-readable; ``details`` go into the problem body."""

    status = 422

    def __init__(self, reason: str, message: str, *, status: int | None = None, **details):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details
        if status is not None:
            self.status = status
