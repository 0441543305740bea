"""The example department subscriber (examples/department_subscriber.py), the code a department system starts
from, keeps following the bus when its connection is lost: the broker closes it (as on a restart), and the events
published after arrive all the same. A broker it could not reach at the start is said at once, not retried."""

from __future__ import annotations

import time

import pytest
from kombu import Connection

from examples import department_subscriber
from shared.clock import new_id
from shared.topology import declare_topology
from tests.support.bus import EventFollower, close_connections_of, publish_raw

pytestmark = pytest.mark.integration

ROUTING_KEY = "item.routed.320113000000.community.320113003021.police"


def routed(item: str) -> dict:
    return {"specversion": "1.0", "id": new_id(), "source": "/sanji/routing", "type": "cn.sanji.item.routed.v1",
            "datacontenttype": "application/json", "data": {"item_id": item, "department_code": "police"}}


def test_events_published_after_the_connection_was_closed_arrive_all_the_same(rabbit_config, rabbit_manager):
    amqp = rabbit_config["AMQP_URI"]
    with Connection(amqp) as connection:
        declare_topology(connection)          # the exchange is Sanji's: the department binds to it, passively
    follower = EventFollower(amqp, "dept-qixia-police.items", "item.*.320113000000.*.*.police")
    publish_raw(amqp, routed("item-before"), ROUTING_KEY)
    assert [e["data"]["item_id"] for e in follower.wait_for(1)] == ["item-before"]

    closed = close_connections_of(rabbit_manager, rabbit_config["vhost"])   # the follower's, and any other
    publish_raw(amqp, routed("item-after"), ROUTING_KEY)

    try:
        items = [e["data"]["item_id"] for e in follower.wait_for(2, timeout=20)]
    finally:
        follower.stop()
    assert closed >= 1
    assert items == ["item-before", "item-after"]


def test_a_broker_not_reachable_at_the_start_is_an_error_at_once():
    started = time.monotonic()
    with pytest.raises(department_subscriber.LOST_CONNECTION):
        department_subscriber.subscribe("amqp://guest:guest@127.0.0.1:9/", "dept-qixia-police.items", ["item.#"],
                                        lambda event: None, timeout=30)
    assert time.monotonic() - started < 10      # not retried until the timeout


@pytest.mark.parametrize(("amqp_uri", "said"), [
    ("amqp://guest:guest@127.0.0.1:9/", "cannot reach the broker:"),
    ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "the broker refused: NOT_ALLOWED"),
])
def test_the_command_line_says_in_one_line_why_it_cannot_follow_the_bus(monkeypatch, capsys, amqp_uri, said):
    monkeypatch.setattr("sys.argv", ["department_subscriber.py", "--queue", "dept-qixia-police.items", "--bind",
                                     "item.#", "--amqp-uri", amqp_uri])
    assert department_subscriber.main() == 1
    error = capsys.readouterr().err
    assert error.startswith(f"department_subscriber: {said}") and "Traceback" not in error
