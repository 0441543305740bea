"""Configuration from the environment, with defaults that work on a laptop.

The settings are pydantic-settings models (``SanjiSettings``): each field names its variable, type,
default and meaning, and docs/settings.md is generated from them (``sanji settings``; a test fails when
the document drifts or a ``SANJI_…`` variable the code reads is missing from it). A value that does not
fit is refused at start with one line naming the variable, what it expected and what it got
(``SettingsInvalid``), never a traceback.

Services read the nameko container config built by ``nameko_config`` rather than the environment
directly, so tests can point one service at a throwaway vhost or database without touching
process-wide state. A service's own settings (``services/<name>/settings.py``) are models of the same
kind, read from that config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("intake", "routing", "notification", "escalation", "evaluation", "console", "subscriptions")

# Each service gets its own HTTP port by default so `make run` can run them side by side.
DEFAULT_HTTP_PORTS = {"intake": 8000, "routing": 8001, "escalation": 8002, "notification": 8003,
                      "console": 8004, "evaluation": 8005, "subscriptions": 8006}

# The public development keys (config/dev-keys.yaml): used when no key is configured, refused in production.
DEV_KEYS_FILE = REPO_ROOT / "config" / "dev-keys.yaml"
PROFILES = ("development", "production")

# The 15-minute service circle (intake): passed on as set; intake reads and checks them.
CIRCLE_VARIABLES = ("SANJI_SERVICE_POINTS_FILE", "SANJI_WALKING_SPEED_M_PER_MIN", "SANJI_SERVICE_CIRCLE_MINUTES")
# Intake's and routing's own settings without a service prefix (services/intake/settings.py,
# services/routing/settings.py): passed on as set, like the circle's.
PASSED_ON_VARIABLES = (*CIRCLE_VARIABLES, "SANJI_DEFERRAL_WORKING_DAYS", "SANJI_MAX_RETURNS",
                       "SANJI_STATUS_FOLD_SECONDS")
# Services whose every SANJI_<SERVICE>_* variable is passed on to the service, which reads and checks it.
PREFIXED_SERVICES = ("notification", "escalation", "evaluation", "console", "subscriptions")
# Per-service kernel variables that stay with the kernel instead (SANJI_<SERVICE>_DATABASE_URL, …_HTTP_PORT).
_KERNEL_PER_SERVICE = ("DATABASE_URL", "HTTP_PORT")


class SettingsInvalid(ValueError):
    """Settings that do not fit: one line each, naming the variable, what it expects and what it got."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("; ".join(self.lines))


def setting(default: Any = None, description: str = "", *, variable: str | None = None, per_service: bool = False,
            secret: bool = False, kind: str | None = None, shown_default: str | None = None,
            read_by: str | None = None, documented: bool = True, **constraints) -> Any:
    """A settings field with what docs/settings.md says of it: its variable (default: the model's prefix
    and the field name in capitals), whether ``SANJI_<SERVICE>_…`` overrides it, whether it is a secret
    (its value is never echoed), the type and default as written there, and who reads it."""
    extra = {"variable": variable, "per_service": per_service, "secret": secret, "kind": kind,
             "shown_default": shown_default, "read_by": read_by, "documented": documented}
    return Field(default, description=description, repr=not secret,
                 json_schema_extra={key: value for key, value in extra.items() if value not in (None, False)}
                 | {"documented": documented}, **constraints)


# What a variable holds, as one line says it.
_EXPECTED = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text", "dict_type": "a mapping", "path_type": "a path",
}


def _expected(error: dict, field_kind: str | None) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if field_kind == "port" and kind in ("int_parsing", "int_type", "int_from_float", "greater_than_equal",
                                         "less_than_equal"):
        return "a port number (1-65535)"
    if kind == "literal_error":
        return "one of " + str(ctx.get("expected", "")).replace("'", "")
    bound = {key: f"{value:g}" if isinstance(value, float) else value for key, value in ctx.items()}
    if kind == "greater_than_equal":
        return f"at least {bound['ge']}"
    if kind == "greater_than":
        return f"more than {bound['gt']}"
    if kind == "less_than_equal":
        return f"at most {bound['le']}"
    if kind == "less_than":
        return f"less than {bound['lt']}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])).removeprefix("expected ")
    return _EXPECTED.get(kind, error["msg"][:1].lower() + error["msg"][1:])


_SOURCE: ContextVar[tuple[Mapping, str | None] | None] = ContextVar("sanji_settings_source", default=None)


