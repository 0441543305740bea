"""The subscriptions service's pure rules: the CloudEvents Subscriptions filter dialect, the mandate (scope from
the principal, filters that claim more refused), the retry policy and the webhook URLs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.subscriptions import filters as dialect
from services.subscriptions.dependencies import known_event_types
from services.subscriptions.mandate import check_filters, mandate_of
from services.subscriptions.retry_policy import RetryPolicy
from services.subscriptions.webhook_urls import check_webhook_url
from shared.auth import Principal
from shared.refusal import Refusal

KNOWN = known_event_types({"police", "housing", "hrss", "civil", "health"})
POLICE = Principal(name="dept-qixia-police", kind="department", unit_code="320113000000", department="police")
STREET_HOUSING = Principal(name="dept-maigaoqiao-housing", kind="department", unit_code="320113003000",
                           department="housing")
EVENT = {"id": "e1", "type": "cn.sanji.item.routed.v1", "source": "/sanji/routing", "subject": "i1",
         "data": {"matter_code": "residence-permit", "level": "street", "unit_code": "320113003000",
                  "district_code": "320113000000", "department_code": "police", "case_id": "c1",
                  "community_code": "320113003021"}}


def attributes(**data):
    return dialect.event_attributes({**EVENT, "data": {**EVENT["data"], **data}})


@pytest.mark.parametrize(("filters", "expected"), [
    ([], True),
    ([{"exact": {"type": "cn.sanji.item.routed.v1"}}], True),
    ([{"exact": {"type": "cn.sanji.item.claimed.v1"}}], False),
    ([{"prefix": {"type": "cn.sanji.item."}}], True),
    ([{"suffix": {"type": ".v2"}}], False),
    ([{"exact": {"matter": "residence-permit"}}, {"exact": {"level": "street"}}], True),
    ([{"exact": {"matter": "residence-permit"}}, {"exact": {"level": "district"}}], False),
    ([{"any": [{"exact": {"level": "district"}}, {"prefix": {"unit": "320113003"}}]}], True),
    ([{"all": [{"exact": {"case": "c1"}}, {"not": {"exact": {"department": "police"}}}]}], False),
    ([{"not": {"exact": {"case": "c2"}}}], True),
    ([{"exact": {"subject": "i1"}}, {"exact": {"source": "/sanji/routing"}}, {"exact": {"district": "320113000000"}}],
     True),
])
def test_the_dialect_matches_as_the_spec_says(filters, expected):
    assert dialect.matches(dialect.parse_filters(filters), attributes()) is expected


def test_an_attribute_the_event_lacks_matches_no_value_but_its_negation():
    case_event = dialect.event_attributes({"type": "cn.sanji.case.submitted.v1",
                                           "data": {"community_code": "320113003021", "case_id": "c"}})
    assert case_event["department"] is None and case_event["unit"] == "320113003021"
    assert case_event["district"] == "320113000000"
    assert not dialect.matches(dialect.parse_filters([{"prefix": {"department": "p"}}]), case_event)
    assert dialect.matches(dialect.parse_filters([{"not": {"prefix": {"department": "p"}}}]), case_event)


@pytest.mark.parametrize("filters", [
    {"exact": {"type": "x"}},                      # not a list
    [{"exact": {"type": "x", "unit": "y"}}],       # two attributes
    [{"exact": {}}],
    [{"exact": {"type": 3}}],
    [{"prefix": {"type": ""}}],
    [{"exact": {"colour": "red"}}],
    [{"any": []}],
    [{"all": {"exact": {"type": "x"}}}],
    [{"not": [{"exact": {"type": "x"}}]}],
    [{"sql": "type = 'x'"}],
    [{"exact": {"type": "x"}, "not": {"exact": {"type": "y"}}}],
    [{"any": [{"not": {"exact": {"unit": str(n)}}} for n in range(70)]}],   # too many expressions
])
def test_malformed_filters_are_refused_with_where(filters):
    with pytest.raises(dialect.FilterInvalid) as refused:
        dialect.parse_filters(filters)
    assert refused.value.where.startswith("filters")


def test_filters_round_trip_to_the_same_json():
    document = [{"any": [{"exact": {"type": "cn.sanji.item.routed.v1"}}, {"not": {"suffix": {"unit": "021"}}}]}]
    assert dialect.to_document(dialect.parse_filters(document)) == document


def test_the_mandate_comes_from_the_principal():
    police = mandate_of(POLICE)
    assert (police.department, police.unit_prefix, police.district_code) == ("police", "320113", "320113000000")
    street = mandate_of(STREET_HOUSING)
    assert street.unit_prefix == "320113003"
    assert street.covers(attributes(department_code="housing"))
    assert not street.covers(attributes(department_code="housing", unit_code="320113000000", level="district"))
    assert not police.covers(attributes(department_code="housing"))
    assert not police.covers(attributes(unit_code="320102002000", district_code="320102000000"))
    supervisor = mandate_of(Principal(name="staff-qixia", kind="staff", unit_code="320113000000"))
    assert supervisor.kind == "supervisor" and supervisor.covers(attributes(department_code="housing"))
    for principal in (Principal(name="k", kind="kiosk", unit_code="320113003021"),
                      Principal(name="s", kind="staff", unit_code="320113003021"),
                      Principal(name="sp", kind="specialist", unit_code="320113000000"),
                      Principal(name="d", kind="department", unit_code="320113000000")):
        with pytest.raises(Refusal) as refused:
            mandate_of(principal)
        assert (refused.value.status, refused.value.reason) == (403, "subscriber_forbidden")


@pytest.mark.parametrize(("principal", "filters", "status", "reason"), [
    (POLICE, [{"exact": {"district": "320102000000"}}], 403, "outside_mandate"),
    (POLICE, [{"prefix": {"district": "3201"}}], 403, "outside_mandate"),
    (POLICE, [{"prefix": {"unit": "32"}}], 403, "outside_mandate"),
    (POLICE, [{"exact": {"department": "housing"}}], 403, "outside_mandate"),
    (POLICE, [{"prefix": {"department": "h"}}], 403, "outside_mandate"),
    (POLICE, [{"exact": {"type": "cn.sanji.case.completed.v1"}}], 403, "outside_mandate"),
    (STREET_HOUSING, [{"exact": {"unit": "320113000000"}}], 403, "outside_mandate"),    # above its street
    (STREET_HOUSING, [{"exact": {"unit": "320113004000"}}], 403, "outside_mandate"),    # the next street
    (POLICE, [{"exact": {"type": "cn.sanji.item.flown.v1"}}], 400, "unknown_event_type"),
    (POLICE, [{"not": {"prefix": {"type": "cn.sanji.nothing."}}}], 400, "unknown_event_type"),
])
def test_filters_claiming_more_than_the_mandate_are_refused(principal, filters, status, reason):
    with pytest.raises(Refusal) as refused:
        check_filters(mandate_of(principal), dialect.parse_filters(filters), KNOWN)
    assert (refused.value.status, refused.value.reason) == (status, reason)


@pytest.mark.parametrize(("principal", "filters"), [
    (POLICE, [{"exact": {"district": "320113000000"}}, {"prefix": {"unit": "320113003"}}]),
    (POLICE, [{"exact": {"department": "police"}}, {"prefix": {"department": "pol"}}]),
    (POLICE, [{"not": {"exact": {"district": "320102000000"}}}]),    # a negative claims nothing
    (POLICE, [{"suffix": {"unit": "021"}}]),                          # a pattern, applied inside the mandate
    (STREET_HOUSING, [{"exact": {"unit": "320113003021"}}, {"prefix": {"type": "cn.sanji.whistle."}}]),
    (Principal(name="staff", kind="staff", unit_code="320113000000"),
     [{"exact": {"type": "cn.sanji.case.submitted.v1"}}, {"exact": {"department": "housing"}}]),
])
def test_filters_inside_the_mandate_are_accepted(principal, filters):
    check_filters(mandate_of(principal), dialect.parse_filters(filters), KNOWN)


def test_the_retry_policy_backs_off_with_full_jitter_and_spans_a_day():
    policy = RetryPolicy()
    rng = random.Random(7)
    for failures in range(1, 25):
        ceiling = min(6 * 3600, 30 * 2 ** (failures - 1))
        delays = [policy.delay(failures, rng).total_seconds() for _ in range(50)]
        assert all(0 <= delay <= ceiling for delay in delays)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    assert not policy.gives_up(start, start + timedelta(hours=23, minutes=59))
    assert policy.gives_up(start, start + timedelta(hours=24))
    assert policy.disables(start, start + timedelta(hours=24))
    assert not policy.disables(start, start + timedelta(hours=1))
    # Simulated: a delivery that always fails is tried for at least a day, about 18 times.
    attempts, at = 1, start
    while not policy.gives_up(start, at):
        at += policy.delay(attempts, rng)
        attempts += 1
    assert at - start >= timedelta(hours=24) and 10 <= attempts <= 40
    assert 14 <= policy.expected_attempts() <= 20


def resolver(addresses):
    def resolve(host, port):
        if host.endswith(".invalid"):
            raise OSError("no such host")
        return addresses
    return resolve


@pytest.mark.parametrize(("url", "production", "addresses", "reason"), [
    ("http://127.0.0.1:9100/hook", False, ["127.0.0.1"], None),
    ("http://localhost/hook", False, ["127.0.0.1"], None),
    ("https://dept.example.cn/hook", True, ["203.0.113.7"], "invalid_webhook_url"),   # documentation range
    ("https://dept.gov.cn/hook", True, ["101.37.1.1"], None),
    ("http://127.0.0.1:9100/hook", True, ["127.0.0.1"], "invalid_webhook_url"),
    ("https://localhost/hook", True, ["127.0.0.1"], "invalid_webhook_url"),
    ("https://intranet.gov.cn/hook", True, ["10.0.0.5"], "invalid_webhook_url"),
    ("http://dept.gov.cn/hook", False, ["101.37.1.1"], "invalid_webhook_url"),
    ("https://user:pw@dept.gov.cn/hook", False, ["101.37.1.1"], "invalid_webhook_url"),
    ("https://dept.gov.cn/hook#x", False, ["101.37.1.1"], "invalid_webhook_url"),
    ("ftp://dept.gov.cn/hook", False, ["101.37.1.1"], "invalid_webhook_url"),
    ("https://nowhere.invalid/hook", False, [], "webhook_unreachable"),
])
def test_webhook_urls(url, production, addresses, reason):
    if reason is None:
        assert check_webhook_url(url, production=production, resolve=resolver(addresses)) == url
        return
    with pytest.raises(Refusal) as refused:
        check_webhook_url(url, production=production, resolve=resolver(addresses))
    assert (refused.value.status, refused.value.reason) == (422, reason)
