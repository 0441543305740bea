"""Person assertions (console -> services) and OpenID Connect ID tokens, with locally generated keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.console.oidc import KeySource, OidcRefused, verify_id_token
from shared.auth import PersonAssertions, TokenRegistry, issue_person_assertion
from shared.config import REPO_ROOT
from shared.http import ApiError

KEY = "unit-test-assertion-key-of-32-bytes-or-more"


def _assertion(key=KEY, now=None, **overrides):
    claims = dict(username="wangfang", name="王芳", unit_code="320113003000", kind="staff", department=None,
                  roles=("window",), now=now or datetime.now(UTC))
    claims.update(overrides)
    return issue_person_assertion(key, **claims)


def test_a_person_assertion_becomes_a_principal_that_names_the_person():
    principal = PersonAssertions([KEY]).verify(_assertion())
    assert (principal.name, principal.kind, principal.unit_code, principal.person) == (
        "wangfang", "staff", "320113003000", "王芳")
    assert principal.actor == "王芳（wangfang）" and principal.roles == ("window",)
    assert jwt.get_unverified_header(_assertion())["kid"]


def test_expired_foreign_or_tampered_assertions_are_refused():
    verifier = PersonAssertions([KEY])
    for token in (_assertion(now=datetime.now(UTC) - timedelta(minutes=6)),   # five minutes, then gone
                  _assertion(key="another-key-also-long-enough-for-hs256"),
                  _assertion()[:-3] + "abc"):
        with pytest.raises(ApiError) as refused:
            verifier.verify(token)
        assert refused.value.status == 401
    rotated = PersonAssertions(["a-new-key-long-enough-for-hs256-signing", KEY])  # an older key still verifies
    assert rotated.verify(_assertion()).name == "wangfang"
    with pytest.raises(ValueError):
        _assertion(kind="kiosk")                                              # people are never kiosks


def test_the_token_registry_takes_assertions_and_machine_tokens():
    registry = TokenRegistry.from_file(REPO_ROOT / "config" / "dev-tokens.yaml")
    assertions = PersonAssertions([KEY])
    assert registry.authenticate(f"Bearer {_assertion()}", assertions).person == "王芳"
    machine = registry.authenticate("Bearer dev-staff-maigaoqiao", assertions)
    assert machine.person is None and machine.actor == machine.name
    with pytest.raises(ApiError):
        registry.authenticate(f"Bearer {_assertion()}")                      # a service without the key


@pytest.fixture
def provider(tmp_path):
    """A local OpenID provider's key pair and its JWKS file."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    public_jwk.update(kid="key-1", use="sig", alg="RS256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk]}), encoding="utf-8")

    def id_token(**overrides):
        now = datetime.now(UTC)
        claims = {"iss": "https://idp.example", "aud": "sanji-console", "sub": "person-7", "nonce": "n-1",
                  "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=5)).timestamp())}
        claims.update(overrides)
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": "key-1"})

    return KeySource(file=str(jwks)), id_token


def test_an_id_token_from_the_provider_is_verified_against_its_jwks(provider):
    keys, id_token = provider
    claims = verify_id_token(id_token(), keys, issuer="https://idp.example", client_id="sanji-console", nonce="n-1")
    assert claims["sub"] == "person-7"
    for bad in (id_token(nonce="n-2"), id_token(aud="someone-else"), id_token(iss="https://evil.example"),
                id_token(exp=int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())),
                jwt.encode({"sub": "person-7"}, "shared-secret", algorithm="HS256")):
        with pytest.raises(OidcRefused):
            verify_id_token(bad, keys, issuer="https://idp.example", client_id="sanji-console", nonce="n-1")
