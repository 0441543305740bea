"""The HTTP routes a nameko service class serves, in OpenAPI path syntax, for checks against its documents."""

from __future__ import annotations

import inspect
import re

from nameko.web.handlers import HttpRequestHandler


def served_routes(service_class) -> set[tuple[str, str]]:
    """(method, path) of every @http entrypoint, inherited ones (/health, /metrics) included."""
    served = set()
    for _, attribute in inspect.getmembers(service_class):
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()):
            if isinstance(entrypoint, HttpRequestHandler):
                served.add((entrypoint.method, re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", entrypoint.url)))
    return served
