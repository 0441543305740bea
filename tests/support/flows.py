"""Whole flows the end-to-end tests share: 流动人口一件事 from the kiosk to completion, over HTTP and the bus."""

from __future__ import annotations

import json

import requests

from tests.support.cases import XINHE_KIOSK, migrant_bundle
from tests.support.waiting import wait_until

STREET_STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}
COMMUNITY_STAFF = {"Authorization": "Bearer dev-staff-xinhe"}


def migrant_case_to_completion(web_session, staff_api: str) -> tuple[dict, dict[str, dict], dict]:
    """The kiosk submits the bundle with the landlord's ID copy deferred (容缺); each unit claims, accepts and
    resolves its item (the copy supplied on the way), for one door delivery. Returns the receipt, the routed
    items by matter and the completed case, as intake shows them."""
    body = migrant_bundle(materials={
        "provided": ["id-card", "photo", "rental-contract", "labour-contract", "landlord-property-certificate-copy",
                     "job-or-school-proof", "spouse-id-card", "education-certificate"],
        "deferred": ["landlord-id-copy"]})
    receipt = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                               headers={"Content-Type": "application/json", **XINHE_KIOSK}).json()

    def routed_case():
        case = web_session.get(f"/v1/cases/{receipt['case_id']}", headers=XINHE_KIOSK).json()
        return case if all(item["item_id"] for item in case["items"]) else None

    items = {item["matter_code"]: item for item in wait_until(routed_case)["items"]}

    def work(item_id, headers, *, supply=None):
        for action, payload in (("claim", {}), ("accept", {}),
                                *([("record-supplement", {"materials": supply})] if supply else []),
                                ("resolve", {"result": "已办结",
                                             "delivery": {"method": "door", "agent_id": "sw-017"}})):
            response = requests.post(f"{staff_api}/{item_id}/{action}", json=payload, headers=headers, timeout=5)
            assert response.status_code == 200, (action, response.text)

    work(items["residence-permit"]["item_id"], STREET_STAFF, supply=["landlord-id-copy"])
    work(items["vocational-training-signup"]["item_id"], STREET_STAFF)
    work(items["birth-registration-proof"]["item_id"], COMMUNITY_STAFF)
    work(items["employment-registration"]["item_id"], COMMUNITY_STAFF)

    def completed_case():
        case = web_session.get(f"/v1/cases/{receipt['case_id']}", headers=XINHE_KIOSK).json()
        return case if case["completed_at"] else None

    return receipt, items, wait_until(completed_case)
