"""HTTP plumbing for nameko's ``@http`` entrypoints: JSON in and out, and errors as problem documents.

Every error a client can cause is an ``ApiError`` with an HTTP status and a machine-readable
``reason``; the body follows RFC 9457 (application/problem+json). Nothing the client sent is echoed
back in an error, so a rejected ID number does not travel further than the request that carried it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from werkzeug.wrappers import Request, Response

from shared.clock import new_id
from shared.refusal import Refusal

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, **details: Any):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details


def json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    headers=headers or {}, content_type="application/json; charset=utf-8")


def problem_response(error: ApiError, request_id: str) -> Response:
    body = {"type": f"urn:sanji:error:{error.reason}", "title": error.message, "status": error.status,
            "reason": error.reason, "request_id": request_id, **error.details}
    headers = {"WWW-Authenticate": 'Bearer realm="sanji"'} if error.status == 401 else {}
    return Response(json.dumps(body, ensure_ascii=False), status=error.status, headers=headers,
                    content_type="application/problem+json; charset=utf-8")


def read_json(request: Request, model: type[BaseModel]) -> BaseModel:
    """Parse and validate a JSON body, with limits on size, depth, numbers and characters, and errors that never
    echo the input. Every refusal is a 4xx problem before anything is written."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"request body is larger than {MAX_BODY_BYTES} bytes")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        document = {}  # an action with nothing to say (claim, accept) may send no body
    elif request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    else:
        document = parse_json(raw)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", "request body does not match the schema",
                       errors=describe_validation_errors(exc)) from None


# A body deeper than this is no request of ours: refused before the parser recurses (10,000 nested arrays would
# otherwise exhaust the interpreter's stack).
MAX_JSON_DEPTH = 32
# No field takes a number this long; Python would refuse to convert beyond 4,300 digits with a ValueError.
MAX_NUMBER_DIGITS = 18
# Characters no text of ours carries, and that databases refuse or mangle: C0 controls other than tab, line feed
# and carriage return, DEL, and unpaired UTF-16 surrogates (which cannot be encoded as UTF-8). PostgreSQL refuses
# a NUL in a string outright.
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class _Refused(Exception):
    def __init__(self, error: ApiError):
        self.error = error


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _Refused(ApiError(422, "validation_failed", f"a number in the body has more than {MAX_NUMBER_DIGITS} "
                                "digits", errors=[{"field": "", "problem": "number too long",
                                                   "code": "number_too_long"}]))
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or len(text) > 64:
        raise _Refused(ApiError(422, "validation_failed", "a number in the body is out of range",
                                errors=[{"field": "", "problem": "number out of range",
                                         "code": "number_out_of_range"}]))
    return value


def _no_constants(name: str):
    raise _Refused(ApiError(400, "malformed_json", f"request body is not valid JSON: {name} is not a JSON value"))


