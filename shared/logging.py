"""structlog set-up: JSON in production, readable in a terminal, ids bound per message or request.

Personal data must never reach a log line. Code logs ids and codes only; as a second line of defence
every line is scrubbed, whether it comes from structlog or from the standard library (nameko, kombu,
SQLAlchemy), including exception messages and tracebacks:

- anything shaped like an 18-character ID number, a mobile number (1[3-9] + 9 digits, optionally +86),
  a landline (025-12345678, 02512345678) or an e-mail address is replaced by a label;
- the values of fields that can only hold personal data (``phone``, ``id_number``, ``applicant_name``...)
  are replaced whatever their shape;
- names have no shape, so the services *tell* the scrubber the personal values they handle
  (``remember_personal_values``): intake when it takes a submission in or decrypts an applicant,
  notification when it receives a contact. The last few thousand such values are masked anywhere in a
  line, in this process.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections import OrderedDict

import structlog

# 18-character resident ID (17 digits + digit or X), mainland mobile numbers and landlines (area code
# 0 + 2-3 digits, optional dash, 7-8 digits), not inside longer runs of digits, letters or decimals.
_EDGE_BEFORE = r"(?<![0-9A-Za-z.])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"
_ID_NUMBER = re.compile(_EDGE_BEFORE + r"\d{17}[\dXx]" + _EDGE_AFTER, re.ASCII)
_PHONE = re.compile(_EDGE_BEFORE + r"(?:\+?86[- ]?)?1[3-9]\d{9}" + _EDGE_AFTER, re.ASCII)
_LANDLINE = re.compile(r"(?<![0-9A-Za-z.-])" +  # "-": the last group of a UUID may be all digits
                       r"0\d{2,3}[- ]?\d{7,8}" + _EDGE_AFTER, re.ASCII)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

# Fields that hold personal data whatever their value looks like.
PERSONAL_FIELDS = frozenset({
    "applicant_name", "reporter_name", "resident_name", "recipient_name", "id_number", "phone", "mobile",
    "telephone", "email", "address", "applicant", "reporter", "contact",
})
REDACTED = "[redacted]"

_MAX_REMEMBERED = 4096
_MIN_REMEMBERED_LENGTH = 2  # a one-character "name" would mask every occurrence of that character
_remembered: OrderedDict[str, None] = OrderedDict()
_remembered_lock = threading.Lock()
_remembered_pattern: re.Pattern | None = None
_ASCII_EDGE = re.compile(r"[0-9A-Za-z]")


def _remembered_alternative(value: str) -> str:
    """A remembered value as a regex: a value that starts or ends with a letter or digit must not be part
    of a longer run of them (a remembered phone inside a UUID is not that phone); CJK names have no
    word boundaries and match anywhere."""
    before = r"(?<![0-9A-Za-z])" if _ASCII_EDGE.match(value[0]) else ""
    after = r"(?![0-9A-Za-z])" if _ASCII_EDGE.match(value[-1]) else ""
    return before + re.escape(value) + after


def remember_personal_values(*values: object) -> None:
    """Mask these values (a name, a phone...) in every later log line of this process."""
    global _remembered_pattern
    fresh = [value.strip() for value in values
             if isinstance(value, str) and len(value.strip()) >= _MIN_REMEMBERED_LENGTH]
    if not fresh:
        return
    with _remembered_lock:
        new = False
        for value in fresh:
            new = new or value not in _remembered
            _remembered[value] = None
            _remembered.move_to_end(value)
        if not new:  # the same set of values: the pattern stands (compiling it is the costly part)
            return
        while len(_remembered) > _MAX_REMEMBERED:
            _remembered.popitem(last=False)
        # Longest first, so "刘金花" is masked before a shorter remembered "刘金" could split it.
        _remembered_pattern = re.compile("|".join(
            _remembered_alternative(value) for value in sorted(_remembered, key=len, reverse=True)))


def forget_personal_values() -> None:
    global _remembered_pattern
    with _remembered_lock:
        _remembered.clear()
        _remembered_pattern = None


def redact_text(text: str) -> str:
    # Shapes first, so a phone shows as "[phone redacted]" even when it was also remembered.
    text = _ID_NUMBER.sub("[id-number redacted]", text)
    text = _EMAIL.sub("[email redacted]", text)
    text = _PHONE.sub("[phone redacted]", text)
    text = _LANDLINE.sub("[phone redacted]", text)
    pattern = _remembered_pattern
    if pattern is not None:
        text = pattern.sub("[personal data redacted]", text)
    return text


def _redact_value(value, key: str | None = None, personal: bool = False):
    """``personal``: inside a field that holds personal data, where a bare ``name`` is a person's name."""
    key = key.lower() if isinstance(key, str) else None
    field_is_personal = key is not None and (key in PERSONAL_FIELDS or (personal and key == "name"))
    if isinstance(value, str):
        scrubbed = redact_text(value)
        # A personal field keeps the label of what was found in it, or loses its value altogether.
        return scrubbed if not field_is_personal or scrubbed != value else REDACTED
    if field_is_personal and not isinstance(value, dict | list | tuple | set | frozenset) and value is not None:
        return REDACTED
    inner = personal or field_is_personal
    if isinstance(value, dict):
        return {k: _redact_value(item, k, inner) for k, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item, None, inner) for item in value)
    if isinstance(value, set | frozenset):
        return [_redact_value(item, None, inner) for item in value]
    if isinstance(value, BaseException):
        return redact_text("".join(traceback.format_exception_only(type(value), value)).strip())
    if value is None or isinstance(value, bool | int | float):
        return value
    shown = repr(value)
    scrubbed = redact_text(shown)
    return value if scrubbed == shown else scrubbed


