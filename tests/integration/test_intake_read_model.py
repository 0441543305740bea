"""Intake's copy of each item's state (what the resident lookup and the kiosk receipt show) stays right when
routing's events arrive out of order: they travel on different routing keys, so the case's completion can
overtake the last item's resolution."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook

from services.intake.service import IntakeService
from shared.events import CaseCompletedV1, CloudEvent, ItemOutcome, ItemResolvedV1, ItemRoutedV1
from tests.support.cases import MIGRANT_BUNDLE_DESTINATIONS, XINHE_COMMUNITY, XINHE_KIOSK, migrant_bundle

pytestmark = pytest.mark.integration

QIXIA = "320113000000"
ROUTED_AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def deliver(container, payload, at: datetime) -> None:
    with entrypoint_hook(container, "on_item_event") as handle:
        handle(CloudEvent.wrap(payload, source="/sanji/routing", time=at))


def placement(case: dict, matter: str, item_id: str) -> dict:
    level, unit, department = MIGRANT_BUNDLE_DESTINATIONS[matter]
    return dict(item_id=item_id, case_id=case["case_id"], case_number=case["case_number"], matter_code=matter,
                department_code=department, level=level, unit_code=unit, district_code=QIXIA,
                community_code=XINHE_COMMUNITY)


def test_a_completion_that_overtakes_the_last_resolution_still_shows_every_item_final(
        container_factory, make_service_config, web_config_port, web_session):
    intake = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    intake.start()
    case = web_session.post("/v1/cases", data=json.dumps(migrant_bundle(), ensure_ascii=False),
                            headers={"Content-Type": "application/json", **XINHE_KIOSK}).json()
    ids = {matter: f"item-{index}" for index, matter in enumerate(MIGRANT_BUNDLE_DESTINATIONS)}
    for matter, item_id in ids.items():
        deliver(intake, ItemRoutedV1(**placement(case, matter, item_id), status="queued", occurred_at=ROUTED_AT,
                                     legal_deadline=ROUTED_AT + timedelta(days=20),
                                     promised_deadline=ROUTED_AT + timedelta(days=10),
                                     deadline_provisional=False, catalogue_version="v"), ROUTED_AT)
    matters = list(ids)
    resolved_at = {matter: ROUTED_AT + timedelta(hours=index + 1) for index, matter in enumerate(matters)}
    delivery = {"method": "pickup", "place": "7号窗口"}

    def resolution(matter: str) -> ItemResolvedV1:
        return ItemResolvedV1(**placement(case, matter, ids[matter]), status="resolved", actor="王窗口",
                              result="已办结", delivery=delivery, occurred_at=resolved_at[matter])

    for matter in matters[:-1]:
        deliver(intake, resolution(matter), resolved_at[matter])
    completed_at = resolved_at[matters[-1]] + timedelta(seconds=1)
    deliver(intake, CaseCompletedV1(case_id=case["case_id"], case_number=case["case_number"],
                                    community_code=XINHE_COMMUNITY, delivery=delivery, completed_at=completed_at,
                                    outcomes=tuple(ItemOutcome(item_id=ids[m], matter_code=m, status="resolved")
                                                   for m in matters)), completed_at)

    def statuses() -> dict[str, str]:
        view = web_session.get(f"/v1/cases/{case['case_id']}", headers=XINHE_KIOSK).json()
        assert view["completed_at"] is not None
        return {item["matter_code"]: item["status"] for item in view["items"]}

    assert statuses() == dict.fromkeys(matters, "resolved")  # the completion named every final status
    deliver(intake, resolution(matters[-1]), resolved_at[matters[-1]])  # the overtaken resolution, late
    assert statuses() == dict.fromkeys(matters, "resolved")
