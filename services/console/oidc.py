"""Sign-in through an OpenID Connect provider (authorization code flow), when configured.

The ID token is verified here with PyJWT against the provider's JWKS (fetched from
``SANJI_CONSOLE_OIDC_JWKS_URL`` and cached, or read from ``SANJI_CONSOLE_OIDC_JWKS_FILE``): signature
(RS256/ES256 only, never ``none`` or HS*), issuer, audience (our client id), expiry and the nonce we sent.
The person's ``sub`` must be bound to a console account (``sanji users add ... --oidc-subject SUB``):
the provider says who someone is, the console's account says what they may do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jwt
import requests

ALGORITHMS = ["RS256", "ES256"]


class OidcRefused(Exception):
    """The provider's answer cannot be trusted; ``message`` is for the login page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class KeySource:
    """The provider's signing keys: a JWKS document from a file or a URL (refreshed after ``lifespan``)."""

    url: str | None = None
    file: str | None = None
    lifespan: float = 300.0
    _cached: dict | None = None
    _fetched_at: float = 0.0

    def keys(self, refresh: bool = False) -> jwt.PyJWKSet:
        if self.file:
            return jwt.PyJWKSet.from_dict(json.loads(Path(self.file).read_text(encoding="utf-8")))
        if refresh or self._cached is None or time.monotonic() - self._fetched_at > self.lifespan:
            try:
                response = requests.get(self.url, timeout=5)
                response.raise_for_status()
                self._cached, self._fetched_at = response.json(), time.monotonic()
            except (requests.RequestException, ValueError):
                raise OidcRefused("统一身份认证服务暂时无法连接，请稍后再试") from None
        return jwt.PyJWKSet.from_dict(self._cached)

    def key_for(self, kid: str | None):
        for refresh in (False, True):  # a key we do not know yet: the provider may have rotated its keys
            keys = self.keys(refresh)
            for key in keys.keys:
                if kid is None or key.key_id == kid:
                    return key
            if self.file:
                break
        raise OidcRefused("统一身份认证的签名密钥无法识别")


def verify_id_token(id_token: str, keys: KeySource, *, issuer: str, client_id: str, nonce: str) -> dict:
    """The ID token's claims once signature, issuer, audience, expiry and nonce check out."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise OidcRefused("统一身份认证返回的凭据无效") from None
    if header.get("alg") not in ALGORITHMS:
        raise OidcRefused("统一身份认证返回的凭据签名算法不被接受")
    key = keys.key_for(header.get("kid"))
    try:
        claims = jwt.decode(id_token, key.key, algorithms=ALGORITHMS, audience=client_id, issuer=issuer,
                            leeway=30, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise OidcRefused("统一身份认证凭据已过期，请重新登录") from None
    except jwt.PyJWTError:
        raise OidcRefused("统一身份认证返回的凭据无效") from None
    if claims.get("nonce") != nonce:
        raise OidcRefused("统一身份认证返回的凭据与本次登录不符")
    return claims


def authorize_url(authorize_endpoint: str, *, client_id: str, redirect_uri: str, state: str, nonce: str) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "scope": "openid profile", "state": state, "nonce": nonce})
    return f"{authorize_endpoint}{'&' if '?' in authorize_endpoint else '?'}{query}"


def exchange_code(token_endpoint: str, *, code: str, redirect_uri: str, client_id: str,
                  client_secret: str | None) -> str:
    """The ID token for an authorization code (client_secret_post)."""
    try:
        response = requests.post(token_endpoint, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, **({"client_secret": client_secret} if client_secret else {})}, timeout=5)
        response.raise_for_status()
        return response.json()["id_token"]
    except (requests.RequestException, ValueError, KeyError):
        raise OidcRefused("统一身份认证未能完成登录，请重试") from None
