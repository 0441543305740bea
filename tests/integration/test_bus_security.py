"""The bus's trust boundary against the real broker (issue 12, "The bus"; docs/security.md).

Every test runs with the users of deploy/rabbitmq/definitions.json, created in the test's vhost
(tests/support/scoped_bus.py): one per service, one per department system, with least privilege.

- The broker refuses: a department user publishing anything, binding another department's (or another
  jurisdiction's) keys, declaring or reading what is not its own, calling an RPC; a service publishing an
  event type it does not own, or calling an RPC it does not need; a ``user_id`` that is not the sender's.
- Every consumer refuses what the broker lets through: an event whose sender does not own its type, whose
  ``source`` is not the sender's, or that names no sender. It is dead-lettered with the reason in a header
  and nobody hears of it.
- The whole flow (kiosk -> intake -> routing -> notification, RPC included) works with these users.
"""

from __future__ import annotations

import json
import uuid

import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection, Exchange, Producer
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.intake.service import IntakeService
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from shared.events import CloudEvent, ItemRejectedV1
from tests.support import notification_db as db
from tests.support.bus import dead_letters, publish_raw
from tests.support.cases import APPLICANT_PHONE, XINHE_KIOSK, migrant_bundle
from tests.support.notification_harness import sweep_until
from tests.support.notification_servers import HttpStandIn
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

POLICE_KEY = "item.rejected.320113000000.street.320113003000.police"


def publish(uri: str, routing_key: str, body: str = "{}", exchange: str = "sanji.events", **properties) -> None:
    """Publish with confirms, declaring nothing (as the relay does)."""
    with Connection(uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=Exchange(exchange, type="topic"), auto_declare=False)
        producer.publish(body, routing_key=routing_key, content_type="application/cloudevents+json",
                         content_encoding="utf-8", retry=False, **properties)


def refused(action) -> str:
    with pytest.raises((AccessRefused, PreconditionFailed)) as raised:
        action()
    return str(raised.value)


# ── the broker ───────────────────────────────────────────────────────────────────────────────────────


def test_a_department_user_cannot_publish_any_event_nor_reach_a_service_queue(scoped_bus):
    police = scoped_bus.department_uri("dept-qixia-police")
    user = scoped_bus.desks["dept-qixia-police"].user
    # Not even on its own department's keys, and not with its own name as the sender.
    assert "ACCESS_REFUSED" in refused(lambda: publish(police, POLICE_KEY, user_id=user))
    # Nor straight into a service's queue through the default exchange.
    assert "ACCESS_REFUSED" in refused(lambda: publish(police, "notification.events", exchange=""))
    # Nor read a service's queue, nor declare a queue that is not its own.
    with Connection(police) as connection:
        assert "ACCESS_REFUSED" in refused(lambda: connection.channel().basic_get("notification.events"))
    with Connection(police) as connection:
        assert "ACCESS_REFUSED" in refused(lambda: connection.channel().queue_declare("routing.mine", durable=True))


def bind(uri: str, queue: str, key: str) -> None:
    with Connection(uri) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, "sanji.events", key)


def test_a_department_binds_its_own_keys_and_no_one_elses(scoped_bus):
    police, police_user = scoped_bus.department_uri("dept-qixia-police"), scoped_bus.desks["dept-qixia-police"].user
    queue = police_user + ".items"
    bind(police, queue, "item.*.320113000000.*.*.police")                     # its items at every level
    bind(police, queue, "whistle.*.320113000000.*.*.police")                  # 吹哨 calls to it
    for key in ("item.*.320113000000.*.*.housing",                            # another department
                "item.*.320102000000.*.*.police",                             # another district
                "item.#", "#", "item.*.320113000000.#", "case.submitted.320113003021"):
        assert "ACCESS_REFUSED" in refused(lambda key=key: bind(police, queue, key)), key

    # A street desk: its street and the street's communities, one unit at a time; not the district.
    street = scoped_bus.department_uri("dept-maigaoqiao-housing")
    street_queue = scoped_bus.desks["dept-maigaoqiao-housing"].user + ".items"
    bind(street, street_queue, "item.*.320113000000.*.320113003000.housing")
    bind(street, street_queue, "item.*.320113000000.community.320113003021.housing")
    for key in ("item.*.320113000000.*.*.housing", "item.*.320113000000.street.320113004000.housing"):
        assert "ACCESS_REFUSED" in refused(lambda key=key: bind(street, street_queue, key)), key


