"""Standard Webhooks (https://www.standardwebhooks.com/), as every Sanji service that calls a department's
endpoint signs: secrets ``whsec_<base64>``, and the ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers, signed by the ``standardwebhooks`` reference library itself.

Several secrets sign one request during a rotation (one ``v1,<base64>`` each, space-separated), so a receiver
holding either the old or the new key accepts it. The notification service's department webhooks and the
subscriptions service's webhook sinks both sign here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import secrets
from datetime import datetime

from standardwebhooks import Webhook

WEBHOOK_SECRET_PREFIX = "whsec_"
MIN_WEBHOOK_SECRET_BYTES, MAX_WEBHOOK_SECRET_BYTES = 24, 64   # Standard Webhooks: 24 to 64 bytes of key


def webhook_headers(secrets_: tuple[str, ...], message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one request: ``webhook-id`` (the same on every retry: the receiver's
    idempotency key), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``, one ``v1,<base64>`` per
    secret, space-separated. The signing is the ``standardwebhooks`` package's own (``Webhook.sign``)."""
    signatures = " ".join(_signer(secret).sign(message_id, at, body) for secret in secrets_)
    return {"webhook-id": message_id, "webhook-timestamp": str(math.floor(at.timestamp())),
            "webhook-signature": signatures}


@functools.lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    """One signer per secret, kept: a fan-out signs hundreds of requests a second with the same few keys, and
    each new ``Webhook`` decodes its key again."""
    return Webhook(secret)


def webhook_secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a Standard Webhooks signing secret, or None: ``whsec_`` and the base64 of
    24 to 64 random bytes (the spec's range), as ``sanji webhooks new-secret`` prints."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return f"a secret must start with {WEBHOOK_SECRET_PREFIX} (Standard Webhooks format)"
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return f"a secret must be {WEBHOOK_SECRET_PREFIX} followed by base64"
    if not MIN_WEBHOOK_SECRET_BYTES <= len(key) <= MAX_WEBHOOK_SECRET_BYTES:
        return (f"a secret must hold {MIN_WEBHOOK_SECRET_BYTES} to {MAX_WEBHOOK_SECRET_BYTES} random bytes "
                f"(this one holds {len(key)})")
    return None


def new_webhook_secret() -> str:
    """A fresh signing secret: 32 random bytes, base64, prefixed ``whsec_``."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
