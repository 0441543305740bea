"""Pages: Jinja2 templates (server-rendered, Simplified Chinese), static files, and HTML responses.

Templates are looked up in ``services/console/templates`` and then in each page package's own
``templates`` folder (``services/console/kiosk/templates``), so a page package ships its templates
beside its code. Static files are served from ``services/console/static`` under ``/static/...`` and
from ``services/console/kiosk/static`` under ``/static/kiosk/...``.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from werkzeug.wrappers import Response

from shared.workdays import SHANGHAI

CONSOLE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIRS = [CONSOLE_DIR / "templates", CONSOLE_DIR / "kiosk" / "templates"]
STATIC_DIRS = {"": CONSOLE_DIR / "static", "kiosk": CONSOLE_DIR / "kiosk" / "static"}

# Pages are never cached by a shared proxy (they carry personal work); framing is refused.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(SHANGHAI)
    return value.strftime(fmt)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{round(float(value) * 100)}%"


def _environment() -> Environment:
    environment = Environment(loader=FileSystemLoader([str(path) for path in TEMPLATE_DIRS]),
                              autoescape=select_autoescape(["html", "svg", "xml"]),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["local_time"] = _local_time
    environment.filters["local_date"] = lambda value: _local_time(value, "%Y-%m-%d")
    environment.filters["percent"] = _percent
    return environment


TEMPLATES = _environment()


def render(template: str, status: int = 200, headers: dict | None = None, **context) -> Response:
    """A page from a template; ``context`` is what the template sees (StrictUndefined: a typo fails loudly)."""
    context.setdefault("user", None)
    context.setdefault("csrf_token", "")
    context.setdefault("nav", "")
    body = TEMPLATES.get_template(template).render(**context)
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    for name, value in {**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})}.items():
        response.headers[name] = value
    return response


def redirect(location: str, status: int = 303) -> Response:
    response = Response("", status=status, headers={"Location": location})
    response.headers["Cache-Control"] = "no-store"
    return response


def static_file(path: str) -> Response:
    """A file under one of STATIC_DIRS; 404 for anything else (no way out of the folder)."""
    first, _, rest = path.partition("/")
    base, relative = (STATIC_DIRS[first], rest) if first in STATIC_DIRS and first else (STATIC_DIRS[""], path)
    target = (base / relative).resolve()
    if not relative or base.resolve() not in target.parents or not target.is_file():
        return Response("not found", status=404, content_type="text/plain; charset=utf-8")
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript", "image/svg+xml"):
        content_type += "; charset=utf-8"
    response = Response(target.read_bytes(), content_type=content_type)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