def test_notification_reads_the_evaluation_events_it_tells_people_of_and_no_others(scoped_bus):
    """Evaluation publishes its rectification, appeal and 督办单 events as itself; they reach notification's queue,
    which its user reads. A rating by itself tells no one, so it is not bound there."""
    evaluation, user = scoped_bus.service_uri("evaluation"), scoped_bus.users["evaluation"]
    keys = [f"{noun}.320113000000.community.320113003021.police"
            for noun in ("rectification.opened", "rectification.closed", "appeal.decided", "supervision-order.issued",
                         "supervision-order.answered", "rating.submitted")]
    for key in keys:
        publish(evaluation, key, body=json.dumps({"key": key}), user_id=user)
    received = []
    with Connection(scoped_bus.service_uri("notification")) as connection:
        channel = connection.channel()
        while (message := channel.basic_get("notification.events", no_ack=True)) is not None:
            received.append(json.loads(message.body)["key"])
    assert sorted(received) == sorted(keys[:-1])
    # Notification still publishes nothing, evaluation's events included.
    assert "ACCESS_REFUSED" in refused(lambda: publish(scoped_bus.service_uri("notification"), keys[0]))


def test_a_department_user_and_a_service_that_does_not_need_it_cannot_call_an_rpc(scoped_bus):
    call = json.dumps({"args": ["case-1", "sms"], "kwargs": {}})
    for uri in (scoped_bus.department_uri("dept-qixia-police"), scoped_bus.service_uri("routing"),
                scoped_bus.service_uri("escalation")):
        assert "ACCESS_REFUSED" in refused(lambda uri=uri: publish(
            uri, "intake.applicant_contact", call, exchange="nameko-rpc", reply_to=str(uuid.uuid4())))


def test_a_service_can_publish_only_the_event_types_it_owns_and_only_as_itself(scoped_bus):
    routing, intake = scoped_bus.service_uri("routing"), scoped_bus.service_uri("intake")
    publish(routing, POLICE_KEY, user_id=scoped_bus.users["routing"])       # its own: accepted
    for uri, key in ((intake, POLICE_KEY),                                    # routing's item.rejected
                     (routing, "case.submitted.320113003021"),                # intake's
                     (scoped_bus.service_uri("notification"), POLICE_KEY),    # notification publishes nothing
                     (scoped_bus.service_uri("escalation"), "item.resolved.320113000000.street.320113003000.police"),
                     (routing, "item.#")):
        assert "ACCESS_REFUSED" in refused(lambda uri=uri, key=key: publish(uri, key)), (uri, key)
    # RabbitMQ checks user_id against the connection's user: a sender cannot claim to be another.
    assert "PRECONDITION_FAILED" in refused(lambda: publish(routing, POLICE_KEY, user_id=scoped_bus.users["intake"]))


# ── the consumers, and the whole flow, as scoped users ───────────────────────────────────────────────


@pytest.fixture
def gateway():
    server = HttpStandIn()
    yield server
    server.stop()


@pytest.fixture
def running_system(scoped_bus, container_factory, make_service_config, web_config_port, gateway, tmp_path):
    intake = container_factory(IntakeService, scoped_bus.service_config(make_service_config, "intake",
                                                                          web_port=web_config_port))
    routing = container_factory(RoutingService, scoped_bus.service_config(
        make_service_config, "routing", WEB_SERVER_ADDRESS="127.0.0.1:0"))
    notification = container_factory(NotificationService, scoped_bus.service_config(
        make_service_config, "notification", WEB_SERVER_ADDRESS="127.0.0.1:0",
        SANJI_NOTIFICATION_SMS_URL=gateway.url("/sms"), SANJI_NOTIFICATION_QUIET_HOURS="off",
        SANJI_NOTIFICATION_SWEEP_SECONDS=0.05, SANJI_VAR_DIR=str(tmp_path / "var")))
    for container in (notification, routing, intake):
        container.start()
    return notification


