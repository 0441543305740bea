"""The webhook hand-off (services/subscriptions/matching.py, "Hand-off") on both databases: deliveries the live
consumer writes already claimed are sent from memory once; when the process dies before sending them, the sweep
sends them after their lease, once; a job handed over past its lease is not sent by the one who held it; a
stopping replica gives its unsent jobs back at once."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from services.subscriptions import delivery, matching
from services.subscriptions.adapters.orm import Delivery, Disclosure, SigningSecret, Subscription
from services.subscriptions.adapters.webhooks import CallResult
from services.subscriptions.retry_policy import RetryPolicy
from shared.clock import FrozenClock, new_id
from shared.db import create_db_engine, session_factory
from shared.events import CloudEvent
from shared.outbox import UnitOfWork
from shared.webhooks import new_webhook_secret
from tests.support.subscriptions import QIXIA, item_event

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=120)
POLICY = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(hours=6), give_up_after=timedelta(hours=24),
                     disable_after=timedelta(hours=24))


class RecordingCaller:
    """A webhook endpoint that answers 204 and notes every request's (url, event id)."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def call(self, url, message_id, body, secrets):
        assert secrets, "a request went out unsigned"
        self.calls.append((url, message_id))
        return CallResult(True, 204, None, 1)


@pytest.fixture
def world(database_url):
    engine = create_db_engine(database_url)
    clock = FrozenClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    factory = session_factory(engine)

    def unit_of_work():
        return UnitOfWork(factory, source="/sanji/subscriptions", clock=clock)

    subscription_id = new_id()
    with unit_of_work() as uow:
        uow.session.add(Subscription(
            id=subscription_id, owner="dept-qixia-housing", owner_kind="department", scope_kind="department",
            department="housing", unit_code=QIXIA, unit_prefix=QIXIA[:6],
            district_code=QIXIA, sink_type="webhook", webhook_url="https://housing.example/hook",
            stream_name=None, broker_user=None, filters=json.dumps([]), description="hand-off test", status="active",
            created_at=clock.now(), updated_at=clock.now()))
        uow.session.flush()   # no ORM relationship orders the two inserts
        uow.session.add(SigningSecret(subscription_id=subscription_id, secret=new_webhook_secret(),
                                      created_at=clock.now(), expires_at=None))
        uow.commit()
    yield unit_of_work, clock, subscription_id
    engine.dispose()


def match(unit_of_work, *, lease=LEASE):
    body, _, event_id = item_event("housing")
    result = matching.handle_event(CloudEvent.model_validate_json(body), unit_of_work=unit_of_work(),
                                   active=matching.ActiveSubscriptions(), lease=lease)
    return result, event_id


def send(unit_of_work, clock, caller, handed=()):
    return delivery.send_webhooks(unit_of_work, caller=caller, policy=POLICY, rng=random.Random(1), now=clock.now,
                                  batch_size=100, lease=LEASE, run_all=map, handed=list(handed))


def rows(unit_of_work, model):
    """Every row of a table, as plain values (readable after the session closed)."""
    with unit_of_work() as uow:
        return [SimpleNamespace(**{column.key: getattr(row, column.key) for column in model.__table__.columns})
                for row in uow.session.scalars(select(model))]


def test_a_handed_job_goes_out_once_and_the_sweep_does_not_send_it_again(world):
    unit_of_work, clock, _ = world
    caller = RecordingCaller()
    result, event_id = match(unit_of_work)
    (job,) = result["webhook_jobs"]
    assert job.event_id == event_id and job.attempt == 1

    assert send(unit_of_work, clock, caller, handed=[job])["delivered"] == 1
    clock.advance(hours=1)   # long past the lease: the row is delivered, not due
    assert send(unit_of_work, clock, caller)["delivered"] == 0
    assert caller.calls == [("https://housing.example/hook", event_id)]
    (row,) = rows(unit_of_work, Delivery)
    assert (row.status, row.attempts, row.claim_token) == ("delivered", 1, None)
    assert [d.event_id for d in rows(unit_of_work, Disclosure)] == [event_id]


def test_a_job_lost_with_its_process_goes_out_after_the_lease_once(world):
    unit_of_work, clock, _ = world
    caller = RecordingCaller()
    result, event_id = match(unit_of_work)
    assert len(result["webhook_jobs"]) == 1   # ... and the process dies before sending it

    assert send(unit_of_work, clock, caller)["delivered"] == 0, "claimed rows are not due before their lease ends"
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert send(unit_of_work, clock, caller)["delivered"] == 1
    assert send(unit_of_work, clock, caller)["delivered"] == 0
    assert caller.calls == [("https://housing.example/hook", event_id)]


def test_a_job_handed_over_past_its_lease_is_left_to_the_sweep(world):
    unit_of_work, clock, _ = world
    caller = RecordingCaller()
    result, event_id = match(unit_of_work)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    # The in-memory job is stale: the row is the sweep's again, and the sweep sends it exactly once.
    assert send(unit_of_work, clock, caller, handed=result["webhook_jobs"])["delivered"] == 1
    assert caller.calls == [("https://housing.example/hook", event_id)]


def test_released_jobs_are_due_at_once(world):
    unit_of_work, clock, _ = world
    caller = RecordingCaller()
    result, event_id = match(unit_of_work)
    delivery.release_claims(unit_of_work, result["webhook_jobs"], now=clock.now())
    assert send(unit_of_work, clock, caller)["delivered"] == 1
    assert caller.calls == [("https://housing.example/hook", event_id)]


def test_without_a_lease_the_delivery_is_written_pending_for_the_sweep(world):
    unit_of_work, clock, _ = world
    caller = RecordingCaller()
    result, event_id = match(unit_of_work, lease=None)
    assert result["webhook_jobs"] == [] and result["subscriptions"] == 1
    (row,) = rows(unit_of_work, Delivery)
    assert (row.status, row.claim_token) == ("pending", None)
    assert send(unit_of_work, clock, caller)["delivered"] == 1
    assert caller.calls == [("https://housing.example/hook", event_id)]


def test_a_failed_handed_job_is_retried_by_the_sweep_with_its_attempt_kept(world):
    unit_of_work, clock, _ = world

    class Failing(RecordingCaller):
        def call(self, url, message_id, body, secrets):
            super().call(url, message_id, body, secrets)
            return CallResult(False, 503, "HTTP 503", 3)

    result, event_id = match(unit_of_work)
    counts = send(unit_of_work, clock, Failing(), handed=result["webhook_jobs"])
    assert (counts["delivered"], counts["failed"]) == (0, 1)
    (row,) = rows(unit_of_work, Delivery)
    assert (row.status, row.attempts, row.last_status_code) == ("retrying", 1, 503)
    clock.advance(hours=7)   # beyond the largest backoff
    caller = RecordingCaller()
    assert send(unit_of_work, clock, caller)["delivered"] == 1
    (row,) = rows(unit_of_work, Delivery)
    assert (row.status, row.attempts) == ("delivered", 2)
    assert caller.calls == [("https://housing.example/hook", event_id)]
