"""The kiosk's and the lookup's nameko dependency: settings, intake's API, the kiosk tokens, throttles.

The kiosk calls intake with its own device token (a kiosk principal, bound to one community), so intake's
rules hold for the page too: a kiosk never acts for another community. The resident lookup calls intake with
the console's own service token (kind ``console``), the only principal intake answers a lookup for.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests
from nameko.extensions import DependencyProvider

from services.console.kiosk.circle import Places, load_places
from services.console.kiosk.guard import SlidingWindowLimiter
from services.console.kiosk.signing import Signer, derive_key
from services.console.settings import ConsoleSettings
from shared.auth import TokenRegistry
from shared.catalogue import load_catalogue
from shared.http import ApiError

DEV_CONSOLE_TOKEN = "dev-console-service"
CATALOGUE_TTL_SECONDS = 300


class IntakeUnavailable(Exception):
    """Intake did not answer (down, slow, or a 5xx): the page says so, and nothing was written by the page."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str | None:
        return self.body.get("reason") if isinstance(self.body, dict) and not self.ok else None


@dataclass(frozen=True)
class Device:
    """The kiosk in front of the resident: its token and the community it is bound to."""

    token: str
    community_code: str
    community_name: str
    name: str
    service_point_id: str | None = None  # a service point's own terminal (its coordinates place the circle)


class KioskBackend:
    def __init__(self, provider: KioskBackendProvider):
        self._p = provider

    # ── settings ───────────────────────────────────────────────────────────────────────────────────────────
    @property
    def settings(self) -> ConsoleSettings:
        return self._p.settings

    @property
    def idle_seconds(self) -> int:
        return self._p.idle_seconds

    @property
    def configured_token(self) -> str | None:
        return self._p.kiosk_token

    @property
    def console_token(self) -> str:
        """The console's own service token (kind ``console``): the lookup at intake, rating links at evaluation."""
        return self._p.console_token

    @property
    def receipts(self) -> Signer:
        return self._p.receipt_signer

    @property
    def per_client(self) -> SlidingWindowLimiter:
        return self._p.per_client

    @property
    def per_case(self) -> SlidingWindowLimiter:
        return self._p.per_case

    def public_url(self, request) -> str:
        return (self.settings.public_url or request.host_url).rstrip("/")

    def client_key(self, request) -> str:
        """An opaque key of the caller's address for intake's miss counting: the address itself never leaves."""
        address = request.remote_addr or "unknown"
        header = self._p.client_address_header
        if header and request.headers.get(header):
            # Behind a reverse proxy every resident comes from its address: the proxy names the real one
            # (X-Forwarded-For: the last address, the one the proxy itself added).
            address = request.headers[header].split(",")[-1].strip() or address
        return hmac.new(self._p.client_key_secret, address.encode(), hashlib.sha256).hexdigest()[:32]

    # ── the device ─────────────────────────────────────────────────────────────────────────────────────────
    def device(self, token: str | None) -> Device | None:
        """The kiosk a token belongs to; None for anything that is not a kiosk token."""
        if not token:
            return None
        try:
            principal = self._p.registry.authenticate(f"Bearer {token}")
        except ApiError:
            return None
        if principal.kind != "kiosk":
            return None
        unit = self._p.catalogue.units.get(principal.unit_code)
        return Device(token=token, community_code=principal.unit_code,
                      community_name=unit.name if unit else principal.unit_code, name=principal.name,
                      service_point_id=principal.service_point_id)

    def unit_name(self, code: str | None) -> str | None:
        unit = self._p.catalogue.units.get(code) if code else None
        return unit.name if unit else None

    # ── intake ─────────────────────────────────────────────────────────────────────────────────────────────
    def _call(self, method: str, path: str, *, token: str, json: Any = None, headers: dict | None = None) -> Answer:
        url = self.settings.service_urls["intake"] + path
        try:
            response = self._p.session.request(method, url, json=json, timeout=self.settings.api_timeout_seconds,
                                               headers={"Authorization": f"Bearer {token}", **(headers or {})})
        except requests.RequestException:
            raise IntakeUnavailable() from None
        if response.status_code >= 500:
            raise IntakeUnavailable()
        try:
            body = response.json()
        except ValueError:
            body = None
        return Answer(response.status_code, body)

    def catalogue(self, device: Device | None = None) -> dict:
        """Intake's catalogue summary (matters, bundles, materials), kept for a few minutes; asked with the
        kiosk's token, or the console's own for a public page."""
        cached = self._p.catalogue_cache
        if cached and time.monotonic() - cached[0] < CATALOGUE_TTL_SECONDS:
            return cached[1]
        answer = self._call("GET", "/v1/catalogue", token=device.token if device else self._p.console_token)
        if not answer.ok:
            raise IntakeUnavailable()
        self._p.catalogue_cache = (time.monotonic(), answer.body)
        return answer.body

    def submit(self, device: Device, body: dict, idempotency_key: str) -> Answer:
        return self._call("POST", "/v1/cases", token=device.token, json=body,
                          headers={"Idempotency-Key": idempotency_key})

    def case(self, device: Device, case_id: str) -> Answer:
        return self._call("GET", f"/v1/cases/{case_id}", token=device.token)

    def service_circle(self, token: str, params: dict) -> Answer:
        """The 15-minute circle (``GET /v1/service-circle``): a kiosk asks with its token, the public pages with
        the console's own."""
        return self._call("GET", "/v1/service-circle?" + urlencode(params), token=token)

    def service_point(self, token: str, point_id: str) -> Answer:
        return self._call("GET", f"/v1/service-points/{quote(point_id, safe='')}", token=token)

    @property
    def places(self) -> Places:
        """Where each community's (and each point's) circle is centred, from the catalogue's service points."""
        return self._p.places

    def lookup(self, case_number: str, phone_last4: str, client: str) -> Answer:
        return self._call("POST", "/v1/case-lookups", token=self._p.console_token,
                          json={"case_number": case_number, "phone_last4": phone_last4, "client": client})


