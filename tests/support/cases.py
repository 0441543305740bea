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


# An enterprise at 玄武区 (the report: 企业增资、增加股东 at the 玄武区政务服务中心).
ENTERPRISE_USCC = "91350100M000100Y43"  # the example of GB 32100-2015, a valid checksum
REPRESENTATIVE_ID_NUMBER = make_valid_id_number("32010219800512003")
ENTERPRISE_STARTUP = {
    "community_code": XUANWU_COMMUNITY,
    "bundle": "enterprise-startup",
    "applicant": {"kind": "enterprise", "organisation_name": "南京玄武某某科技有限公司", "uscc": ENTERPRISE_USCC,
                  "representative": {"role": "legal_representative", "name": "徐明",
                                     "id_number": REPRESENTATIVE_ID_NUMBER, "phone": "13951234567"}},
    "materials": {"provided": ["establishment-application", "articles-of-association", "legal-representative-id",
                               "shareholder-identity", "business-licence"],
                  "deferred": ["premises-proof", "bank-account-licence"]},
    "description": "企业开办一件事",
}


def enterprise_startup(**changes) -> dict:
    body = copy.deepcopy(ENTERPRISE_STARTUP)
    body.update(changes)
    return body
