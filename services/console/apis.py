"""The other services' HTTP APIs, as the console calls them (never their databases).

``ServiceApis`` is a nameko DependencyProvider in the style of nameko-examples' ``Storage``: it builds
one HTTP session in ``setup()`` and hands each worker a thin ``ApiClient`` with domain-named methods.
Every call carries a bearer token: a person assertion for a signed-in person (``shared/auth.py``), or a
machine token (a kiosk's). An answer is an ``ApiAnswer``; a refusal keeps the service's ``reason`` so a
page can say in Chinese why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from nameko.extensions import DependencyProvider

from services.console.settings import ConsoleSettings
from shared import tracing


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: Any = None
    reason: str | None = None       # the problem's machine-readable reason when refused
    message: str = ""
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ServiceUnavailable(Exception):
    """A service did not answer (down, or too slow): pages show it as such, not as a refusal."""

    def __init__(self, service: str):
        super().__init__(f"{service} did not answer")
        self.service = service


class ApiClient:
    def __init__(self, session: requests.Session, settings: ConsoleSettings):
        self._session = session
        self._settings = settings
        self._trace: dict[str, str] = {}

    def carry_trace(self) -> None:
        """Keep the page's trace context for calls made from other greenthreads (the desk's concurrent calls
        start with an empty context)."""
        self._trace = tracing.current_trace_context()

    def call(self, service: str, method: str, path: str, *, token: str, json: Any = None,
             params: dict | None = None) -> ApiAnswer:
        url = self._settings.service_urls[service] + path
        try:
            # W3C trace context, when tracing is on: the API's span is a child of the page's.
            headers = {"Authorization": f"Bearer {token}", **(tracing.current_trace_context() or self._trace)}
            response = self._session.request(method, url, json=json, params=params, headers=headers,
                                             timeout=self._settings.api_timeout_seconds)
        except requests.RequestException:
            raise ServiceUnavailable(service) from None
        if response.status_code >= 500:
            raise ServiceUnavailable(service)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok:
            return ApiAnswer(response.status_code, body)
        body = body if isinstance(body, dict) else {}
        details = {k: v for k, v in body.items() if k not in ("type", "title", "status", "reason", "request_id")}
        return ApiAnswer(response.status_code, body, reason=body.get("reason", "refused"),
                         message=str(body.get("title", "")), details=details)

    # routing: the staff API
    def items(self, token: str, **filters) -> ApiAnswer:
        return self.call("routing", "GET", "/v1/items", token=token,
                         params={k: v for k, v in filters.items() if v not in (None, "")})

    def item(self, token: str, item_id: str) -> ApiAnswer:
        return self.call("routing", "GET", f"/v1/items/{item_id}", token=token)

    def act(self, token: str, item_id: str, action: str, body: dict) -> ApiAnswer:
        return self.call("routing", "POST", f"/v1/items/{item_id}/{action}", token=token, json=body)

    # notification: the in-app inbox
    def inbox(self, token: str, **params) -> ApiAnswer:
        return self.call("notification", "GET", "/v1/inbox", token=token, params=params)

    # escalation: the supervisor desk
    def escalation(self, token: str, path: str, **params) -> ApiAnswer:
        return self.call("escalation", "GET", path, token=token,
                         params={k: v for k, v in params.items() if v not in (None, "")})

    # evaluation: 好差评, rectifications, appeals, 督办单, the three rates
    def evaluation(self, method: str, path: str, *, token: str, json: Any = None,
                   params: dict | None = None) -> ApiAnswer:
        return self.call("evaluation", method, path, token=token, json=json,
                         params={k: v for k, v in (params or {}).items() if v not in (None, "")})

    def evaluation_export(self, path: str, *, token: str, params: dict) -> tuple[ApiAnswer, bytes]:
        """A file the evaluation service answers (the rates' CSV): the answer, and the bytes as they came."""
        url = self._settings.service_urls["evaluation"] + path
        try:
            response = self._session.get(url, params=params, headers={"Authorization": f"Bearer {token}"},
                                         timeout=self._settings.api_timeout_seconds)
        except requests.RequestException:
            raise ServiceUnavailable("evaluation") from None
        if response.status_code >= 500:
            raise ServiceUnavailable("evaluation")
        if response.ok:
            return ApiAnswer(response.status_code, None), response.content
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return ApiAnswer(response.status_code, body, reason=body.get("reason", "refused"),
                         message=str(body.get("title", ""))), b""

    # intake: cases (kiosk, lookup)
    def intake(self, method: str, path: str, *, token: str, json: Any = None, params: dict | None = None) -> ApiAnswer:
        return self.call("intake", method, path, token=token, json=json, params=params)


class ServiceApis(DependencyProvider):
    def setup(self):
        self.settings = ConsoleSettings.from_config(self.container.config)
        self.session = requests.Session()
        # The services are internal: no proxy or .netrc look-up per request (measured: ~8 ms each).
        self.session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def stop(self):
        self.session.close()

    def get_dependency(self, worker_ctx):
        return ApiClient(self.session, self.settings)
