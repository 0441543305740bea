"""structlog set-up: JSON in production, readable in a terminal, ids bound per message or request.

Personal data must never reach a log line. Code logs ids and codes only; as a second line of defence
``redact_personal_data`` masks anything shaped like an ID-card number, an e-mail address or a mobile
phone number.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

# 18-character resident ID (17 digits + digit or X) and mainland mobile numbers, not inside longer digit runs.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def redact_text(text: str) -> str:
    text = _ID_NUMBER.sub("[id-number redacted]", text)
    text = _EMAIL.sub("[email redacted]", text)
    return _PHONE.sub("[phone redacted]", text)


def _redact_value(value):
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    return value


def redact_personal_data(_logger, _method, event_dict):
    return {key: _redact_value(value) for key, value in event_dict.items()}


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and route the standard library's logging (nameko, kombu) through it."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_personal_data,
    ]
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if use_json else (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors[:-1] + [redact_personal_data],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kombu and amqp are chatty at INFO about every connection; warnings still show.
    for noisy in ("amqp", "kombu", "nameko.containers", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # nameko logs whole RPC request and reply bodies at DEBUG; intake's contact reply holds personal data.
    for bodies in ("nameko.rpc", "nameko.messaging"):
        logging.getLogger(bodies).setLevel(max(logging.INFO, root.level))


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
