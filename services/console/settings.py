"""The console's settings, read from the nameko container config (SANJI_CONSOLE_* and a few shared keys).

Listed in docs/settings.md, generated from ``ConsoleVariables``. Each has a working default for `make run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.config import Flag, SanjiSettings, SettingsInvalid, development_assertion_key, setting

DEFAULT_SERVICE_URLS = {
    "intake": "http://127.0.0.1:8000",
    "routing": "http://127.0.0.1:8001",
    "escalation": "http://127.0.0.1:8002",
    "notification": "http://127.0.0.1:8003",
    "evaluation": "http://127.0.0.1:8005",
}


class ConsoleConfigError(ValueError):
    pass


class ConsoleVariables(SanjiSettings):
    """The console's settings, each SANJI_CONSOLE_<NAME>."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_CONSOLE_")
    reads_environment: ClassVar[bool] = False  # read from the container config
    read_by: ClassVar[str] = "console"

    intake_url: str = setting(DEFAULT_SERVICE_URLS["intake"], "the intake service's API, as the console calls it")
    routing_url: str = setting(DEFAULT_SERVICE_URLS["routing"], "the routing service's API")
    escalation_url: str = setting(DEFAULT_SERVICE_URLS["escalation"], "the escalation service's API")
    notification_url: str = setting(DEFAULT_SERVICE_URLS["notification"], "the notification service's API")
    evaluation_url: str = setting(DEFAULT_SERVICE_URLS["evaluation"], "the evaluation service's API")
    session_idle_minutes: int = setting(30, "a staff session ends after this many idle minutes", ge=1)
    session_max_hours: int = setting(10, "a staff session ends this many hours after sign-in", ge=1)
    api_timeout_seconds: float = setting(5.0, "a service slower than this is shown as unavailable", gt=0)
    dev_account: Flag = setting(True, "`false`: `make run` creates no development accounts (never created in "
                                                  "production)")
    oidc_issuer: str | None = setting(None, "OpenID Connect issuer; with the client id and the JWKS, staff "
                                            "sign in through the provider")
    oidc_client_id: str | None = setting(None, "OpenID Connect client id of the console")
    oidc_client_secret: str | None = setting(None, "OpenID Connect client secret", secret=True)
    oidc_jwks_url: str | None = setting(None, "the provider's signing keys (JWKS), cached 5 minutes, refetched for an "
                                                "unknown `kid`")
    oidc_jwks_file: str | None = setting(None, "the provider's signing keys (JWKS), read from a file")
    oidc_authorize_url: str | None = setting(None, "the provider's authorization endpoint")
    oidc_token_url: str | None = setting(None, "the provider's token endpoint")
    public_url: str | None = setting(None, "base of the OIDC redirect URI and the lookup link",
                                    shown_default="the request's host")
    service_token: str | None = setting(
        None, "the console's own machine token for the resident lookup at intake; **set it in production** (its "
        "sha256 is a `kind: console` entry of the tokens file)", secret=True,
        shown_default="the public development token")
    kiosk_token: str | None = setting(None, "token the kiosk page presents to the console's kiosk API", secret=True)
    client_address_header: str | None = setting(
        None, "header carrying the client's address behind a proxy (e.g. `X-Forwarded-For`), for the lookup's "
        "rate limit", shown_default="— (the connection's address)")
    kiosk_idle_seconds: int = setting(90, "the kiosk page returns to its start after this many idle seconds", ge=1)
    lookup_per_client_per_minute: int = setting(20, "resident lookups per client address and minute", ge=1)
    lookup_per_case_per_minute: int = setting(10, "resident lookups per case and minute", ge=1)


@dataclass(frozen=True)
class ConsoleSettings:
    service_urls: dict[str, str]
    production: bool
    assertion_key: str
    session_idle_minutes: int = 30
    session_max_hours: int = 10
    api_timeout_seconds: float = 5.0
    dev_account: bool = True
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: str | None = None
    oidc_authorize_url: str | None = None
    oidc_token_url: str | None = None
    oidc_client_secret: str | None = None
    public_url: str | None = None

    @property
    def secure_cookies(self) -> bool:
        return self.production

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and (self.oidc_jwks_url or self.oidc_jwks_file))

    @classmethod
    def from_config(cls, config: dict) -> ConsoleSettings:
        production = str(config.get("SANJI_PROFILE", "development")).lower() == "production"
        assertion_key = str(config.get("SANJI_ASSERTION_KEY") or "")
        if not assertion_key:
            raise ConsoleConfigError("SANJI_ASSERTION_KEY is not set, and the keys file (SANJI_KEYS_FILE) has no "
                                     "assertion_key")
        if production and assertion_key == development_assertion_key():
            raise ConsoleConfigError("SANJI_ASSERTION_KEY must be set in production (the development key is public)")
        if production and len(assertion_key.encode()) < 32:
            raise ConsoleConfigError("SANJI_ASSERTION_KEY must be at least 32 bytes (HS256)")
        try:
            variables = ConsoleVariables.read(config)
        except SettingsInvalid as exc:
            raise ConsoleConfigError(str(exc)) from None
        settings = cls(
            service_urls={name: str(getattr(variables, f"{name}_url")).rstrip("/") for name in DEFAULT_SERVICE_URLS},
            production=production,
            assertion_key=assertion_key,
            session_idle_minutes=variables.session_idle_minutes,
            session_max_hours=variables.session_max_hours,
            api_timeout_seconds=variables.api_timeout_seconds,
            dev_account=not production and variables.dev_account,
            oidc_issuer=variables.oidc_issuer,
            oidc_client_id=variables.oidc_client_id,
            oidc_jwks_url=variables.oidc_jwks_url,
            oidc_jwks_file=variables.oidc_jwks_file,
            oidc_authorize_url=variables.oidc_authorize_url,
            oidc_token_url=variables.oidc_token_url,
            oidc_client_secret=variables.oidc_client_secret,
            public_url=variables.public_url,
        )
        return settings
