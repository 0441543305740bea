"""OpenAPI 3.1 documents generated from the same pydantic models that validate the traffic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.api_models import Health, Liveness
from shared.config import DEFAULT_HTTP_PORTS

# The paging parameters of every list (shared.http.page_of).
PAGE_QUERY = (("limit", False, "at most this many (1-200, default 50)"), ("offset", False, "skip this many"))


@dataclass(frozen=True)
class Operation:
    method: str
    path: str                       # OpenAPI path, e.g. /v1/cases/{case_id}
    summary: str
    response_model: type[BaseModel]
    success_status: int = 200
    request_model: type[BaseModel] | None = None
    errors: dict[int, str] = field(default_factory=dict)
    authenticated: bool = True
    headers: tuple[tuple[str, str], ...] = ()   # (name, description) of optional request headers
    query: tuple[tuple[str, bool, str], ...] = ()   # (name, required, description) of query parameters


# Every service's probes (shared.service_base), documented once.
HEALTH_OPERATIONS = (
    Operation("GET", "/health/ready", "Readiness: the broker and the database answer and the migrations are "
              "applied", Health, authenticated=False, errors={503: "a dependency unreachable, or migrations pending"}),
    Operation("GET", "/health", "Readiness, under its historical name (as /health/ready)", Health,
              authenticated=False, errors={503: "a dependency unreachable, or migrations pending"}),
    Operation("GET", "/health/live", "Liveness: the process serves (no dependency checked)", Liveness,
              authenticated=False),
)


def operation_id(method: str, path: str) -> str:
    """A stable, unique id from the method and the path: GET /v1/cases/{case_id} -> get_v1_cases_by_case_id."""
    words = [f"by_{part[1:-1]}" if part.startswith("{") else part for part in path.strip("/").split("/")]
    return re.sub(r"[^a-z0-9_]+", "_", "_".join([method.lower(), *words]).lower())


def build_openapi(title: str, version: str, description: str, operations: list[Operation],
                  error_model: type[BaseModel], *, service: str) -> dict:
    models = {op.response_model for op in operations} | {op.request_model for op in operations
                                                         if op.request_model} | {error_model}
    keyed = [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)]
    refs, definitions = models_json_schema(keyed, ref_template="#/components/schemas/{model}")

    def ref(model):
        return refs[(model, "validation")]

    paths: dict[str, dict] = {}
    for op in operations:
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _path_parameters(op.path)]
        parameters += [{"name": name, "in": "header", "required": False, "description": text,
                        "schema": {"type": "string", "maxLength": 128}} for name, text in op.headers]
        parameters += [{"name": name, "in": "query", "required": required, "description": text,
                        "schema": {"type": "string"}} for name, required, text in op.query]
        responses = {str(op.success_status): {"description": "success",
                                              "content": {"application/json": {"schema": ref(op.response_model)}}}}
        errors = dict(op.errors)
        if op.authenticated:
            errors.setdefault(401, "missing or unknown bearer token")
        for status, text in sorted(errors.items()):
            responses[str(status)] = {"description": text,
                                      "content": {"application/problem+json": {"schema": ref(error_model)}}}
        operation: dict = {"operationId": operation_id(op.method, op.path), "summary": op.summary,
                           "responses": responses}
        if parameters:
            operation["parameters"] = parameters
        if op.request_model is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": ref(op.request_model)}}}
        operation["security"] = [{"bearer": []}] if op.authenticated else []
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": f"http://127.0.0.1:{DEFAULT_HTTP_PORTS[service]}", "description": "development (make run)"},
                    {"url": f"http://{service}", "description": "inside a cluster (the Kubernetes Service)"}],
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
