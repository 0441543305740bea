"""Rating links (好差评 via the completion SMS): a signed, expiring token, so a resident rates without a login.

The token names the case and its expiry, MAC'd with HMAC-SHA256 under a key from configuration
(``SANJI_EVALUATION_LINK_KEY``); it carries no personal data. In the kernel because two services need it:
the evaluation service verifies it, and the notification service may put it into the completion message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from shared.refusal import Refusal

DEV_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "config" / "evaluation-dev.yaml"


def configured_link_key(config: Mapping) -> str | None:
    """The rating-link key: ``SANJI_EVALUATION_LINK_KEY``, else ``link_key`` in the evaluation settings file
    (``SANJI_EVALUATION_SETTINGS_FILE``, by default the development file config/evaluation-dev.yaml); None when
    neither has one. The production profile refuses the development file's key (shared/production.py)."""
    key = str(config.get("SANJI_EVALUATION_LINK_KEY") or "").strip()
    if key:
        return key
    import yaml

    path = Path(config.get("SANJI_EVALUATION_SETTINGS_FILE") or DEV_SETTINGS_FILE)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        document = {}
    key = str(document.get("link_key") or "").strip() if isinstance(document, dict) else ""
    return key or None


class InvalidLink(Refusal):
    status = 403


class ExpiredLink(Refusal):
    status = 410


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_rating_link(key: str, *, case_id: str, expires_at: datetime) -> str:
    """``<claims>.<mac>``: the case and the expiry (Unix seconds), MAC'd with the link key."""
    if not key:
        raise ValueError("a rating link needs a key")
    claims = _b64(json.dumps({"c": case_id, "e": int(expires_at.timestamp())}, separators=(",", ":")).encode())
    mac = hmac.new(key.encode(), claims.encode(), hashlib.sha256).digest()
    return f"{claims}.{_b64(mac)}"


def verify_rating_link(key: str, token: str, *, now: datetime) -> str:
    """The case id the token was made for; ``invalid_link`` (403) or ``link_expired`` (410) otherwise."""
    claims, _, mac = (token or "").partition(".")
    try:
        expected = hmac.new(key.encode(), claims.encode(), hashlib.sha256).digest()
        if not mac or len(token) > 512 or not hmac.compare_digest(expected, _unb64(mac)):
            raise ValueError
        document = json.loads(_unb64(claims))
        case_id, expires = str(document["c"]), int(document["e"])
    except (ValueError, KeyError, TypeError):
        raise InvalidLink("invalid_link", "the rating link is not valid") from None
    if now.timestamp() > expires:
        raise ExpiredLink("link_expired", "the rating link has expired; rate at a kiosk or on the lookup page")
    return case_id