def parse_json(raw: bytes):
    """JSON text (UTF-8) to Python, or an ApiError: malformed (400), or a document no schema of ours could accept
    (too deep, a number too long, a forbidden character: 422)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "request body is not UTF-8") from None
    depth, deepest = 0, 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            raise ApiError(400, "malformed_json", f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constants)
    except _Refused as refused:
        raise refused.error from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc.msg}") from None
    except (RecursionError, ValueError):  # belt and braces: the limits above should leave nothing to these
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    field = _forbidden_character_at(document)
    if field is not None:
        raise ApiError(422, "validation_failed", "request body carries a control character or an unpaired "
                       "surrogate", errors=[{"field": field, "problem": "forbidden character",
                                             "code": "forbidden_character"}])
    return document


def _forbidden_character_at(document) -> str | None:
    """The dotted path of the first string (value or key) with a forbidden character, or None."""
    pending = [((), document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if FORBIDDEN_CHARACTERS.search(value):
                return ".".join(str(part) for part in path)
        elif isinstance(value, dict):
            for key, inner in value.items():
                if FORBIDDEN_CHARACTERS.search(key):
                    return ".".join(str(part) for part in (*path, "<key>"))
                pending.append(((*path, key), inner))
        elif isinstance(value, list):
            pending.extend(((*path, index), inner) for index, inner in enumerate(value))
    return None


def has_forbidden_characters(text: str) -> bool:
    return FORBIDDEN_CHARACTERS.search(text) is not None


MAX_PAGE = 200
MAX_OFFSET = 10_000_000   # a database refuses an OFFSET past its integer range; no page of ours is that far


def page_of(request: Request, default_limit: int = 50) -> tuple[int, int]:
    """``limit`` (1 to MAX_PAGE) and ``offset`` (0 to MAX_OFFSET) from the query string, or a 400 saying why."""
    limit_text, offset_text = request.args.get("limit", str(default_limit)), request.args.get("offset", "0")
    try:
        if max(len(limit_text), len(offset_text)) > 12:   # out of range anyway; and int() of 5,000 digits raises
            raise ValueError
        limit, offset = int(limit_text), int(offset_text)
    except ValueError:
        raise ApiError(400, "invalid_query", "limit and offset are whole numbers") from None
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
        raise ApiError(400, "invalid_query", f"limit is 1 to {MAX_PAGE}, offset 0 to {MAX_OFFSET}")
    return limit, offset


# pydantic's messages may quote the input (a discriminator's value, say): a refusal never echoes more than this.
MAX_PROBLEM_TEXT = 200


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_TEXT else text[:MAX_PROBLEM_TEXT - 1] + "…"


def describe_validation_errors(exc: ValidationError) -> list[dict]:
    return [{"field": _clipped(".".join(str(part) for part in error["loc"])), "problem": _clipped(error["msg"]),
             "code": error["type"]} for error in exc.errors(include_input=False, include_url=False)]


# A client's own request id is echoed in a header and in logs: only a plain token of it.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_PATH_PARAMETER = 128   # ids and numbers are 36 characters or fewer
MAX_QUERY_VALUE = 256


def check_url(request: Request, path_parameters: dict) -> None:
    """Path parameters and the query string carry no forbidden character and no absurd length: such an id names
    nothing (404), such a filter is a bad query (400). Checked before any handler looks anything up."""
    for value in path_parameters.values():
        if isinstance(value, str) and (len(value) > MAX_PATH_PARAMETER or has_forbidden_characters(value)):
            raise ApiError(404, "not_found", "nothing has that id")
    for name, value in request.args.items(multi=True):
        if len(value) > MAX_QUERY_VALUE or has_forbidden_characters(name) or has_forbidden_characters(value):
            raise ApiError(400, "invalid_query", f"query values are at most {MAX_QUERY_VALUE} characters, without "
                           "control characters")


def api_endpoint(handler):
    """Wrap an ``@http`` method: bind a request id, turn ApiErrors and domain Refusals into problems,
    hide tracebacks."""

    @functools.wraps(handler)
    def wrapper(self, request: Request, *args, **kwargs):
        offered = request.headers.get("X-Request-Id", "")
        request_id = offered if _REQUEST_ID.fullmatch(offered) else new_id()
        structlog.contextvars.bind_contextvars(request_id=request_id, path=request.path,
                                               method=request.method)
        try:
            check_url(request, kwargs)
            response = handler(self, request, *args, **kwargs)
            response.headers["X-Request-Id"] = request_id
            return response
        except ApiError as error:
            log.info("request refused", status=error.status, reason=error.reason)
            return problem_response(error, request_id)
        except Refusal as refusal:
            log.info("request refused", status=refusal.status, reason=refusal.reason)
            return problem_response(ApiError(refusal.status, refusal.reason, refusal.message, **refusal.details),
                                    request_id)
        except Exception:  # noqa: BLE001 - the client gets a reason and an id, the log gets the trace
            log.exception("request failed")
            return problem_response(ApiError(500, "internal_error",
                                             "the request could not be processed; quote the request id"),
                                    request_id)
        finally:
            structlog.contextvars.clear_contextvars()

    return wrapper
