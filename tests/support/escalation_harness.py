"""Routing and escalation on one frozen clock, over the real broker and database, worked over HTTP as staff,
specialists and department systems would.

Routing places and moves items; the escalation service follows its events, fires due deadlines when the test
runs a sweep (``sweep()``), and orders items up the line through the bus. Waiting is for a condition (a
row, a level), never for a fixed time.
"""

from __future__ import annotations

import json

import requests
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, text

from services.escalation.service import EscalationService
from shared.clock import FrozenClock
from shared.db import normalise_url
from shared.nameko_ext import ClockProvider
from tests.support.routing_harness import STAFF, RoutingHarness
from tests.support.waiting import wait_until  # noqa: F401 - the harness's tests import it from here

TOKENS = {
    **STAFF,
    "specialist-qixia": {"Authorization": "Bearer dev-specialist-qixia"},
    "specialist-maigaoqiao": {"Authorization": "Bearer dev-specialist-maigaoqiao"},
    "specialist-xuanwu": {"Authorization": "Bearer dev-specialist-xuanwu"},
    "housing-qixia": {"Authorization": "Bearer dev-dept-qixia-housing"},
    "housing-maigaoqiao": {"Authorization": "Bearer dev-dept-maigaoqiao-housing"},
    "housing-xuanwu": {"Authorization": "Bearer dev-dept-xuanwu-housing"},
    "civil-qixia": {"Authorization": "Bearer dev-dept-qixia-civil"},
    "police-qixia": {"Authorization": "Bearer dev-dept-qixia-police"},
}
# Deadlines fire when a test says so: the timer of a hooked test never fires on its own.
HOOKED = {"SANJI_ESCALATION_SWEEP_SECONDS": 3600}


def escalation_on(frozen: FrozenClock, base=EscalationService):
    class EscalationOnFrozenClock(base):
        clock = ClockProvider(frozen)

    return EscalationOnFrozenClock


def query(database_url: str, sql: str, **params) -> list:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


class EscalationHarness:
    def __init__(self, routing: RoutingHarness, container, port: int):
        self.routing, self.container = routing, container
        self.clock, self.database_url, self.amqp = routing.clock, routing.database_url, routing.amqp
        self.base = f"http://127.0.0.1:{port}"
        self.http = requests.Session()

    # ── items ─────────────────────────────────────────────────────────────────────────────────────

    def submit(self, *matter_codes: str, community_code: str = "320113003021") -> dict[str, str]:
        """A case through routing; returns matter -> item id once the escalation service follows each item."""
        case_id = self.routing.submit(*matter_codes, community_code=community_code)
        items = self.routing.items(case_id)
        for item_id in items.values():
            self.wait_item(item_id, lambda view: view["promised_deadline"] is not None, "item followed")
        return items

    def view(self, item_id: str, who: str = "qixia", expect: int = 200) -> dict:
        response = self.http.get(f"{self.base}/v1/items/{item_id}/escalation", headers=TOKENS[who], timeout=10)
        assert response.status_code == expect, response.text
        return response.json()

    def wait_item(self, item_id: str, check, what: str = "item state", timeout: float = 10.0) -> dict:
        def seen():
            response = self.http.get(f"{self.base}/v1/items/{item_id}/escalation", headers=TOKENS["qixia"], timeout=10)
            return response.json() if response.status_code == 200 and check(response.json()) else None

        return wait_until(seen, timeout, what)

    def sweep(self) -> dict:
        with entrypoint_hook(self.container, "fire_due_deadlines") as sweep:
            return sweep()

    def act(self, item_id: str, action: str, who: str, body: dict | None = None) -> dict:
        """A staff action in routing, then wait until the escalation service has seen its result."""
        view = self.routing.act(item_id, action, who, body)
        self.wait_item(item_id, lambda seen: (seen["status"], seen["level"]) == (view["status"], view["level"]),
                       f"escalation sees {action}")
        return view

    # ── HTTP ──────────────────────────────────────────────────────────────────────────────────────

    def get(self, path: str, who: str, expect: int = 200) -> dict:
        response = self.http.get(f"{self.base}{path}", headers=TOKENS[who], timeout=10)
        assert response.status_code == expect, response.text
        return response.json()

    def post(self, path: str, who: str, body: dict | None = None, expect: int = 200) -> dict:
        response = self.http.post(f"{self.base}{path}", data=json.dumps(body or {}, ensure_ascii=False),
                                  headers={"Content-Type": "application/json", **TOKENS[who]}, timeout=10)
        assert response.status_code == expect, response.text
        return response.json()

    # ── what was published ────────────────────────────────────────────────────────────────────────

    def published(self, event_type_suffix: str, source: str | None = None) -> list[dict]:
        """Event bodies (data) of one type, in outbox order, from either service (or one ``source``)."""
        rows = query(self.database_url, "SELECT body, source FROM outbox_messages WHERE event_type = :t ORDER BY seq",
                     t=f"cn.sanji.{event_type_suffix}")
        return [json.loads(body)["data"] for body, row_source in rows if source in (None, row_source)]


def start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url,
                clock: FrozenClock, **escalation_config) -> EscalationHarness:
    """Routing (served at ``web_config_port``) and escalation (on a free port), both on ``clock``."""
    from nameko.testing.utils import find_free_port

    from tests.support.routing_harness import routing_on

    routing = container_factory(routing_on(clock), make_service_config("routing", web_port=web_config_port))
    routing.start()
    port = find_free_port()
    escalation = container_factory(escalation_on(clock), make_service_config(
        "escalation", web_port=port, **{**HOOKED, **escalation_config}))
    escalation.start()
    return EscalationHarness(RoutingHarness(routing, web_session, rabbit_config["AMQP_URI"], database_url, clock),
                             escalation, port)
