"""The replay's pure rules (services/subscriptions/replay.py): retention, the mandate re-check, the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.subscriptions.mandate import Mandate
from services.subscriptions.replay import (
    check_mandate_still_covers,
    check_window,
    partition_offsets,
    retention_of,
)
from services.subscriptions.schemas import ReplayRequest
from shared.refusal import Refusal

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
STREET_HOUSING = Mandate("department", "housing", "320113003000", "320113003", "320113000000")
DISTRICT_HOUSING = Mandate("department", "housing", "320113000000", "320113", "320113000000")
DISTRICT_POLICE = Mandate("department", "police", "320113000000", "320113", "320113000000")
OTHER_STREET_HOUSING = Mandate("department", "housing", "320113002000", "320113002", "320113000000")
STREET_SUPERVISOR = Mandate("supervisor", None, "320113003000", "320113003", "320113000000")


@pytest.mark.parametrize(("max_age", "expected"), [
    ("30D", timedelta(days=30)), ("720h", timedelta(hours=720)), ("1Y", timedelta(days=365)),
    ("2M", timedelta(days=60)), ("90m", timedelta(minutes=90)), ("45s", timedelta(seconds=45))])
def test_the_retention_is_read_from_the_logs_max_age(max_age, expected):
    assert retention_of(max_age) == expected


@pytest.mark.parametrize("max_age", ["", "30", "0D", "30d", "1.5h", "-3D"])
def test_a_max_age_that_is_not_rabbitmqs_is_an_error(max_age):
    with pytest.raises(ValueError):
        retention_of(max_age)


@pytest.mark.parametrize(("current", "stored"), [
    (STREET_HOUSING, STREET_HOUSING), (DISTRICT_HOUSING, STREET_HOUSING)])
def test_a_mandate_that_still_covers_the_subscription_may_replay(current, stored):
    check_mandate_still_covers(current, stored)


@pytest.mark.parametrize(("current", "stored"), [
    (STREET_HOUSING, DISTRICT_HOUSING),          # narrowed
    (OTHER_STREET_HOUSING, STREET_HOUSING),      # moved
    (DISTRICT_POLICE, DISTRICT_HOUSING),         # another department
    (STREET_HOUSING, STREET_SUPERVISOR),         # no longer a supervisor
])
def test_a_mandate_that_no_longer_covers_the_subscription_is_refused(current, stored):
    with pytest.raises(Refusal) as refused:
        check_mandate_still_covers(current, stored)
    assert (refused.value.status, refused.value.reason) == (403, "mandate_changed")


def _request(**fields) -> ReplayRequest:
    return ReplayRequest.model_validate(fields)


def test_the_window_is_bounded_by_retention_and_now():
    retention = timedelta(days=30)
    check_window(_request(from_time=NOW - timedelta(days=29)), now=NOW, retention=retention)
    check_window(_request(from_time=NOW), now=NOW, retention=retention)
    for start in (NOW + timedelta(seconds=1), NOW - timedelta(days=30, seconds=1)):
        with pytest.raises(Refusal) as refused:
            check_window(_request(from_time=start), now=NOW, retention=retention)
        assert (refused.value.status, refused.value.reason) == (422, "replay_out_of_range")


@pytest.mark.parametrize("fields", [
    {}, {"until": "2026-12-01T09:00:00+08:00"}, {"from_time": "2026-12-01T09:00:00"},
    {"from_time": "2026-12-01T09:00:00+08:00", "until": "2026-12-01T08:00:00+08:00"},
    {"from_offsets": {"320113000000": -1}}, {"from_offsets": {"": 3}}])
def test_malformed_replay_requests_are_invalid(fields):
    with pytest.raises(ValidationError):
        ReplayRequest.model_validate(fields)


def test_offsets_only_in_the_subscriptions_own_district():
    assert partition_offsets({"320113000000": 5}, STREET_HOUSING) == {"sanji.event-log-320113000000": 5}
    assert partition_offsets({"sanji.event-log-320113000000": 0}, STREET_HOUSING) == \
        {"sanji.event-log-320113000000": 0}
    assert partition_offsets(None, STREET_HOUSING) is None
    with pytest.raises(Refusal) as refused:
        partition_offsets({"320102000000": 0}, STREET_HOUSING)
    assert (refused.value.status, refused.value.reason) == (403, "outside_mandate")
