"""Webhook calls: one POST of the event (structured CloudEvents JSON), signed to the Standard Webhooks spec
(``shared.webhooks``), over a keep-alive session, with a per-request timeout and no redirects.

It never raises for a delivery problem: it says what happened (status code, a short error without the response's
body, which is the receiver's and may hold anything), and how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter

from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.webhooks import webhook_headers


@dataclass(frozen=True)
class CallResult:
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookCaller:
    description = "webhook sinks (Standard Webhooks signatures)"

    def __init__(self, *, timeout: float, pool_size: int = 20, wall_clock: Callable[[], float] = time.time):
        self._timeout = timeout
        self._wall_clock = wall_clock
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def call(self, url: str, message_id: str, body: str, secrets: tuple[str, ...]) -> CallResult:
        payload = body.encode("utf-8")
        # The receiver compares the timestamp with its own clock: this machine's wall clock, not the service clock.
        at = datetime.fromtimestamp(self._wall_clock(), UTC)
        headers = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE + "; charset=utf-8", "User-Agent": "sanji-subscriptions",
                   **webhook_headers(secrets, message_id, at, payload)}
        started = time.monotonic()
        try:
            response = self._session.post(url, data=payload, headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except requests.Timeout:
            return CallResult(False, None, f"no answer within {self._timeout:g}s", _since(started))
        except requests.RequestException as exc:
            return CallResult(False, None, f"connection failed ({type(exc).__name__})", _since(started))
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return CallResult(True, status, None, _since(started))
        return CallResult(False, status, f"HTTP {status}", _since(started))


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
