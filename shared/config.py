"""Configuration from the environment, with defaults that work on a laptop.

Every variable is listed in README.md ("Configuration"). Services read the nameko container config
built by ``nameko_config`` rather than the environment directly, so tests can point one service at a
throwaway vhost or database without touching process-wide state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("intake", "routing", "notification", "escalation", "evaluation", "console")

# Each service gets its own HTTP port by default so `make run` can run them side by side.
DEFAULT_HTTP_PORTS = {"intake": 8000, "routing": 8001, "escalation": 8002, "notification": 8003,
                      "console": 8004, "evaluation": 8005}

# The public development keys (config/dev-keys.yaml): used when no key is configured, refused in production.
DEV_KEYS_FILE = REPO_ROOT / "config" / "dev-keys.yaml"
PROFILES = ("development", "production")

# The 15-minute service circle (intake): passed on as set; intake reads and checks them.
CIRCLE_VARIABLES = ("SANJI_SERVICE_POINTS_FILE", "SANJI_WALKING_SPEED_M_PER_MIN", "SANJI_SERVICE_CIRCLE_MINUTES")


def _key_from_file(keys_file: Path, name: str) -> str | None:
    """One named key from a keys file (YAML mapping), or None when the file or the key is absent."""
    import yaml

    try:
        document = yaml.safe_load(keys_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    value = document.get(name) if isinstance(document, dict) else None
    return str(value).strip() or None if value else None


def development_assertion_key() -> str | None:
    """The public development value of the assertion key: refused in production."""
    return _key_from_file(DEV_KEYS_FILE, "assertion_key")


RATING_LINK_BASE = "SANJI_NOTIFICATION_RATING_LINK_BASE"


def development_rating_link_base(environ: dict[str, str], console: Settings) -> str | None:
    """What `sanji run-all` sets SANJI_NOTIFICATION_RATING_LINK_BASE to when it is unset in development: the
    console's 好差评 page (``/rate/``), at SANJI_CONSOLE_PUBLIC_URL or the console's own address. None when it is
    set, and always in production, where it names the public rating page explicitly (or is left unset: no link)."""
    if environ.get(RATING_LINK_BASE, "").strip() or console.profile == "production":
        return None
    public = console.console.get("SANJI_CONSOLE_PUBLIC_URL", "").rstrip("/")
    return f"{public or f'http://{console.http_host}:{console.http_port}'}/rate/"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _optional_port(*names: str | None) -> int | None:
    for name in names:
        text = os.environ.get(name, "").strip() if name else ""
        if text:
            return int(text)
    return None


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    database_url: str
    http_host: str
    http_port: int | None
    log_format: str
    log_level: str
    catalogue_dir: Path
    tokens_file: Path
    calendar_overrides: Path
    credit_flags: Path
    var_dir: Path
    # Keys (shared/crypto.py): the blind-index key, the key-encryption keys, and the file they default to.
    pii_key: str | None
    data_keys: str | None = field(default=None, repr=False)
    keys_file: Path = DEV_KEYS_FILE
    # "production" refuses to start on development settings (shared/production.py).
    profile: str = "development"
    # Serve /metrics on its own port as well (None: only on the service's HTTP port).
    metrics_port: int | None = None
    # /health and the scrape-time gauges read the database at most once per this many seconds.
    db_probe_seconds: float = 5.0
    # TLS the deployment declares for the broker and the database: "required" or "off".
    broker_tls: str | None = None
    database_tls: str | None = None
    # libpq's own PGSSLMODE, which psycopg2 honours when the URL names no sslmode.
    pg_sslmode: str | None = None
    # OpenTelemetry tracing (shared/tracing.py): otlp (on), off, or unset (on when OTEL_EXPORTER_OTLP_ENDPOINT is).
    tracing: str | None = None
    max_workers: int = 10
    relay_poll_seconds: float = 0.5
    # Each service's broker user, by service (shared/bus.py): who may send which event, and call which RPC.
    bus_users: dict[str, str] = field(default_factory=dict)
    # Every SANJI_NOTIFICATION_* variable, passed on as is; the notification service reads and checks
    # them (services/notification/settings.py, listed in docs/notifications.md).
    notification: dict[str, str] = field(default_factory=dict)
    # Every SANJI_ESCALATION_* variable, passed on as is; the escalation service reads and checks them
    # (services/escalation/settings.py, listed in docs/escalation.md).
    escalation: dict[str, str] = field(default_factory=dict)
    # Every SANJI_EVALUATION_* variable, passed on as is; the evaluation service reads and checks them
    # (services/evaluation/settings.py).
    evaluation: dict[str, str] = field(default_factory=dict)
    # Every SANJI_CONSOLE_* variable, passed on as is; the console reads and checks them
    # (services/console/settings.py, listed in docs/console.md).
    console: dict[str, str] = field(default_factory=dict)
    # Signs the console's short-lived person assertions; every service verifies them (shared/auth.py).
    # SANJI_ASSERTION_KEY, else the keys file's `assertion_key` (the development file has one).
    assertion_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, service: str | None = None) -> Settings:
        var_dir = Path(_env("SANJI_VAR_DIR", str(REPO_ROOT / "var")))
        prefix = f"SANJI_{service.upper()}_" if service else None
        # One database URL for all services, a per-service override, and by default one SQLite file
        # per service: each service owns its data, and SQLite allows one writer per file.
        database_url = (
            (os.environ.get(f"{prefix}DATABASE_URL", "").strip() if prefix else "")
            or _env("SANJI_DATABASE_URL", f"sqlite:///{var_dir}/{service or 'sanji'}.db")
        )
        port_text = (os.environ.get(f"{prefix}HTTP_PORT", "").strip() if prefix else "") or os.environ.get(
            "SANJI_HTTP_PORT", ""
        ).strip()
        http_port = int(port_text) if port_text else DEFAULT_HTTP_PORTS.get(service or "", None)
        default_amqp_uri = _env("SANJI_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
        # A service connects as its own broker user: SANJI_<SERVICE>_AMQP_URI, else the shared SANJI_AMQP_URI.
        amqp_uris = {name: _env(f"SANJI_{name.upper()}_AMQP_URI", default_amqp_uri) for name in SERVICES}
        bus_users_text = _env("SANJI_BUS_USERS", "")
        if bus_users_text:
            from shared.bus import parse_users

            bus_users = parse_users(bus_users_text)
        else:
            from shared.bus import user_of_uri

            bus_users = {name: user_of_uri(uri) for name, uri in amqp_uris.items()}
        return cls(
            amqp_uri=amqp_uris.get(service, default_amqp_uri) if service else default_amqp_uri,
            database_url=database_url,
            http_host=_env("SANJI_HTTP_HOST", "127.0.0.1"),
            http_port=http_port,
            log_format=_env("SANJI_LOG_FORMAT", "auto"),
            log_level=_env("SANJI_LOG_LEVEL", "INFO"),
            catalogue_dir=Path(_env("SANJI_CATALOGUE_DIR", str(REPO_ROOT / "catalogue" / "nanjing"))),
            tokens_file=Path(_env("SANJI_TOKENS_FILE", str(REPO_ROOT / "config" / "dev-tokens.yaml"))),
            calendar_overrides=Path(
                _env("SANJI_CALENDAR_OVERRIDES", str(REPO_ROOT / "config" / "calendar-overrides.yaml"))
            ),
            credit_flags=Path(_env("SANJI_CREDIT_FLAGS_FILE", str(REPO_ROOT / "config" / "credit-flags.yaml"))),
            var_dir=var_dir,
            pii_key=os.environ.get("SANJI_PII_KEY", "").strip() or None,
            data_keys=os.environ.get("SANJI_DATA_KEYS", "").strip() or None,
            keys_file=Path(_env("SANJI_KEYS_FILE", str(DEV_KEYS_FILE))),
            profile=_env("SANJI_PROFILE", "development").lower(),
            metrics_port=_optional_port(f"{prefix}METRICS_PORT" if prefix else None, "SANJI_METRICS_PORT"),
            db_probe_seconds=float(_env("SANJI_DB_PROBE_SECONDS", "5")),
            broker_tls=os.environ.get("SANJI_BROKER_TLS", "").strip().lower() or None,
            database_tls=os.environ.get("SANJI_DATABASE_TLS", "").strip().lower() or None,
            pg_sslmode=os.environ.get("PGSSLMODE", "").strip().lower() or None,
            tracing=os.environ.get("SANJI_TRACING", "").strip().lower() or None,
            max_workers=int(_env("SANJI_MAX_WORKERS", "10")),
            relay_poll_seconds=float(_env("SANJI_RELAY_POLL_SECONDS", "0.5")),
            bus_users=bus_users,
            notification={name: value.strip() for name, value in os.environ.items()
                          if name.startswith("SANJI_NOTIFICATION_") and value.strip()
                          and name not in ("SANJI_NOTIFICATION_DATABASE_URL", "SANJI_NOTIFICATION_HTTP_PORT")},
            escalation={name: value.strip() for name, value in os.environ.items()
                        if name.startswith("SANJI_ESCALATION_") and value.strip()
                        and name not in ("SANJI_ESCALATION_DATABASE_URL", "SANJI_ESCALATION_HTTP_PORT")},
            evaluation={name: value.strip() for name, value in os.environ.items()
                        if name.startswith("SANJI_EVALUATION_") and value.strip()
                        and name not in ("SANJI_EVALUATION_DATABASE_URL", "SANJI_EVALUATION_HTTP_PORT")},
            console={name: value.strip() for name, value in os.environ.items()
                     if name.startswith("SANJI_CONSOLE_") and value.strip()
                     and name not in ("SANJI_CONSOLE_DATABASE_URL", "SANJI_CONSOLE_HTTP_PORT")},
            assertion_key=(os.environ.get("SANJI_ASSERTION_KEY", "").strip()
                           or _key_from_file(Path(_env("SANJI_KEYS_FILE", str(DEV_KEYS_FILE))), "assertion_key")),
        )


def nameko_config(service: str, settings: Settings) -> dict:
    """The nameko container config for one service: nameko's own keys plus ours."""
    config = {
        "AMQP_URI": settings.amqp_uri,
        "max_workers": settings.max_workers,
        "SERIALIZER": "json",
        # A container that announces its death, so that `sanji serve` exits and is restarted.
        "SERVICE_CONTAINER_CLS": "shared.broker_faults.SupervisedContainer",
        "ACCEPT": ["json", "cloudevents"],
        "DATABASE_URL": settings.database_url,
        "SANJI_SERVICE": service,
        "SANJI_CATALOGUE_DIR": str(settings.catalogue_dir),
        "SANJI_TOKENS_FILE": str(settings.tokens_file),
        "SANJI_CALENDAR_OVERRIDES": str(settings.calendar_overrides),
        "SANJI_CREDIT_FLAGS_FILE": str(settings.credit_flags),
        "SANJI_PII_KEY": settings.pii_key or "",
        "SANJI_DATA_KEYS": settings.data_keys or "",
        "SANJI_KEYS_FILE": str(settings.keys_file),
        "SANJI_PROFILE": settings.profile,
        "SANJI_DB_PROBE_SECONDS": settings.db_probe_seconds,
        "SANJI_RELAY_POLL_SECONDS": settings.relay_poll_seconds,
        "SANJI_VAR_DIR": str(settings.var_dir),
        "SANJI_TRACING": settings.tracing or "",
        "SANJI_BUS_USERS": dict(settings.bus_users),
        **settings.notification,
        **settings.escalation,
        **settings.evaluation,
        **{name: os.environ[name].strip() for name in CIRCLE_VARIABLES if os.environ.get(name, "").strip()},
        **settings.console,
        "SANJI_ASSERTION_KEY": settings.assertion_key or "",
        "LOGGING": {"version": 1, "disable_existing_loggers": False},
    }
    if settings.metrics_port is not None:
        config["SANJI_METRICS_ADDRESS"] = f"{settings.http_host}:{settings.metrics_port}"
    if settings.http_port is not None:
        config["WEB_SERVER_ADDRESS"] = f"{settings.http_host}:{settings.http_port}"
    return config
