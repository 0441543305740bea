"""A department's webhook receiver, written from docs/notifications.md ("How the receiver checks a
request") alone: it verifies with the ``standardwebhooks`` package, as the documentation tells a department
to, and imports nothing from the notification service, so a test that passes through it shows the
documentation is enough to verify our requests."""

from __future__ import annotations

from standardwebhooks import Webhook, WebhookVerificationError


class WebhookReceiver:
    """The documented steps: the raw body, ``Webhook(secret).verify`` (signature and a timestamp within five
    minutes of the receiver's clock), then the ``webhook-id`` already seen is answered 200 and ignored."""

    def __init__(self, secret: str):
        self.webhook = Webhook(secret)
        self.accepted: list[bytes] = []
        self.refused: list[str] = []
        self.duplicates: list[str] = []
        self.ids: list[str] = []          # the webhook-id of every verified request, duplicates included
        self._seen: set[str] = set()

    def receive(self, headers, body: bytes) -> tuple[int, dict]:
        try:
            self.webhook.verify(body, dict(headers))
        except WebhookVerificationError as exc:
            self.refused.append(str(exc))
            return 401, {"error": "bad_signature"}
        message_id = {key.lower(): value for key, value in headers.items()}["webhook-id"]
        self.ids.append(message_id)
        if message_id in self._seen:
            self.duplicates.append(message_id)
            return 200, {"received": message_id, "duplicate": True}
        self._seen.add(message_id)
        self.accepted.append(body)
        return 200, {"received": message_id}
