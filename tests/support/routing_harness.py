"""A routing service on a frozen clock, fed cases over the bus and worked over HTTP, as staff would."""

from __future__ import annotations

import json
from datetime import date, datetime

from nameko.testing.services import entrypoint_hook, entrypoint_waiter
from sqlalchemy import create_engine, text

from services.routing.service import RoutingService
from shared.clock import FrozenClock, new_id
from shared.db import normalise_url
from shared.events import CaseSubmittedV1, CloudEvent, DeferredMaterial
from shared.nameko_ext import ClockProvider
from tests.support.bus import publish_raw
from tests.support.db import outbox_bodies

XINHE = "320113003021"
STAFF = {
    "xinhe": {"Authorization": "Bearer dev-staff-xinhe"},             # 馨合家园社区
    "maigaoqiao": {"Authorization": "Bearer dev-staff-maigaoqiao"},   # 迈皋桥街道
    "qixia": {"Authorization": "Bearer dev-staff-qixia"},             # 栖霞区
    "xiaolingwei": {"Authorization": "Bearer dev-staff-xiaolingwei"}, # 孝陵卫街道 (玄武区)
    "qixia-hrss": {"Authorization": "Bearer dev-dept-qixia-hrss"},    # 栖霞区 人社 system
    "kiosk": {"Authorization": "Bearer dev-kiosk-xinhe"},
}


def routing_on(frozen: FrozenClock):
    class RoutingOnFrozenClock(RoutingService):
        clock = ClockProvider(frozen)

    return RoutingOnFrozenClock


class RoutingHarness:
    def __init__(self, container, web_session, amqp_uri: str, database_url: str, clock: FrozenClock):
        self.container, self.web, self.amqp, self.database_url, self.clock = (
            container, web_session, amqp_uri, database_url, clock)

    def submit(self, *matter_codes: str, deferred: tuple[tuple[str, str, date], ...] = (),
               community_code: str = XINHE) -> str:
        case_id = new_id()
        payload = CaseSubmittedV1(
            case_id=case_id, case_number=f"SJTEST-{case_id[:8]}", community_code=community_code,
            catalogue_version="test", bundle_code=None, matter_codes=matter_codes, channel="kiosk",
            applicant_masked_name="刘**", submitted_at=self.clock.now(),
            deferred_materials=tuple(DeferredMaterial(matter_code=m, material_code=c, due_date=d)
                                     for m, c, d in deferred))
        event = CloudEvent.wrap(payload, source="/sanji/intake", time=self.clock.now())
        with entrypoint_waiter(self.container, "on_case_submitted"):
            publish_raw(self.amqp, event.model_dump_json(), payload.routing_key())
        return case_id

    def items(self, case_id: str) -> dict[str, str]:
        """matter code -> item id, for one case."""
        engine = create_engine(normalise_url(self.database_url))
        try:
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT matter_code, id FROM routing_items WHERE case_id = :c"),
                                          {"c": case_id}).all()
        finally:
            engine.dispose()
        return dict(rows)

    def get(self, item_id: str, who: str = "qixia") -> dict:
        response = self.web.get(f"/v1/items/{item_id}", headers=STAFF[who])
        assert response.status_code == 200, response.text
        return response.json()

    def act(self, item_id: str, action: str, who: str, body: dict | None = None, expect: int = 200) -> dict:
        response = self.web.post(f"/v1/items/{item_id}/{action}", data=json.dumps(body or {}, ensure_ascii=False),
                                 headers={"Content-Type": "application/json", **STAFF[who]})
        assert response.status_code == expect, response.text
        return response.json()

    def work_to_resolution(self, item_id: str, who: str, delivery: dict | None = None) -> dict:
        self.act(item_id, "claim", who)
        self.act(item_id, "accept", who)
        return self.act(item_id, "resolve", who, {
            "result": "已办结", "delivery": delivery or {"method": "pickup", "place": "迈皋桥街道为民服务中心7号窗口"}})

    def sweep(self):
        with entrypoint_hook(self.container, "sweep_deferrals") as sweep:
            return sweep()

    def outbox(self, event_type_suffix: str) -> list[dict]:
        return outbox_bodies(self.database_url, event_type_suffix)


def at(*args) -> datetime:
    from shared.workdays import SHANGHAI

    return datetime(*args, tzinfo=SHANGHAI)