class VariablesSource(PydanticBaseSettingsSource):
    """Values from a mapping of variables (the environment, or a nameko container config): each field's
    own variable, ``SANJI_<SERVICE>_…`` first where the field allows it; blank counts as unset, and the
    surrounding whitespace of a text value is dropped."""

    def __init__(self, settings_cls: type[SanjiSettings], variables: Mapping, service: str | None = None):
        super().__init__(settings_cls)
        self.variables = variables
        self.service = service

    def get_field_value(self, field, field_name):  # required by the base class; __call__ does the work
        return self._lookup(field_name)[1], field_name, False

    def _lookup(self, field_name: str) -> tuple[str | None, Any]:
        for variable in self.settings_cls.variables_of(field_name, self.service):
            raw = self.variables.get(variable)
            if isinstance(raw, str):
                raw = raw.strip()
            if raw is not None and raw != "":
                return variable, raw
        return None, None

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name in self.settings_cls.model_fields:
            variable, raw = self._lookup(field_name)
            if variable is not None:
                values[field_name] = raw
        return values


class SanjiSettings(BaseSettings):
    """Settings read from variables: ``read(variables, service)``; ``Model()`` reads the environment (the
    kernel) or nothing (a service's settings, read from its container config)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_")
    # A service's own settings come from its container config, never from the process environment.
    reads_environment: ClassVar[bool] = True
    # Who reads these settings (docs/settings.md), unless a field says otherwise.
    read_by: ClassVar[str] = "every service"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        variables, service = _SOURCE.get() or (os.environ if cls.reads_environment else {}, None)
        return init_settings, VariablesSource(settings_cls, variables, service)

    @classmethod
    def field_extra(cls, field_name: str) -> dict:
        extra = cls.model_fields[field_name].json_schema_extra
        return extra if isinstance(extra, dict) else {}

    @classmethod
    def variables_of(cls, field_name: str, service: str | None = None) -> tuple[str, ...]:
        """The variables a field is read from, the first set one winning."""
        extra = cls.field_extra(field_name)
        name = extra.get("variable") or f"{cls.model_config.get('env_prefix', '')}{field_name.upper()}"
        if service and extra.get("per_service"):
            return f"SANJI_{service.upper()}_{name.removeprefix('SANJI_')}", name
        return (name,)

    @classmethod
    def from_env(cls, service: str | None = None):
        """The settings from this process's environment."""
        return cls.read(os.environ, service)

    @classmethod
    def read(cls, variables: Mapping, service: str | None = None):
        """The settings in ``variables``; ``SettingsInvalid`` (one line per bad variable) when any does not fit."""
        token = _SOURCE.set((variables, service))
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsInvalid(cls._lines(exc, VariablesSource(cls, variables, service))) from None
        finally:
            _SOURCE.reset(token)

    @classmethod
    def _lines(cls, exc: ValidationError, source: VariablesSource) -> list[str]:
        lines = []
        for error in exc.errors(include_url=False):
            field_name = str(error["loc"][0]) if error["loc"] else ""
            if field_name not in cls.model_fields:  # a check across fields: its message names them
                lines.append(str((error.get("ctx") or {}).get("error", error["msg"])))
                continue
            variable, raw = source._lookup(field_name)
            variable = variable or cls.variables_of(field_name, source.service)[0]
            extra = cls.field_extra(field_name)
            got = "" if extra.get("secret") else f", got {raw if raw is not None else error.get('input')!r}"
            lines.append(f"{variable}: expected {_expected(error, extra.get('kind'))}{got}")
        return list(dict.fromkeys(lines))


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _flag(value: Any) -> Any:
    """true/false, 1/0, yes/no (any case); anything else is refused."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError("expected true or false")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
Port = Annotated[int, Field(ge=1, le=65535)]
Lowercase = BeforeValidator(_lower)


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


DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def _amqp_uri(value: Any) -> Any:
    scheme, separator, _ = str(value).partition("://")
    if not separator or scheme.lower() not in AMQP_SCHEMES:
        raise ValueError("expected an amqp:// or amqps:// URL")
    return value


def _database_url(value: Any) -> Any:
    from sqlalchemy.engine import make_url

    try:
        make_url(str(value))
    except Exception:  # noqa: BLE001 - whatever SQLAlchemy cannot parse is one line
        raise ValueError("expected a database URL (sqlite:///… or postgresql://…)") from None
    return value


def _bus_users(value: Any) -> Any:
    if isinstance(value, str):
        from shared.bus import parse_users

        try:
            return parse_users(value)
        except ValueError:
            raise ValueError(f"expected service=user pairs naming {', '.join(SERVICES)}") from None
    return value


def _max_age(value: Any) -> Any:
    from shared.event_log import check_max_age

    return check_max_age(str(value).strip()) if isinstance(value, str) else value


def _prefixed(variables: Mapping, service: str) -> dict[str, str]:
    """Every SANJI_<SERVICE>_* variable but the kernel's own, passed on as is to the service."""
    prefix = f"SANJI_{service.upper()}_"
    kernel = {prefix + name for name in _KERNEL_PER_SERVICE}
    return {name: value.strip() for name, value in variables.items()
            if name.startswith(prefix) and isinstance(value, str) and value.strip() and name not in kernel}


