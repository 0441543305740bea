"""Small signed values for the kiosk's cookies and forms: the CSRF token of a form, and the receipt a kiosk may
show for a few minutes after a submission. HMAC-SHA256 under a key derived from the console's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"sanji-console-kiosk:{purpose}".encode(), hashlib.sha256).digest()


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Signer:
    def __init__(self, key: bytes):
        self._key = key

    def sign(self, value: str, now: float) -> str:
        body = f"{value}|{int(now)}"
        return f"{body}|{_mac(self._key, body)}"

    def unsign(self, signed: str | None, now: float, max_age_seconds: float) -> str | None:
        """The value, when the signature holds and it is younger than ``max_age_seconds``; else None."""
        if not signed or signed.count("|") != 2:
            return None
        value, issued, mac = signed.split("|")
        if not hmac.compare_digest(mac, _mac(self._key, f"{value}|{issued}")):
            return None
        try:
            age = now - int(issued)
        except ValueError:
            return None
        return value if 0 <= age <= max_age_seconds else None


class CsrfGuard:
    """Double submit: a random nonce in an HttpOnly, SameSite=Strict cookie, and its MAC in a hidden field.

    A page on another site can neither read the cookie nor compute the MAC, so it cannot forge the form.
    """

    COOKIE = "sanji_kiosk_csrf"
    FIELD = "csrf_token"

    def __init__(self, key: bytes):
        self._key = key

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, nonce: str) -> str:
        return _mac(self._key, f"csrf|{nonce}")

    def check(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(self.token_for(nonce), token)
