"""The production profile fails closed: ``SANJI_PROFILE=production`` refuses development settings.

``production_problems(service, settings)`` lists, one line each, what makes the settings unfit for
production; ``sanji serve`` prints them and exits with status 2 before anything starts (and ``sanji
check-production`` prints them without starting). It reads the files the settings name (tokens, keys)
and nothing else: no broker, no database.

The rules:

- development tokens: the development tokens file, a tokens file with a ``token:`` in clear, or the
  digest of a development token;
- development accounts: whatever registered checks find (``register_check``); Sanji has no accounts
  table today, a console that adds one registers its own check here;
- keys: the blind-index key (``SANJI_PII_KEY``) or the data keys (``SANJI_DATA_KEYS``) missing, taken
  from a keys file marked development, or equal to a known development value (intake only: the
  other services hold no personal data and get no key);
- notification: SMS or e-mail configured to go to a file sink (no gateway, no SMTP host);
- evaluation: the rating-link key (``SANJI_EVALUATION_LINK_KEY``) missing (the development settings file's
  key would sign the links), a known placeholder, the development key, or shorter than 16 characters;
- notification, when the completion SMS carries 好差评 links (``SANJI_NOTIFICATION_RATING_LINK_BASE`` set; in
  production nothing sets it for you): the page not an ``https://`` address on a public host, and the same
  rules for the key it signs with as for the evaluation service;
- the person-assertion key (``SANJI_ASSERTION_KEY``, every service verifies the console's assertions)
  missing, equal to the development keys file's, a known placeholder, or shorter than 32 bytes;
- the database is SQLite;
- the broker user is ``guest``;
- TLS: ``SANJI_BROKER_TLS`` / ``SANJI_DATABASE_TLS`` default to ``required`` in production, and then the
  broker URI must be ``amqps://`` and the database URL (or libpq's ``PGSSLMODE``) must carry
  ``sslmode=require``, ``verify-ca`` or ``verify-full``. A deployment whose traffic provably never leaves
  the host may declare ``off``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from sqlalchemy.engine import make_url

from shared.config import DEV_KEYS_FILE, PROFILES, REPO_ROOT, Settings, development_assertion_key
from shared.crypto import KeyConfigError, load_key_material

DEV_TOKENS_FILE = REPO_ROOT / "config" / "dev-tokens.yaml"
# Where the public development files ship: the repository, and the container image (deploy/docker).
DEVELOPMENT_CONFIG_DIRS = (REPO_ROOT / "config", Path("/app/config"))
# Placeholders that have shipped in examples; a key equal to one of these is as public as the dev file.
KNOWN_PLACEHOLDER_KEYS = frozenset({"change-me", "changeme", "dev-only-pii-key-change-me", "secret"})
SERVICES_WITH_KEYS = frozenset({"intake"})  # the only service that keeps personal data
SERVICES_WITH_SINKS = frozenset({"notification"})
SERVICES_WITH_LINK_KEY = frozenset({"evaluation"})  # signs the residents' rating links
TLS_SETTINGS = ("required", "off")
SECURE_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})

ProductionCheck = Callable[[str, Settings], list[str]]
_extra_checks: list[ProductionCheck] = []


def register_check(check: ProductionCheck) -> ProductionCheck:
    """Add a rule (e.g. "no development accounts in the console's table"); usable as a decorator."""
    if check not in _extra_checks:
        _extra_checks.append(check)
    return check


def is_production(settings: Settings) -> bool:
    return settings.profile == "production"


def profile_problems(settings: Settings) -> list[str]:
    if settings.profile not in PROFILES:
        return [f"SANJI_PROFILE={settings.profile!r} is not a profile: write development or production"]
    return []


def production_problems(service: str | None, settings: Settings,
                        extra_checks: list[ProductionCheck] | None = None) -> list[str]:
    """Every reason the settings are unfit for production, one line each; empty when fit."""
    problems: list[str] = []
    problems += token_problems(settings.tokens_file)
    if service is None or service in SERVICES_WITH_KEYS:
        problems += key_problems(settings)
    if service is None or service in SERVICES_WITH_SINKS:
        problems += sink_problems(settings.notification)
        problems += rating_link_problems(settings)
    if service is None or service in SERVICES_WITH_LINK_KEY:
        problems += link_key_problems(settings.evaluation)
    problems += assertion_key_problems(settings)
    problems += database_problems(settings)
    problems += broker_problems(settings)
    if settings.clock_offset_file is not None:
        problems.append("SANJI_CLOCK_OFFSET_FILE is set: it moves the services' clock, a development and test hook "
                        "only; unset it")
    for check in (_extra_checks if extra_checks is None else extra_checks):
        problems += check(service or "", settings)
    return problems


def _development_token_digests() -> frozenset[str]:
    digests: set[str] = set()
    for directory in DEVELOPMENT_CONFIG_DIRS:
        try:
            document = yaml.safe_load((directory / "dev-tokens.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        digests |= {hashlib.sha256(str(entry["token"]).encode()).hexdigest()
                    for entry in document.get("tokens") or [] if isinstance(entry, dict) and "token" in entry}
    return frozenset(digests)


def token_problems(tokens_file: Path) -> list[str]:
    if any(_same_file(tokens_file, directory / "dev-tokens.yaml") for directory in DEVELOPMENT_CONFIG_DIRS):
        return [f"SANJI_TOKENS_FILE is the development tokens file ({tokens_file}): "
                "point it at a file of sha256 digests"]
    try:
        document = yaml.safe_load(Path(tokens_file).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        return [f"SANJI_TOKENS_FILE {tokens_file}: {exc.strerror}"]
    except yaml.YAMLError:
        return [f"SANJI_TOKENS_FILE {tokens_file}: not valid YAML"]
    entries = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return [f"SANJI_TOKENS_FILE {tokens_file}: expected a mapping with a 'tokens' list"]
    problems = []
    in_clear = [str(entry.get("name", index + 1)) for index, entry in enumerate(entries)
                if isinstance(entry, dict) and "token" in entry]
    if in_clear:
        problems.append(f"SANJI_TOKENS_FILE {tokens_file} lists {len(in_clear)} token(s) in clear (token:), "
                        f"e.g. {in_clear[0]}: list sha256 digests only")
    development = _development_token_digests()
    known = [str(entry.get("name", index + 1)) for index, entry in enumerate(entries)
             if isinstance(entry, dict) and str(entry.get("sha256", "")).lower() in development]
    if known:
        problems.append(f"SANJI_TOKENS_FILE {tokens_file} lists {len(known)} development token(s) by digest, "
                        f"e.g. {known[0]}")
    return problems


def _development_key_values(keys_file: Path) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """The blind-index and data keys of the public development keys files (and of the configured keys
    file, when it is marked development)."""
    blind: set[bytes] = set()
    data: set[bytes] = set()
    for path in {DEV_KEYS_FILE, keys_file, *(directory / "dev-keys.yaml" for directory in DEVELOPMENT_CONFIG_DIRS)}:
        try:
            material = load_key_material(pii_key=None, data_keys=None, keys_file=path)
        except KeyConfigError:
            continue
        if material.development_file is None:
            continue
        blind |= {material.blind_index_key} if material.blind_index_key else set()
        data |= set(material.data_keys.values())
    return frozenset(blind), frozenset(data)


def key_problems(settings: Settings) -> list[str]:
    try:
        material = load_key_material(pii_key=settings.pii_key, data_keys=settings.data_keys,
                                     keys_file=settings.keys_file)
    except KeyConfigError as exc:
        return [str(exc)]
    if material.development_file is not None:
        return [f"keys come from the development keys file {material.development_file}: "
                "set SANJI_PII_KEY and SANJI_DATA_KEYS from a secret (or SANJI_KEYS_FILE to a secret file)"]
    problems = []
    dev_blind, dev_data = _development_key_values(settings.keys_file)
    if material.blind_index_key is None:
        problems.append("SANJI_PII_KEY is missing: the ID-number fingerprint (blind index) needs a secret key")
    elif (material.blind_index_key in dev_blind
          or material.blind_index_key.decode("utf-8", "replace").strip().lower() in KNOWN_PLACEHOLDER_KEYS):
        problems.append(f"{material.blind_index_source} is a known development value: set a secret key")
    if not material.data_keys:
        problems.append("SANJI_DATA_KEYS is missing: the applicant table needs key-encryption keys")
    else:
        public = sorted(key_id for key_id, key in material.data_keys.items() if key in dev_data)
        if public:
            problems.append(f"{material.data_keys_source}: key id(s) {', '.join(public)} "
                            "are development keys: set secret keys")
    return problems


def assertion_key_problems(settings: Settings) -> list[str]:
    keys = (settings.assertion_key or "").split()
    if not keys:
        return ["SANJI_ASSERTION_KEY is missing: the console's person assertions need a secret key"]
    development = development_assertion_key()
    problems = []
    for key in keys:
        if key == development or key.lower() in KNOWN_PLACEHOLDER_KEYS:
            problems.append("SANJI_ASSERTION_KEY is a known development value: set a secret key")
        elif len(key.encode()) < 32:
            problems.append("SANJI_ASSERTION_KEY is shorter than 32 bytes (HS256)")
    return list(dict.fromkeys(problems))


def sink_problems(notification: dict[str, str]) -> list[str]:
    problems = []
    if not notification.get("SANJI_NOTIFICATION_SMS_URL"):
        problems.append("SMS go to a file sink (var/notification-sms.jsonl) and would be marked sent: "
                        "set SANJI_NOTIFICATION_SMS_URL")
    if not notification.get("SANJI_NOTIFICATION_SMTP_HOST"):
        problems.append("e-mail goes to a file sink (var/notification-email.jsonl) and would be marked sent: "
                        "set SANJI_NOTIFICATION_SMTP_HOST")
    return problems


def _development_link_keys() -> frozenset[str]:
    keys = set()
    for directory in DEVELOPMENT_CONFIG_DIRS:
        try:
            document = yaml.safe_load((directory / "evaluation-dev.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(document, dict) and document.get("link_key"):
            keys.add(str(document["link_key"]))
    return frozenset(keys)


def link_key_problems(evaluation: dict[str, str]) -> list[str]:
    key = evaluation.get("SANJI_EVALUATION_LINK_KEY", "")
    if not key:
        return ["SANJI_EVALUATION_LINK_KEY is not set: rating links would be signed with the development key"]
    if key in KNOWN_PLACEHOLDER_KEYS or key in _development_link_keys():
        return ["SANJI_EVALUATION_LINK_KEY is a placeholder or the development key: set a secret key"]
    if len(key) < 16:
        return ["SANJI_EVALUATION_LINK_KEY is shorter than 16 characters: set a longer secret key"]
    return []


def rating_link_problems(settings: Settings) -> list[str]:
    base = settings.notification.get("SANJI_NOTIFICATION_RATING_LINK_BASE", "")
    if not base:
        return []
    problems = []
    parts = urlsplit(base)
    if parts.scheme != "https" or (parts.hostname or "") in ("", "localhost", "127.0.0.1", "::1", "0.0.0.0"):
        problems.append(f"SANJI_NOTIFICATION_RATING_LINK_BASE={base!r} is not a public https:// address: the "
                        "completion SMS would link residents to it")
    return problems + [f"the completion SMS signs rating links: {line}"
                       for line in link_key_problems(settings.evaluation)]


def _tls_setting(name: str, value: str | None) -> tuple[str, list[str]]:
    value = value or "required"
    if value not in TLS_SETTINGS:
        return "required", [f"{name}={value!r}: write required or off"]
    return value, []


def database_problems(settings: Settings) -> list[str]:
    try:
        url = make_url(settings.database_url)
    except Exception:  # noqa: BLE001 - any unparsable URL is one line, not a traceback
        return ["SANJI_DATABASE_URL is not a database URL"]
    if url.get_backend_name() == "sqlite":
        return ["the database is SQLite (SANJI_DATABASE_URL): production runs on PostgreSQL"]
    tls, problems = _tls_setting("SANJI_DATABASE_TLS", settings.database_tls)
    sslmode = str(url.query.get("sslmode", "") or settings.pg_sslmode or "").lower()
    if tls == "required" and sslmode not in SECURE_SSLMODES:
        problems.append(f"TLS is required for the database (SANJI_DATABASE_TLS) but SANJI_DATABASE_URL has "
                        f"sslmode={sslmode or 'unset'}: add ?sslmode=verify-full (or require, or set PGSSLMODE)")
    return problems


def broker_problems(settings: Settings) -> list[str]:
    parts = urlsplit(settings.amqp_uri)
    problems = []
    if unquote(parts.username or "guest") == "guest":
        problems.append("the broker user is guest (SANJI_AMQP_URI): connect as the service's own user")
    tls, tls_problems = _tls_setting("SANJI_BROKER_TLS", settings.broker_tls)
    problems += tls_problems
    if tls == "required" and parts.scheme != "amqps":
        problems.append(f"TLS is required for the broker (SANJI_BROKER_TLS) but SANJI_AMQP_URI is "
                        f"{parts.scheme or 'unset'}://: use amqps://")
    return problems


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