class Settings(SanjiSettings):
    """The kernel's settings: every service reads them (through ``nameko_config``), and so does ``sanji``."""

    amqp_uri: Annotated[str, BeforeValidator(_amqp_uri)] = setting(
        DEFAULT_AMQP_URI, "RabbitMQ. Development: its administrator, which `make run` uses to create the bus "
        "users. `SANJI_<SERVICE>_AMQP_URI`: the service's own broker user (`docs/security.md`)",
        per_service=True, secret=True, kind="amqp URL")
    database_url: Annotated[str, BeforeValidator(_database_url)] = setting(
        None, "the service's database; `postgresql://user:pw@host/db` in production. "
        "`SANJI_<SERVICE>_DATABASE_URL`: a per-service override", per_service=True, secret=True,
        kind="database URL", shown_default="`sqlite:///var/<service>.db`", validate_default=False)
    migration_database_url: Annotated[str | None, BeforeValidator(_database_url)] = setting(
        None, "where `sanji migrate` connects: straight to PostgreSQL when the services go through a "
        "transaction-pooling PgBouncer (the migrations' advisory lock is session-level; `docs/deploy.md`)",
        secret=True, kind="database URL", shown_default="the database URL", validate_default=False)
    db_pool_size: int = setting(10, "each process's PostgreSQL connection pool: connections kept open "
                                "(`shared/db.py`; `deploy/k8s` sizes the pooler for it)", ge=1)
    db_max_overflow: int = setting(10, "each process's PostgreSQL pool: connections opened beyond the pool "
                                   "under load", ge=0)
    db_idle_in_transaction_timeout_seconds: float = setting(
        60, "PostgreSQL ends a session idle inside a transaction this long, releasing its locks (a client that "
        "vanished mid-transaction). 0: the server's own setting, needed behind a transaction-pooling PgBouncer, "
        "which refuses the startup option (`shared/db.py`)", ge=0)
    http_host: str = setting("127.0.0.1", "address the HTTP endpoints listen on")
    http_port: Port | None = setting(
        None, "HTTP port; `SANJI_<SERVICE>_HTTP_PORT` for one service", per_service=True, kind="port",
        shown_default=", ".join(f"{name} {port}" for name, port in DEFAULT_HTTP_PORTS.items()))
    log_format: Annotated[Literal["auto", "json", "console"], Lowercase] = setting(
        "auto", "`json`, `console`, or `auto` (console on a terminal, JSON otherwise)")
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)] = \
        setting("INFO", "log level")
    catalogue_dir: Path = setting(REPO_ROOT / "catalogue" / "nanjing",
                                  "the catalogue (jurisdictions, departments, matters, bundles)", kind="directory")
    tokens_file: Path = setting(REPO_ROOT / "config" / "dev-tokens.yaml",
                                "clients and their jurisdictions (production: sha256 digests only)")
    calendar_overrides: Path = setting(
        REPO_ROOT / "config" / "calendar-overrides.yaml", "the State Council's arrangements (holidays and 调休 "
        "days) not yet in the calendar library; re-read on change (`sanji calendar load`)")
    credit_flags: Path = setting(
        REPO_ROOT / "config" / "credit-flags.yaml", "fingerprints of applicants flagged for bad credit (no 容缺 "
        "for them)", variable="SANJI_CREDIT_FLAGS_FILE", read_by="intake")
    var_dir: Path = setting(REPO_ROOT / "var", "where SQLite files and the development SMS/e-mail sinks live",
                            kind="directory")
    # Keys (shared/crypto.py): the blind-index key, the key-encryption keys, and the file they default to.
    pii_key: str | None = setting(
        None, "key of the HMAC fingerprint (blind index) of ID numbers, at least 16 bytes; **a secret in "
        "production**", secret=True, shown_default="from `SANJI_KEYS_FILE`", read_by="intake")
    data_keys: str | None = setting(
        None, "intake's key-encryption keys, `id:base64key[,id:base64key]`, the first current (`sanji keys "
        "generate`, `sanji keys rotate`); **a secret in production**", secret=True,
        shown_default="from `SANJI_KEYS_FILE`", read_by="intake")
    keys_file: Path = setting(
        DEV_KEYS_FILE, "YAML with `pii_key`, `data_keys` and `assertion_key`, for the keys their variables leave "
        "unset; the shipped file is public, marked development, refused in production")
    profile: Annotated[Literal["development", "production"], Lowercase] = setting(
        "development", "`production` refuses to start on development settings, one line per problem "
        "(`docs/security.md`); the console then sets Secure cookies and refuses development accounts")
    metrics_port: Port | None = setting(
        None, "serve `/metrics` on this port only (the API port's `/metrics` then answers 404); "
        "`SANJI_<SERVICE>_METRICS_PORT` for one service", per_service=True, kind="port")
    clock_offset_file: Path | None = setting(
        None, "development only (refused in production): a file holding seconds by which the services' clock "
        "runs ahead; the chaos suite jumps the clock of the sweeps with it (`docs/reliability.md`)")
    db_probe_seconds: float = setting(
        5.0, "`/health` and the database gauges of `/metrics` read the database at most this often", ge=0,
        allow_inf_nan=False)
    # TLS the deployment declares for the broker and the database.
    broker_tls: Annotated[Literal["required", "off"] | None, Lowercase] = setting(
        None, "`required`: the broker URI must be `amqps://`; `off` only where the traffic never leaves the "
        "host", shown_default="`required` in production")
    database_tls: Annotated[Literal["required", "off"] | None, Lowercase] = setting(
        None, "`required`: the database URL (or `PGSSLMODE`) must carry `sslmode=require`, `verify-ca` or "
        "`verify-full`; `off` only where the traffic never leaves the host",
        shown_default="`required` in production")
    # libpq's own PGSSLMODE, which psycopg2 honours when the URL names no sslmode.
    pg_sslmode: Annotated[Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None,
                          Lowercase] = setting(
        None, "libpq's own TLS mode, honoured when the database URL names no `sslmode`", variable="PGSSLMODE")
    tracing: Annotated[Literal["otlp", "off"] | None, Lowercase] = setting(
        None, "OpenTelemetry tracing (`shared/tracing.py`): `otlp` sends spans over OTLP/HTTP, `off` none; unset: "
        "on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set",
        shown_default="off (on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set)")
    event_log_max_age: Annotated[str, BeforeValidator(_max_age)] = setting(
        "30D", "how long the event log (`docs/replay.md`) keeps events: the `x-max-age` of each district's stream, "
        "a number and one of `Y M D h m s`. Set when a stream is created: RabbitMQ refuses to declare an existing "
        "one with another value (`docs/replay.md`, Retention)", kind="retention")
    max_workers: int = setting(10, "concurrent workers (and message prefetch) per service process", ge=1)
    relay_poll_seconds: float = setting(2.0, "outbox relay poll interval; a local commit wakes it at once",
                                        gt=0, allow_inf_nan=False)
    # Retention (shared/retention.py; docs/reliability.md, "Retention": why these bounds are safe).
    retention_outbox_days: float = setting(
        7.0, "published outbox rows are deleted this many days after they were published (fractions allowed); "
        "unpublished rows never are. `0`: kept for ever", ge=0, allow_inf_nan=False, kind="days")
    retention_processed_days: float = setting(
        14.0, "a consumer's record of a handled event (its deduplication) is deleted this many days after the "
        "event was handled; a duplicate arriving later would be handled again, so keep it well beyond the "
        "longest outage (`docs/reliability.md`). `0`: kept for ever", ge=0, allow_inf_nan=False, kind="days")
    retention_interval_seconds: float = setting(
        3600.0, "how often each service runs its retention pass (first one interval after the start). `0`: "
        "never on a timer (`sanji prune` still works)", ge=0, allow_inf_nan=False)
    retention_batch_size: int = setting(
        1000, "rows one retention batch deletes (one short transaction, by primary key)", ge=1, le=10_000)
    retention_vacuum: Flag = setting(
        True, "PostgreSQL: `VACUUM (SKIP_LOCKED)` the tables a retention pass deleted from, so their space is "
        "reused without waiting for autovacuum (blocks no reads or writes); `false` leaves it to autovacuum")
    # Each service's broker user, by service (shared/bus.py): who may send which event, and call which RPC.
    bus_users: Annotated[dict[str, str], BeforeValidator(_bus_users)] = setting(
        None, "who is who on the bus, for the consumers' sender check: `intake=sanji-intake,routing=sanji-routing,"
        "escalation=sanji-escalation,notification=sanji-notification,evaluation=sanji-evaluation,"
        "console=sanji-console,subscriptions=sanji-subscriptions`", kind="service=user pairs",
        shown_default="the users of the AMQP URIs", validate_default=False)
    # Every SANJI_NOTIFICATION_* (…_ESCALATION_*, …_EVALUATION_*, …_CONSOLE_*) variable, passed on as is; the
    # service reads and checks them (services/<name>/settings.py, listed in docs/settings.md).
    notification: dict[str, str] = setting(None, documented=False, validate_default=False)
    escalation: dict[str, str] = setting(None, documented=False, validate_default=False)
    evaluation: dict[str, str] = setting(None, documented=False, validate_default=False)
    console: dict[str, str] = setting(None, documented=False, validate_default=False)
    subscriptions: dict[str, str] = setting(None, documented=False, validate_default=False)
    # Signs the console's short-lived person assertions; every service verifies them (shared/auth.py).
    assertion_key: str | None = setting(
        None, "signs the console's person assertions; every service verifies them (space-separated: the first "
        "signs, all verify, for rotation); **a secret in production**, 32 bytes or more", secret=True,
        shown_default="from `SANJI_KEYS_FILE`")

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        """The defaults that depend on the service or on other settings."""
        if not isinstance(data, dict):
            return data
        variables, service = _SOURCE.get() or (os.environ, None)
        data = dict(data)
        var_dir = str(data.get("var_dir") or REPO_ROOT / "var")
        # One database URL for all services, a per-service override, and by default one SQLite file
        # per service: each service owns its data, and SQLite allows one writer per file.
        data.setdefault("database_url", f"sqlite:///{var_dir}/{service or 'sanji'}.db")
        if "http_port" not in data and service in DEFAULT_HTTP_PORTS:
            data["http_port"] = DEFAULT_HTTP_PORTS[service]
        if "bus_users" not in data:
            from shared.bus import user_of_uri

            # A service connects as its own broker user: SANJI_<SERVICE>_AMQP_URI, else the shared SANJI_AMQP_URI.
            shared_uri = str(variables.get("SANJI_AMQP_URI", "")).strip() or DEFAULT_AMQP_URI
            data["bus_users"] = {name: user_of_uri(str(variables.get(f"SANJI_{name.upper()}_AMQP_URI", "")).strip()
                                                   or shared_uri) for name in SERVICES}
        for name in PREFIXED_SERVICES:
            data.setdefault(name, _prefixed(variables, name))
        if not data.get("assertion_key"):
            data["assertion_key"] = _key_from_file(Path(data.get("keys_file") or DEV_KEYS_FILE), "assertion_key")
        return data

    @field_validator("var_dir")
    @classmethod
    def _var_dir_is_a_directory(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError("expected a directory (it is created when missing), not a file")
        return value


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
        "SANJI_RETENTION_OUTBOX_DAYS": settings.retention_outbox_days,
        "SANJI_RETENTION_PROCESSED_DAYS": settings.retention_processed_days,
        "SANJI_RETENTION_INTERVAL_SECONDS": settings.retention_interval_seconds,
        "SANJI_RETENTION_BATCH_SIZE": settings.retention_batch_size,
        "SANJI_RETENTION_VACUUM": settings.retention_vacuum,
        "SANJI_VAR_DIR": str(settings.var_dir),
        "SANJI_TRACING": settings.tracing or "",
        "SANJI_BUS_USERS": dict(settings.bus_users),
        "SANJI_EVENT_LOG_MAX_AGE": settings.event_log_max_age,
        **settings.notification,
        **settings.escalation,
        **settings.evaluation,
        **{name: os.environ[name].strip() for name in PASSED_ON_VARIABLES if os.environ.get(name, "").strip()},
        **settings.console,
        **settings.subscriptions,
        "SANJI_ASSERTION_KEY": settings.assertion_key or "",
        "LOGGING": {"version": 1, "disable_existing_loggers": False},
    }
    if settings.metrics_port is not None:
        config["SANJI_METRICS_ADDRESS"] = f"{settings.http_host}:{settings.metrics_port}"
    if settings.http_port is not None:
        config["WEB_SERVER_ADDRESS"] = f"{settings.http_host}:{settings.http_port}"
    return config
