"""Nothing grows forever in the subscriptions service either (services/subscriptions/retention.py): delivered
deliveries and their attempts go after the retention, then the matched events no delivery needs; given-up and owed
deliveries stay, and so does every event one of them needs, and the disclosure log."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.subscriptions.adapters.orm import Attempt, Delivery, Disclosure, MatchedEvent, Subscription
from services.subscriptions.service import SubscriptionsService
from shared.clock import new_id
from shared.config import Settings, nameko_config
from shared.db import session_factory, shared_engine
from shared.retention import prune, targets_for
from shared.workdays import SHANGHAI

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI)
DAYS = timedelta(days=1)


def subscriptions_config(database_url: str, tmp_path, **overrides) -> dict:
    config = nameko_config("subscriptions", Settings.from_env("subscriptions"))
    config.update(DATABASE_URL=database_url, SANJI_VAR_DIR=str(tmp_path / "var"), **overrides)
    return config


def a_subscription(session) -> str:
    subscription_id = new_id()
    session.add(Subscription(
        id=subscription_id, owner="dept-qixia-hrss", owner_kind="department", scope_kind="department",
        department="hrss", unit_code="320113000000", unit_prefix="320113", district_code="320113",
        sink_type="webhook", webhook_url="https://hrss.example/hook", filters="[]", description="", status="active",
        created_at=NOW - 400 * DAYS, updated_at=NOW - 400 * DAYS))
    session.flush()
    return subscription_id


def an_event(session, *, received: datetime) -> str:
    event_id = new_id()
    session.add(MatchedEvent(event_id=event_id, source="/sanji/routing", event_type="cn.sanji.item.routed.v1",
                             event_time=received, case_id=new_id(), community_code="320113003021", body="{}",
                             received_at=received))
    session.flush()
    return event_id


def a_delivery(session, subscription_id: str, event_id: str, *, created: datetime, status: str) -> int:
    delivery = Delivery(subscription_id=subscription_id, event_id=event_id, event_time=created, status=status,
                        attempts=1, created_at=created, delivered_at=created if status == "delivered" else None)
    session.add(delivery)
    session.flush()
    session.add(Attempt(delivery_seq=delivery.seq, number=1, attempted_at=created,
                        outcome="delivered" if status == "delivered" else "failed", duration_ms=5))
    return delivery.seq


def test_delivered_rows_go_then_the_events_nobody_needs_and_the_rest_stays(database_url, tmp_path):
    engine = shared_engine(database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        hrss, police = a_subscription(session), a_subscription(session)
        old_event = an_event(session, received=NOW - 31 * DAYS)               # delivered to one: both go
        old_delivered = a_delivery(session, hrss, old_event, created=NOW - 31 * DAYS, status="delivered")
        shared_event = an_event(session, received=NOW - 31 * DAYS)            # one delivered, one given up
        shared_delivered = a_delivery(session, hrss, shared_event, created=NOW - 31 * DAYS, status="delivered")
        given_up = a_delivery(session, police, shared_event, created=NOW - 31 * DAYS, status="given_up")
        owed_event = an_event(session, received=NOW - 60 * DAYS)              # still retrying: owed
        retrying = a_delivery(session, hrss, owed_event, created=NOW - 60 * DAYS, status="retrying")
        young_event = an_event(session, received=NOW - 29 * DAYS)
        young_delivered = a_delivery(session, hrss, young_event, created=NOW - 29 * DAYS, status="delivered")
        matched_by_none = an_event(session, received=NOW - 45 * DAYS)         # a replay matched it, then pruned
        session.add(Disclosure(case_id=new_id(), subscription_id=hrss, subscriber="dept-qixia-hrss",
                               subscriber_kind="department", department="hrss", sink_type="webhook",
                               event_id=old_event, event_type="cn.sanji.item.routed.v1", community_code="320113003021",
                               disclosed_at=NOW - 31 * DAYS))

    targets = targets_for(SubscriptionsService, subscriptions_config(database_url, tmp_path))
    removed = prune(engine, targets, now=NOW)

    assert (removed["subscriptions_deliveries"], removed["subscriptions_events"]) == (2, 2)
    with factory() as session:
        kept = set(session.scalars(select(Delivery.seq)))
        assert kept == {given_up, retrying, young_delivered}
        assert not kept & {old_delivered, shared_delivered}
        assert set(session.scalars(select(Attempt.delivery_seq))) == kept    # the attempts went with their delivery
        assert set(session.scalars(select(MatchedEvent.event_id))) == {shared_event, owed_event, young_event}
        assert not {old_event, matched_by_none} & set(session.scalars(select(MatchedEvent.event_id)))
        assert session.scalar(select(func.count()).select_from(Disclosure)) == 1   # the audit record is kept
    assert set(prune(engine, targets, now=NOW).values()) == {0}                  # a second pass finds nothing more


def test_zero_keeps_every_delivery_and_event_for_ever(database_url, tmp_path):
    engine = shared_engine(database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        hrss = a_subscription(session)
        ancient = an_event(session, received=NOW - 900 * DAYS)
        a_delivery(session, hrss, ancient, created=NOW - 900 * DAYS, status="delivered")

    config = subscriptions_config(database_url, tmp_path, SANJI_SUBSCRIPTIONS_RETENTION_DAYS="0")
    removed = prune(engine, targets_for(SubscriptionsService, config), now=NOW)

    assert (removed["subscriptions_deliveries"], removed["subscriptions_events"]) == (0, 0)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1
        assert session.scalar(select(MatchedEvent.event_id)) == ancient