class KioskBackendProvider(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.settings = ConsoleSettings.from_config(config)
        self.console_token = str(config.get("SANJI_CONSOLE_SERVICE_TOKEN") or DEV_CONSOLE_TOKEN)
        if self.settings.production and self.console_token == DEV_CONSOLE_TOKEN:
            raise ValueError("SANJI_CONSOLE_SERVICE_TOKEN must be set in production (the development token is public)")
        self.kiosk_token = config.get("SANJI_CONSOLE_KIOSK_TOKEN") or None
        self.client_address_header = config.get("SANJI_CONSOLE_CLIENT_ADDRESS_HEADER") or None
        self.idle_seconds = int(config.get("SANJI_CONSOLE_KIOSK_IDLE_SECONDS") or 90)
        secret = self.settings.assertion_key
        self.receipt_signer = Signer(derive_key(secret, "receipt"))
        self.client_key_secret = derive_key(secret, "lookup-client")
        self.registry = TokenRegistry.from_file(config["SANJI_TOKENS_FILE"])
        self.catalogue = load_catalogue(config["SANJI_CATALOGUE_DIR"])
        self.catalogue_cache: tuple[float, dict] | None = None
        self.places = load_places(config, self.catalogue)
        # Throttles per replica; the lockout after misses is intake's, shared by every replica.
        self.per_client = SlidingWindowLimiter(int(config.get("SANJI_CONSOLE_LOOKUP_PER_CLIENT_PER_MINUTE") or 20), 60)
        self.per_case = SlidingWindowLimiter(int(config.get("SANJI_CONSOLE_LOOKUP_PER_CASE_PER_MINUTE") or 10), 60)
        self.session = requests.Session()

    def stop(self):
        self.session.close()

    def get_dependency(self, worker_ctx):
        return KioskBackend(self)
