"""A department's webhook receiver, written from docs/notifications.md ("How the receiver checks a
request") alone: it imports nothing from the notification service, so a test that passes through it
shows the documentation is enough to verify our requests."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

TOLERANCE_SECONDS = 5 * 60


def verify(secret: str, headers, body: bytes, now: float | None = None) -> bool:
    timestamp = headers.get("X-Sanji-Timestamp", "")
    signature = headers.get("X-Sanji-Signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = "v1=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class WebhookReceiver:
    """Steps 1-5 of the documentation: raw body, headers and freshness, signature, seen delivery ids."""

    def __init__(self, secret: str, now: Callable[[], float] = time.time):
        self.secret = secret
        self.now = now
        self.accepted: list[bytes] = []
        self.refused: list[str] = []
        self.duplicates: list[str] = []
        self._seen: set[str] = set()

    def receive(self, headers, body: bytes) -> tuple[int, dict]:
        if not verify(self.secret, headers, body, now=self.now()):
            self.refused.append("signature")
            return 401, {"error": "bad_signature"}
        delivery_id = headers.get("X-Sanji-Delivery-Id", "")
        if delivery_id in self._seen:
            self.duplicates.append(delivery_id)
            return 200, {"received": delivery_id, "duplicate": True}
        self._seen.add(delivery_id)
        self.accepted.append(body)
        return 200, {"received": delivery_id}
