"""Sample submissions, as a kiosk of 馨合家园社区 (迈皋桥街道, 栖霞区) would send them."""

from __future__ import annotations

import copy

from shared.identity import make_valid_id_number

XINHE_COMMUNITY = "320113003021"
MAIGAOQIAO_STREET = "320113003000"
QIXIA_DISTRICT = "320113000000"
XUANWU_COMMUNITY = "320102002001"

XINHE_KIOSK = {"Authorization": "Bearer dev-kiosk-xinhe"}
XUANWU_KIOSK = {"Authorization": "Bearer dev-kiosk-xuanwu"}
MAIGAOQIAO_STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}

APPLICANT_ID_NUMBER = make_valid_id_number("32011319900307123")
APPLICANT_PHONE = "13912345678"

MIGRANT_BUNDLE = {
    "community_code": XINHE_COMMUNITY,
    "bundle": "migrant-bundle",
    "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER, "phone": APPLICANT_PHONE},
    "materials": {
        "provided": ["id-card", "photo", "rental-contract", "labour-contract"],
        "deferred": ["landlord-property-certificate-copy", "landlord-id-copy", "job-or-school-proof",
                     "spouse-id-card", "education-certificate"],
    },
    "channel": {"kind": "kiosk"},
    "description": "流动人口一件事：居住证、生育证明、职业技能培训、就业登记",
}

# matter -> (level, unit) it must reach for a case from 馨合家园, per the shipped catalogue
MIGRANT_BUNDLE_DESTINATIONS = {
    "residence-permit": ("street", MAIGAOQIAO_STREET, "police"),
    "birth-registration-proof": ("community", XINHE_COMMUNITY, "health"),
    "vocational-training-signup": ("street", MAIGAOQIAO_STREET, "hrss"),
    "employment-registration": ("community", XINHE_COMMUNITY, "hrss"),
}


def migrant_bundle(**changes) -> dict:
    body = copy.deepcopy(MIGRANT_BUNDLE)
    body.update(changes)
    return body
