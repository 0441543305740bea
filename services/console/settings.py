"""The console's settings, read from the nameko container config (SANJI_CONSOLE_* and a few shared keys).

Listed in docs/console.md. Each has a working default for `make run`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import development_assertion_key

DEFAULT_SERVICE_URLS = {
    "intake": "http://127.0.0.1:8000",
    "routing": "http://127.0.0.1:8001",
    "escalation": "http://127.0.0.1:8002",
    "notification": "http://127.0.0.1:8003",
    "evaluation": "http://127.0.0.1:8005",
}


class ConsoleConfigError(ValueError):
    pass


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
        def get(name: str, default=None):
            value = config.get(f"SANJI_CONSOLE_{name}")
            return default if value in (None, "") else value

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
            settings = cls(
                service_urls={name: str(get(f"{name.upper()}_URL", url)).rstrip("/")
                              for name, url in DEFAULT_SERVICE_URLS.items()},
                production=production,
                assertion_key=assertion_key,
                session_idle_minutes=int(get("SESSION_IDLE_MINUTES", 30)),
                session_max_hours=int(get("SESSION_MAX_HOURS", 10)),
                api_timeout_seconds=float(get("API_TIMEOUT_SECONDS", 5.0)),
                dev_account=not production and str(get("DEV_ACCOUNT", "true")).lower() not in ("0", "false", "no"),
                oidc_issuer=get("OIDC_ISSUER"),
                oidc_client_id=get("OIDC_CLIENT_ID"),
                oidc_jwks_url=get("OIDC_JWKS_URL"),
                oidc_jwks_file=get("OIDC_JWKS_FILE"),
                oidc_authorize_url=get("OIDC_AUTHORIZE_URL"),
                oidc_token_url=get("OIDC_TOKEN_URL"),
                oidc_client_secret=get("OIDC_CLIENT_SECRET"),
                public_url=get("PUBLIC_URL"),
            )
        except ValueError as exc:
            raise ConsoleConfigError(f"console setting: {exc}") from None
        if settings.session_idle_minutes < 1 or settings.session_max_hours < 1:
            raise ConsoleConfigError("SANJI_CONSOLE_SESSION_IDLE_MINUTES and _SESSION_MAX_HOURS must be at least 1")
        return settings
