"""A broker fault at any step of handling an event never stops the consumer (issue 19).

The routing service consumes ``case.submitted`` events. The test holds the first delivery at one of
two points, breaks the service's broker connections there, lets the handler go on, and then checks
that the service is still running, that it consumes the next event, and that the first event had its
effect exactly once:

- inside the handler's transaction (before its commit);
- between the commit and the ack;

and intake's RPC server, inside the RPC before its reply and ack.

Two faults: the connections closed through the management API (a polite AMQP close), and every
connection reset (RST) by a proxy in front of the broker, which is what a broker restart does to a
client. Before the fix, the reset between the commit and the ack made ``message.ack()`` raise
``ConnectionResetError``/``BrokenPipeError``; nameko killed the container and nothing more was consumed.
"""

from __future__ import annotations

import time

import eventlet
import pytest
from eventlet.event import Event
from nameko.exceptions import RpcTimeout
from nameko.standalone.rpc import ClusterRpcProxy

from services.intake.service import IntakeService
from services.routing import handlers
from services.routing.service import RoutingService
from shared.broker_faults import Rpc
from shared.nameko_ext import EventConsumer
from shared.rpc import GuardedRpc
from shared.topology import ROUTING_CASE_SUBMITTED
from tests.integration.test_routing_consumer import case_submitted
from tests.support.bus import close_connections_of, publish_raw
from tests.support.db import count_rows
from tests.support.tcp_proxy import ResettingProxy

pytestmark = pytest.mark.integration


class Hold:
    """Breaks the connection the first time a handling reaches ``point``, from inside the handling.

    The fault runs in the handler's own greenthread and the handler goes on at once: its next step on
    the broker (the ack) meets the broken connection before the consumer's read loop has noticed it,
    as happens to the workers in flight when a broker restarts.
    """

    def __init__(self, point: str, fault=None):
        self.point = point
        self.fault = fault
        self.done = Event()

    def here(self, point: str) -> None:
        if point == self.point and not self.done.ready():
            self.done.send(self.fault())


HOLD = Hold("nowhere")


class HeldEventConsumer(EventConsumer):
    def handle_event_result(self, message, event, worker_ctx, result=None, exc_info=None, outage_retry=0):
        if exc_info is None:
            HOLD.here("before_ack")
        return super().handle_event_result(message, event, worker_ctx, result, exc_info, outage_retry)


class HeldRouting(RoutingService):
    """The routing service, with the test's hold inside the transaction and before the ack."""

    @HeldEventConsumer.decorator(ROUTING_CASE_SUBMITTED)
    def on_case_submitted(self, event):
        unit_of_work = self.storage.unit_of_work(self.clock)
        commit = unit_of_work.commit

        def commit_when_released():
            HOLD.here("in_transaction")
            commit()

        unit_of_work.commit = commit_when_released
        handlers.route_submitted_case(event, unit_of_work=unit_of_work, rules=self.rules)


def wait_for_rows(database_url: str, table: str, count: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    found = -1
    while time.monotonic() < deadline:
        found = count_rows(database_url, table)[table]
        if found >= count:
            return found
        eventlet.sleep(0.1)
    return found


@pytest.fixture
def proxy():
    proxy = ResettingProxy()
    yield proxy
    proxy.close()


@pytest.mark.parametrize("fault", ["management_close", "reset"])
@pytest.mark.parametrize("point", ["in_transaction", "before_ack"])
def test_a_broker_fault_while_handling_leaves_the_consumer_running_and_the_effect_single(
        point, fault, proxy, container_factory, make_service_config, rabbit_config, rabbit_manager, database_url):
    global HOLD
    broker = rabbit_config["AMQP_URI"]
    if fault == "reset":
        service_uri = proxy.amqp_uri(broker)
        HOLD = Hold(point, proxy.reset)
    else:
        service_uri = broker
        HOLD = Hold(point, lambda: close_connections_of(rabbit_manager, rabbit_config["vhost"]))
    routing = container_factory(HeldRouting, make_service_config("routing", AMQP_URI=service_uri))
    routing.start()

    first, routing_key = case_submitted(case_id="case-held")
    publish_raw(broker, first.model_dump_json(), routing_key)
    assert (HOLD.done.wait(timeout=30) or 0) > 0, f"the handler never reached {point}, or no connection was broken"

    second, _ = case_submitted(case_id="case-after-the-fault")
    publish_raw(broker, second.model_dump_json(), routing_key)

    # Each event names two matters: both cases routed means the consumer survived and went on.
    assert wait_for_rows(database_url, "processed_messages", 2) == 2, "the consumer stopped consuming"
    assert routing.started, "the container stopped"
    eventlet.sleep(1.0)  # a redelivery of the first event, if any, has come and gone
    assert count_rows(database_url, "routing_items", "processed_messages", "outbox_messages") == {
        "routing_items": 4, "processed_messages": 2, "outbox_messages": 4}
    assert routing.started


class UncheckedRpc(GuardedRpc):
    """Intake's own RPC entrypoint without its caller check (a standalone client would not pass it: this test is
    about faults). It must share the guarded RPCs' consumer: a plain ``@rpc`` would be a second consumer on the
    same queue, and the broker would hand it half the requests for methods it does not know (MethodNotFound)."""

    def handle_message(self, body, message):
        Rpc.handle_message(self, body, message)


class HeldIntake(IntakeService):
    """Intake, with the test's hold inside its RPC, before the reply is sent and the request acked."""

    @UncheckedRpc.decorator
    def applicant_contact(self, case_id: str, purpose: str):
        HOLD.here("rpc")
        return super().applicant_contact(case_id, purpose)


def test_a_reset_while_answering_an_rpc_leaves_the_rpc_server_answering(
        proxy, container_factory, make_service_config, rabbit_config):
    global HOLD
    HOLD = Hold("rpc", proxy.reset)
    broker = rabbit_config["AMQP_URI"]
    intake = container_factory(HeldIntake, make_service_config("intake", AMQP_URI=proxy.amqp_uri(broker)))
    intake.start()

    with ClusterRpcProxy({"AMQP_URI": broker}, timeout=15) as cluster:
        try:  # the first answer may be lost with the connection: the caller may time out, nothing more
            cluster.intake.applicant_contact("no-such-case", "sms")
        except RpcTimeout:
            pass
        assert HOLD.done.ready() and HOLD.done.wait() > 0
        assert cluster.intake.applicant_contact("no-such-case", "sms") is None  # answered: the server lives on
    assert intake.started
