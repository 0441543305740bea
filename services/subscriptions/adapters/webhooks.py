"""Webhook calls: one POST of the event (structured CloudEvents JSON), signed to the Standard Webhooks spec
(``shared.webhooks``), over keep-alive connections (a pool per endpoint), with a per-request timeout and no
redirects.

It uses urllib3 directly rather than requests: a fan-out sends hundreds of requests a second, and requests' own
layer (session merging, the proxy settings of the environment read again at every request, hooks) cost about as
much CPU as the HTTP exchange itself (``make bench-fanout``: 1.8 against 1.0 ms per call). Webhooks go out
directly: no proxy from the environment.

It never raises for a delivery problem: it says what happened (status code, a short error without the response's
body, which is the receiver's and may hold anything), and how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.webhooks import webhook_headers

# Keep-alive pools kept at once, one per endpoint (scheme, host, port); the least recently used goes beyond.
ENDPOINT_POOLS = 1000


@dataclass(frozen=True)
class CallResult:
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookCaller:
    description = "webhook sinks (Standard Webhooks signatures)"

    def __init__(self, *, timeout: float, pool_size: int = 20, endpoints: int = ENDPOINT_POOLS,
                 wall_clock: Callable[[], float] = time.time):
        self._timeout = timeout
        self._wall_clock = wall_clock
        # ``pool_size`` connections per endpoint at most (the sender's concurrency); none is ever retried here
        # (the retry policy decides when to try again).
        self._pool = urllib3.PoolManager(num_pools=endpoints, maxsize=pool_size, block=False, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout, read=timeout))

    def call(self, url: str, message_id: str, body: str, secrets: tuple[str, ...]) -> CallResult:
        payload = body.encode("utf-8")
        # The receiver compares the timestamp with its own clock: this machine's wall clock, not the service clock.
        at = datetime.fromtimestamp(self._wall_clock(), UTC)
        headers = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE + "; charset=utf-8", "User-Agent": "sanji-subscriptions",
                   **webhook_headers(secrets, message_id, at, payload)}
        started = time.monotonic()
        try:
            response = self._pool.request("POST", url, body=payload, headers=headers, redirect=False,
                                          preload_content=False)
            try:
                status = response.status
                response.drain_conn()   # read (and drop) the answer, so the connection can be used again
            finally:
                response.release_conn()
        except NewConnectionError as exc:   # a subclass of urllib3's TimeoutError, but nothing listens there
            return CallResult(False, None, f"connection failed ({type(exc).__name__})", _since(started))
        except TimeoutError:
            return CallResult(False, None, f"no answer within {self._timeout:g}s", _since(started))
        except (HTTPError, OSError) as exc:
            return CallResult(False, None, f"connection failed ({type(exc).__name__})", _since(started))
        if 200 <= status < 300:
            return CallResult(True, status, None, _since(started))
        return CallResult(False, status, f"HTTP {status}", _since(started))


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
