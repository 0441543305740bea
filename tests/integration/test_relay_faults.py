"""A broker that stops answering never hangs the outbox relay inside its open transaction (issue 15).

The relay publishes through a proxy in front of the real broker. The proxy stalls (it forwards nothing,
closes nothing: what a broker blocking its publishers under a memory or disk alarm, or a lost confirm,
looks like to the relay) while the relay publishes a batch. The relay must give up within its confirm
timeout, roll its transaction back (the rows unpublished and unlocked, no session left ``idle in
transaction``), and publish the rows once the broker answers again. Before the fix the publish waited for
its confirm for ever (no heartbeats, no timeout), holding the rows' locks.
"""

from __future__ import annotations

import time

import eventlet
import pytest
from sqlalchemy import create_engine, select, text

from shared.clock import SystemClock
from shared.db import is_postgres, normalise_url, session_factory, shared_engine
from shared.outbox import OutboxMessage
from shared.relay import OutboxRelay
from tests.integration.test_routing_consumer import case_submitted
from tests.support.tcp_proxy import ResettingProxy

pytestmark = pytest.mark.integration

CONFIRM_TIMEOUT = 2.0


@pytest.fixture
def proxy():
    proxy = ResettingProxy()
    yield proxy
    proxy.close()


def add_outbox_rows(factory, case_ids) -> None:
    with factory() as session, session.begin():
        for case_id in case_ids:
            event, routing_key = case_submitted(case_id=case_id)
            session.add(OutboxMessage(event_id=event.id, source=event.source, event_type=event.type,
                                      routing_key=routing_key, body=event.model_dump_json(), created_at=event.time))


def unpublished(factory) -> int:
    with factory() as session:
        return len(session.scalars(select(OutboxMessage).where(OutboxMessage.published_at.is_(None))).all())


def assert_no_transaction_left_open(database_url: str) -> None:
    """The relay's rows can be locked at once by another transaction, and no session is idle in a transaction."""
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:
            locked = connection.execute(text(
                "SELECT seq FROM outbox_messages WHERE published_at IS NULL FOR UPDATE NOWAIT")).all()
            assert locked, "no unpublished row to lock"
        with engine.connect() as connection:
            idle = connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'")).scalar_one()
        assert idle == 0, f"{idle} session(s) left idle in transaction"
    finally:
        engine.dispose()


def test_a_stalled_broker_makes_the_relay_give_up_in_time_and_publish_later(proxy, rabbit_config, database_url):
    factory = session_factory(shared_engine(database_url))
    relay = OutboxRelay(factory, amqp_uri=proxy.amqp_uri(rabbit_config["AMQP_URI"]), source="/sanji/intake",
                        clock=SystemClock())
    relay.confirm_timeout = CONFIRM_TIMEOUT  # production waits longer; the behaviour is the same

    add_outbox_rows(factory, ["case-before-the-stall"])
    assert relay.publish_pending() == 1  # the connection is up and confirms arrive

    add_outbox_rows(factory, ["case-stalled-1", "case-stalled-2"])
    proxy.stall()
    started = time.monotonic()
    publishing = eventlet.spawn(relay.publish_pending)
    outcome = None
    with eventlet.Timeout(CONFIRM_TIMEOUT + 8, False):
        try:
            outcome = publishing.wait()
        except Exception as exc:  # noqa: BLE001 - the failure the relay reports
            outcome = exc
    if outcome is None:  # still waiting for its confirm: leave nothing behind, then fail
        publishing.kill()
        proxy.resume()
        pytest.fail(f"the relay still waited for the broker {time.monotonic() - started:.1f} s into the stall")
    elapsed = time.monotonic() - started
    assert isinstance(outcome, Exception), f"the relay published {outcome} rows through a stalled broker"
    assert elapsed < CONFIRM_TIMEOUT + 5, f"the relay gave up only after {elapsed:.1f} s"
    assert relay.broker_link.up is False
    assert unpublished(factory) == 2, "rows marked published without a confirm"
    if is_postgres(factory.kw["bind"]):
        assert_no_transaction_left_open(database_url)

    proxy.resume()
    assert relay.publish_pending() == 2  # on a fresh connection
    assert unpublished(factory) == 0
    assert relay.broker_link.up is True
    relay._reset_connection()