def redact_personal_data(_logger, _method, event_dict):
    """structlog processor: scrub every value (after ``format_exc_info`` has turned tracebacks into text)."""
    return {key: _redact_value(value, key if key not in ("event", "exception") else None)
            for key, value in event_dict.items()}


_base_record_factory = logging.getLogRecordFactory()
_factory_installed = False


def _scrub_argument(value):
    """One %-argument of a stdlib record: scrubbed, keeping its type unless it held personal data."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    try:
        shown = str(value)
    except Exception:  # noqa: BLE001 - an object that cannot show itself shows nothing
        return value
    scrubbed = redact_text(shown)
    return value if scrubbed == shown else scrubbed


def _scrubbing_record_factory(*args, **kwargs) -> logging.LogRecord:
    """Scrub a standard-library record as it is made, so that every handler (ours, a test's caplog, a
    library's own) sees only scrubbed text. The message template and each argument are scrubbed in
    place, so filters that look at ``record.args`` keep working. structlog's own records carry an
    already-scrubbed dict."""
    record = _base_record_factory(*args, **kwargs)
    if isinstance(record.msg, str):
        record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_scrub_argument(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _scrub_argument(arg) for key, arg in record.args.items()}
    elif record.msg is not None and not isinstance(record.msg, dict):
        record.msg = _scrub_argument(record.msg)
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def install_record_scrubber() -> None:
    global _factory_installed
    if not _factory_installed:
        logging.setLogRecordFactory(_scrubbing_record_factory)
        _factory_installed = True


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and route the standard library's logging (nameko, kombu) through it."""
    install_record_scrubber()
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
        # filter_by_level first: an event below the logger's level is dropped before anything renders it
        # (without it, every log.debug call was timestamped, redacted and wrapped, then thrown away).
        processors=[structlog.stdlib.filter_by_level, *shared_processors,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
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
    # kombu and amqp are chatty at INFO about every connection, alembic about each of its plugins; warnings
    # still show.
    for noisy in ("amqp", "kombu", "nameko.containers", "alembic.runtime.migration", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # nameko logs whole RPC request and reply bodies at DEBUG; intake's contact reply holds personal data.
    for bodies in ("nameko.rpc", "nameko.messaging"):
        logging.getLogger(bodies).setLevel(max(logging.INFO, root.level))


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