def submit(web_session) -> dict:
    response = web_session.post("/v1/cases", data=json.dumps(migrant_bundle(), ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    return response.json()


def forged_rejection(item: dict, receipt: dict, source: str) -> CloudEvent:
    payload = ItemRejectedV1(
        item_id=item["item_id"], case_id=receipt["case_id"], case_number=receipt["case_number"],
        matter_code=item["matter_code"], department_code=item["department_code"], level=item["level"],
        unit_code=item["unit_code"], district_code=item["unit_code"][:6] + "000000",
        community_code="320113003021", status="rejected", occurred_at="2026-12-01T09:00:00+08:00",
        actor="attacker", reason_code="not-eligible", note="请速拨打 400-000-0000 退款")
    return CloudEvent.wrap(payload, source=source, time=payload.occurred_at)


def test_forged_events_are_dead_lettered_with_the_reason_and_nobody_is_told(
        running_system, scoped_bus, web_session, rabbit_config, database_url, gateway):
    # The real flow works with least privilege: the receipt SMS reached the phone (over intake's RPC).
    receipt = submit(web_session)
    case_id = receipt["case_id"]
    sweep_until(running_system, lambda: any(row["kind"] == "receipt" and row["status"] == "sent"
                                            for row in db.deliveries(database_url, case_id=case_id)), timeout=20)
    assert {request.json()["to"] for request in gateway.to("/sms")} == {APPLICANT_PHONE}
    # The receipt may go out before routing's item.routed reached intake's view of the case: wait for the unit.
    wait_until(lambda: web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()["items"][0]["unit_code"],
               what="the case's first item routed")
    item = web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()["items"][0]
    key = f"item.rejected.{item['unit_code'][:6]}000000.{item['level']}.{item['unit_code']}.{item['department_code']}"

    # What the broker lets through, each consumer refuses:
    # 1. a service that owns the key's family but not the type: escalation publishes a rejection on a key it
    #    may use (its 督办 warnings), so the broker cannot tell;
    escalation_key = key.replace("item.rejected.", "item.deadline-warning.")
    forged = forged_rejection(item, receipt, source="/sanji/escalation")
    publish(scoped_bus.service_uri("escalation"), escalation_key, forged.model_dump_json(),
            user_id=scoped_bus.users["escalation"])
    # 2. the owner of the type, claiming another service's source;
    mislabelled = forged_rejection(item, receipt, source="/sanji/intake")
    publish(scoped_bus.service_uri("routing"), key, mislabelled.model_dump_json(), user_id=scoped_bus.users["routing"])
    # 3. the broker's administrator (an operator's account): without a sender, and as itself.
    unsigned = forged_rejection(item, receipt, source="/sanji/routing")
    publish_raw(rabbit_config["AMQP_URI"], unsigned.model_dump_json(), key, declare=False, signed=False)
    as_admin = forged_rejection(item, receipt, source="/sanji/routing")
    publish_raw(rabbit_config["AMQP_URI"], as_admin.model_dump_json(), key, declare=False)

    # intake and notification bind item.#; escalation's queue is not running here and holds the rest.
    letters = dead_letters(rabbit_config["AMQP_URI"], expect=8, timeout=20)
    reasons = {(json.loads(m.body)["id"], m.headers["x-sanji-dead-letter-queue"]):
               m.headers["x-sanji-dead-letter-reason"] for m in letters}
    expected = {forged.id: "sender_does_not_own_type", mislabelled.id: "source_mismatch",
                unsigned.id: "sender_unidentified", as_admin.id: "sender_not_a_service"}
    assert reasons == {(event_id, queue): reason for event_id, reason in expected.items()
                       for queue in ("intake.item-updates", "notification.events")}
    for message in letters:
        assert message.properties.get("user_id") in (scoped_bus.users["intake"], scoped_bus.users["notification"])
        assert message.headers["x-sanji-sender"] in ("", "guest", scoped_bus.users["escalation"],
                                                     scoped_bus.users["routing"])

    # Nobody is told: no rejection planned for the resident, no SMS with the attacker's text, the case intact.
    sweep_until(running_system, lambda: True)
    assert not [row for row in db.deliveries(database_url, case_id=case_id) if row["kind"] == "item_rejected"]
    assert not [r for r in gateway.to("/sms") if "400-000-0000" in r.json()["text"]]
    view = web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()
    assert {i["status"] for i in view["items"] if i["item_id"] == item["item_id"]} != {"rejected"}
    # And a forgery is never replayed.
    from shared.dead_letters import replay_dead_letters

    assert replay_dead_letters(rabbit_config["AMQP_URI"], event_ids={forged.id}) == 0

    # The control: the same event from its owner, as its owner, is handled, and the resident is told.
    genuine = forged_rejection(item, receipt, source="/sanji/routing")
    publish(scoped_bus.service_uri("routing"), key, genuine.model_dump_json(), user_id=scoped_bus.users["routing"])
    sweep_until(running_system, lambda: any(row["kind"] == "item_rejected"
                                            for row in db.deliveries(database_url, case_id=case_id)), timeout=20)
    assert dead_letters(rabbit_config["AMQP_URI"], expect=1, timeout=1) == []


def test_intakes_contact_lookup_answers_only_its_caller_and_only_what_the_purpose_needs(
        running_system, scoped_bus, web_session, rabbit_config, database_url):
    receipt = submit(web_session)
    # A caller that names no sender (any plain nameko client, the administrator's account) is refused.
    with ClusterRpcProxy({"AMQP_URI": rabbit_config["AMQP_URI"]}, timeout=10) as proxy:
        with pytest.raises(RemoteError) as raised:
            proxy.intake.applicant_contact(receipt["case_id"], "sms")
    assert raised.value.exc_type == "CallerRefused" and "caller_unidentified" in str(raised.value)
    with ClusterRpcProxy({"AMQP_URI": rabbit_config["AMQP_URI"]}, timeout=10) as proxy:
        with pytest.raises(RemoteError) as raised:  # the sweep's batch form is guarded the same way
            proxy.intake.applicant_contacts([receipt["case_id"]], "sms")
    assert raised.value.exc_type == "CallerRefused" and "caller_unidentified" in str(raised.value)
    # The notification service gets the phone for an SMS, and nothing else (see the SMS in the test above).
    from services.intake import handlers
    from shared.clock import SystemClock
    from shared.db import session_factory, shared_engine
    from shared.outbox import UnitOfWork
    from tests.support.personal_data import development_keyring

    def lookup(purpose):
        uow = UnitOfWork(session_factory(shared_engine(database_url)), source="/sanji/intake", clock=SystemClock())
        return handlers.applicant_contact(receipt["case_id"], purpose, unit_of_work=uow,
                                          keyring=development_keyring())

    assert lookup("sms") == {"case_id": receipt["case_id"], "phone": APPLICANT_PHONE}
    assert set(lookup("email")) == {"case_id", "email"}
    with pytest.raises(handlers.UnknownContactPurpose):
        lookup("everything")

    def lookup_many(case_ids, purpose):
        uow = UnitOfWork(session_factory(shared_engine(database_url)), source="/sanji/intake", clock=SystemClock())
        return handlers.applicant_contacts(case_ids, purpose, unit_of_work=uow, keyring=development_keyring())

    # The batch form: the same one detail per case; a case intake does not hold is left out.
    assert lookup_many([receipt["case_id"], "no-such-case"], "sms") == {receipt["case_id"]: APPLICANT_PHONE}
    assert set(lookup_many([receipt["case_id"]], "email")) == {receipt["case_id"]}
    with pytest.raises(handlers.UnknownContactPurpose):
        lookup_many([receipt["case_id"]], "everything")


def test_make_run_creates_the_development_users_or_says_it_falls_back(rabbit_config, rabbit_manager):
    from shared.bus import dev_bus_environment
    from shared.config import REPO_ROOT

    prefix = "t" + uuid.uuid4().hex[:8] + "-"
    files = {"tokens_file": REPO_ROOT / "config" / "dev-tokens.yaml",
             "passwords_file": REPO_ROOT / "config" / "dev-bus-users.yaml"}
    environment, account = dev_bus_environment(rabbit_config["AMQP_URI"], prefix=prefix, **files)
    created = [user["name"] for user in rabbit_manager._get("users") if user["name"].startswith(prefix)]
    try:
        assert account.startswith("bus: each service runs as its own broker user")
        assert environment["SANJI_BUS_USERS"].split(",")[0] == f"intake={prefix}sanji-intake"
        assert len(created) == 7 + 6  # the seven services and the six department systems of the dev tokens
        # And the consumer queues dead-letter at least once, those an older release declared too (a policy).
        from shared.topology import DEAD_LETTER_POLICY_NAME, dead_letter_policy

        policy = rabbit_manager._get("policies", rabbit_config["vhost"], DEAD_LETTER_POLICY_NAME)
        expected = dead_letter_policy(rabbit_config["vhost"])
        assert {key: policy[key] for key in ("pattern", "apply-to", "priority", "definition")} == \
            {key: expected[key] for key in ("pattern", "apply-to", "priority", "definition")}
        assert account.endswith("; every consumer queue declared dead-letters at least once")
        # Each service connects as itself, and only as what it is allowed to be.
        routing = environment["SANJI_ROUTING_AMQP_URI"]
        with Connection(rabbit_config["AMQP_URI"]) as connection:
            from shared.topology import declare_topology

            declare_topology(connection)
        publish(routing, POLICE_KEY, user_id=prefix + "sanji-routing")
        assert "ACCESS_REFUSED" in refused(lambda: publish(routing, "case.submitted.320113003021"))
    finally:
        for name in created:
            rabbit_manager._delete("users", name)

    nothing, fallback = dev_bus_environment(rabbit_config["AMQP_URI"], management_url="http://127.0.0.1:9",
                                            prefix=prefix, **files)
    assert nothing == {} and fallback.startswith("bus: could not create the development broker users")
    assert "every service connects as 'guest'" in fallback
