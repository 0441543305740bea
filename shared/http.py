"""HTTP plumbing for nameko's ``@http`` entrypoints: JSON in and out, and errors as problem documents.

Every error a client can cause is an ``ApiError`` with an HTTP status and a machine-readable
``reason``; the body follows RFC 9457 (application/problem+json). Nothing the client sent is echoed
back in an error, so a rejected ID number does not travel further than the request that carried it.
"""

from __future__ import annotations

import functools
import json
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
    """Parse and validate a JSON body, with a size limit and errors that never echo the input."""
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
        document = _parse_json(raw)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", "request body does not match the schema",
                       errors=describe_validation_errors(exc)) from None


def _parse_json(raw: bytes):
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc.msg}"
                       if isinstance(exc, json.JSONDecodeError) else "request body is not UTF-8") from None


MAX_PAGE = 200


def page_of(request: Request, default_limit: int = 50) -> tuple[int, int]:
    """``limit`` (1 to MAX_PAGE) and ``offset`` (0 or more) from the query string, or a 400 saying why."""
    try:
        limit = int(request.args.get("limit", default_limit))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise ApiError(400, "invalid_query", "limit and offset are whole numbers") from None
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ApiError(400, "invalid_query", f"limit is 1 to {MAX_PAGE}, offset 0 or more")
    return limit, offset


def describe_validation_errors(exc: ValidationError) -> list[dict]:
    return [{"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"],
             "code": error["type"]} for error in exc.errors(include_input=False, include_url=False)]


def api_endpoint(handler):
    """Wrap an ``@http`` method: bind a request id, turn ApiErrors and domain Refusals into problems,
    hide tracebacks."""

    @functools.wraps(handler)
    def wrapper(self, request: Request, *args, **kwargs):
        request_id = request.headers.get("X-Request-Id") or new_id()
        structlog.contextvars.bind_contextvars(request_id=request_id, path=request.path,
                                               method=request.method)
        try:
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
