"""The notification service on the real broker and database, sending to a local SMS gateway stand-in, a real
SMTP server and a department's webhook endpoint, with intake's contact RPC answered by a fake intake."""

from __future__ import annotations

import base64
import shutil
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from nameko.testing.services import entrypoint_waiter, replace_dependencies
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from services.notification import handlers
from services.notification.adapters.orm import Delivery as DeliveryRow
from services.notification.dependencies import Notifier
from services.notification.rendering import TemplateProblems
from services.notification.service import NotificationService
from services.notification.settings import TEMPLATES_DIR
from shared.clock import FrozenClock, new_id
from shared.db import session_factory, shared_engine
from shared.events import (
    CaseCompletedV1,
    CaseSubmittedV1,
    CloudEvent,
    DeferralReminderV1,
    Delivery,
    ItemRejectedV1,
    ItemResolvedV1,
    ItemRoutedV1,
    ItemSupplementRequestedV1,
    ItemTerminatedV1,
)
from shared.outbox import ProcessedMessage, UnitOfWork
from shared.workdays import SHANGHAI
from tests.support import notification_db as db
from tests.support.bus import publish_raw
from tests.support.cases import MAIGAOQIAO_STAFF
from tests.support.db import count_rows
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_PHONE, envelope, fake_intake, sample
from tests.support.notification_fixtures import (  # noqa: F401 - fixtures, found by name
    clock,
    http,
    no_contact_data_in_logs,
    receiver,
    smtp,
)
from tests.support.notification_harness import one_more_sweep, publish, sweep_until

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
SECRET = "whsec_" + base64.b64encode(b"qixia-police-webhook-secret-0001").decode()  # 32 bytes of key
CASE = sample(CaseSubmittedV1.event_type).case_id
CASE_NUMBER = sample(CaseSubmittedV1.event_type).case_number


@pytest.fixture
def notification_config(make_service_config, http, smtp, tmp_path, receiver, web_config_port):
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(f"""
webhooks:
  - name: qixia-police
    url: "{http.url('/hooks/qixia-police')}"
    secrets: ["{SECRET}"]
    department: police
    scope: "320113000000"
""", encoding="utf-8")

    def make(**overrides):
        return make_service_config(
            "notification", web_port=web_config_port,
            SANJI_NOTIFICATION_SMS_URL=http.url("/sms"), SANJI_NOTIFICATION_SMS_API_KEY="test-gateway-key",
            SANJI_NOTIFICATION_SMTP_HOST=smtp.host, SANJI_NOTIFICATION_SMTP_PORT=smtp.port,
            SANJI_NOTIFICATION_WEBHOOKS_FILE=str(hooks), SANJI_NOTIFICATION_SWEEP_SECONDS=0.05,
            SANJI_NOTIFICATION_SEND_TIMEOUT_SECONDS=3, SANJI_VAR_DIR=str(tmp_path / "var"), **overrides)

    return make


@pytest.fixture
def contacts():
    return {CASE: {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}}


@pytest.fixture
def intake(container_factory, make_service_config, contacts):
    container = container_factory(fake_intake(contacts), make_service_config("intake"))
    container.start()
    return container


@pytest.fixture
def notification(container_factory, notification_config, intake, clock):
    container = container_factory(NotificationService, notification_config())
    replace_dependencies(container, clock=clock)
    container.start()
    return container


def started_notifier(config) -> Notifier:
    """The service's dependency, set up as the container would, for tests that call the handlers directly."""
    notifier = Notifier()
    notifier.container = SimpleNamespace(config=config)
    notifier.setup()
    return notifier


def nothing_pending(database_url):
    return lambda: not db.deliveries(database_url, status="pending")


def sent(database_url, **equal):
    return lambda: all(row["status"] == "sent" for row in db.deliveries(database_url, **equal)) and bool(
        db.deliveries(database_url, **equal))


# ── every message kind ──────────────────────────────────────────────────────────────────────────────

EVERY_KIND = [
    (CaseSubmittedV1, 1), (ItemRoutedV1, 0), (ItemSupplementRequestedV1, 0), (DeferralReminderV1, 0),
    (ItemResolvedV1, 0), (ItemRejectedV1, 1), (ItemTerminatedV1, 0), (CaseCompletedV1, 0),
]
RESIDENT_KINDS = {"receipt", "item_routed", "supplement_requested", "deferral_reminder", "item_resolved",
                  "item_rejected", "item_terminated", "case_completed", "rating_invitation"}


def test_every_message_kind_is_rendered_and_delivered_on_every_channel(notification, rabbit_config, database_url,
                                                                        http, smtp, receiver, web_session):
    for payload_type, index in EVERY_KIND:
        publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(payload_type.event_type, index), DAY))
    sweep_until(notification, nothing_pending(database_url))

    rows = db.deliveries(database_url)
    assert {(row["kind"], row["channel"]) for row in rows} == (
        {(kind, channel) for kind in RESIDENT_KINDS for channel in ("sms", "email")}
        | {("staff_new_item", "inbox"), ("department_new_item", "webhook")})
    assert {row["status"] for row in rows} == {"sent"} and {row["attempts"] for row in rows} == {1}

    texts = {row["id"]: row["body"] for row in rows}
    sms = http.to("/sms")
    assert sorted(request.json()["client_ref"] for request in sms) == sorted(r["id"] for r in rows
                                                                             if r["channel"] == "sms")
    for request in sms:
        body = request.json()
        assert body["to"] == RESIDENT_PHONE and body["text"] == texts[body["client_ref"]]
        assert CASE_NUMBER in body["text"] and request.headers["Authorization"] == "Bearer test-gateway-key"

    emails = smtp.messages()
    assert sorted(message["X-Sanji-Delivery-Id"] for message in emails) == sorted(
        r["id"] for r in rows if r["channel"] == "email")
    for message in emails:
        assert message["To"] == RESIDENT_EMAIL and CASE_NUMBER in message["Subject"]
        assert message.get_content().strip() == texts[message["X-Sanji-Delivery-Id"]]

    [webhook] = receiver.accepted
    assert receiver.refused == []
    hook_row = next(row for row in rows if row["channel"] == "webhook")
    assert hook_row["document"].encode() == webhook
    assert '"kind":"department_new_item"' in webhook.decode()
    assert '"type":"cn.sanji.item.routed.v1"' in webhook.decode()

    response = web_session.get("/v1/inbox", headers=MAIGAOQIAO_STAFF)
    assert response.status_code == 200, response.text
    inbox = response.json()
    assert [(m["kind"], m["unit_code"], m["case_number"]) for m in inbox["messages"]] == [
        ("staff_new_item", "320113003000", CASE_NUMBER)]
    log = web_session.get(f"/v1/deliveries?case_id={CASE}", headers=MAIGAOQIAO_STAFF).json()
    assert len(log["deliveries"]) == len(rows)
    hints = {entry["channel"]: entry["address_hint"] for entry in log["deliveries"]}
    assert hints["sms"] == "139****4321" and hints["email"] == "l***@example.com"
    assert all(entry["attempts"][0]["outcome"] == "sent" for entry in log["deliveries"])


# ── exactly once ────────────────────────────────────────────────────────────────────────────────────


def test_a_redelivered_event_sends_nothing_new(notification, rabbit_config, database_url, http, smtp):
    event, routing_key = envelope(sample(CaseSubmittedV1.event_type), DAY)
    publish(notification, rabbit_config["AMQP_URI"], event, routing_key)
    sweep_until(notification, nothing_pending(database_url))
    publish(notification, rabbit_config["AMQP_URI"], event, routing_key)
    one_more_sweep(notification)

    assert len(http.to("/sms")) == 1 and len(smtp.messages()) == 1
    assert count_rows(database_url, "notification_deliveries", "processed_messages") == {
        "notification_deliveries": 2, "processed_messages": 1}


def test_the_delivery_log_key_holds_even_if_the_processed_record_is_lost(database_url, notification_config):
    """Two handlings of one event (say, its processed record was purged): the unique key keeps one delivery."""
    notifier = started_notifier(notification_config())
    factory = session_factory(shared_engine(database_url))
    event, _ = envelope(sample(ItemRoutedV1.event_type), DAY)

    def handle():
        return handlers.handle_event(event, unit_of_work=UnitOfWork(factory, source="/sanji/notification",
                                                                     clock=FrozenClock(DAY)), rules=notifier.rules)

    assert handle() == 4  # resident sms + email, staff inbox, department webhook
    assert handle() == 0
    with factory() as session, session.begin():
        session.execute(ProcessedMessage.__table__.delete())
    assert handle() == 0
    assert count_rows(database_url, "notification_deliveries", "notification_inbox") == {
        "notification_deliveries": 4, "notification_inbox": 1}


def test_an_event_type_without_a_rule_is_acknowledged_and_sends_nothing(notification, rabbit_config, database_url):
    future = CloudEvent(id=new_id(), source="/sanji/escalation", type="cn.sanji.item.something-new.v1", time=DAY,
                        data={"case_id": CASE, "note": "a type this service has no rule for yet"})
    with entrypoint_waiter(notification, "on_event") as handled:
        publish_raw(rabbit_config["AMQP_URI"], future.model_dump_json(),
                    "item.something-new.320113000000.street.320113003000.police")
    assert handled.get() == 0  # raises if the handler failed (the message would be retried, then dead-lettered)
    assert count_rows(database_url, "notification_deliveries", "processed_messages") == {
        "notification_deliveries": 0, "processed_messages": 1}


# ── retries ─────────────────────────────────────────────────────────────────────────────────────────


def test_a_503_from_the_gateway_is_retried_after_a_backoff_then_delivered(notification, rabbit_config, database_url,
                                                                          http, clock):
    answers = iter([(503, {"error": "maintenance"}), (200, {"message_id": "gw-2"})])
    http.answer("/sms", lambda request: next(answers))
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseSubmittedV1.event_type), DAY))
    sweep_until(notification, lambda: db.one(database_url, channel="sms")["attempts"] == 1
                and db.one(database_url, channel="sms")["claim_token"] is None)

    waiting = db.one(database_url, channel="sms")
    assert (waiting["status"], waiting["last_error"]) == ("pending", "HTTP 503: maintenance")
    assert DAY + timedelta(seconds=15) <= waiting["next_attempt_at"] <= DAY + timedelta(seconds=30)
    one_more_sweep(notification)
    assert len(http.to("/sms")) == 1  # not before its time

    clock.advance(seconds=30)
    sweep_until(notification, sent(database_url, channel="sms"))
    delivered = db.one(database_url, channel="sms")
    assert [(a["number"], a["outcome"], a["detail"]) for a in db.attempts(database_url, delivered["id"])] == [
        (1, "transient", "HTTP 503: maintenance"), (2, "sent", "HTTP 200")]
    assert db.attempts(database_url, delivered["id"])[1]["provider_ref"] == "gw-2"
    assert [request.json()["client_ref"] for request in http.to("/sms")] == [delivered["id"]] * 2
    assert delivered["last_error"] is None and delivered["sent_at"] == clock.now()


def test_a_400_from_the_gateway_is_recorded_as_failed_and_never_retried(notification, rabbit_config, database_url,
                                                                        http, clock):
    http.answer("/sms", lambda request: (400, {"error": "invalid_number"}))
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseSubmittedV1.event_type), DAY))
    sweep_until(notification, lambda: db.one(database_url, channel="sms")["status"] != "pending")

    clock.advance(hours=2)
    one_more_sweep(notification)
    one_more_sweep(notification)
    failed = db.one(database_url, channel="sms")
    assert (failed["status"], failed["last_error"], failed["attempts"], failed["next_attempt_at"]) == (
        "failed", "HTTP 400: invalid_number", 1, None)
    assert [a["outcome"] for a in db.attempts(database_url, failed["id"])] == ["permanent"]
    assert len(http.to("/sms")) == 1
    assert db.one(database_url, channel="email")["status"] == "sent"


def test_a_webhook_retry_carries_the_same_webhook_id_and_verifies_again(notification, rabbit_config, database_url,
                                                                         http, receiver, clock):
    failures = iter([(503, {"error": "busy"})])
    http.answer("/hooks/qixia-police",
                lambda request: next(failures, None) or receiver.receive(request.headers, request.body))
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(ItemRoutedV1.event_type), DAY))
    sweep_until(notification, lambda: db.one(database_url, channel="webhook")["attempts"] == 1
                and db.one(database_url, channel="webhook")["claim_token"] is None)
    clock.advance(seconds=30)
    sweep_until(notification, sent(database_url, channel="webhook"))

    row = db.one(database_url, channel="webhook")
    first, retry = http.to("/hooks/qixia-police")
    assert first.headers["Webhook-Id"] == retry.headers["Webhook-Id"] == row["id"] and first.body == retry.body
    assert receiver.ids == [row["id"]] and receiver.refused == [] and receiver.accepted == [row["document"].encode()]
    assert [a["outcome"] for a in db.attempts(database_url, row["id"])] == ["transient", "sent"]


def test_a_resident_without_email_gets_the_sms_and_the_email_is_skipped(notification, rabbit_config, database_url,
                                                                        contacts, smtp):
    contacts[CASE] = {"phone": RESIDENT_PHONE, "email": None}
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseSubmittedV1.event_type), DAY))
    sweep_until(notification, nothing_pending(database_url))
    assert {row["channel"]: (row["status"], row["last_error"]) for row in db.deliveries(database_url)} == {
        "sms": ("sent", None), "email": ("skipped", "no email address on record")}
    assert smtp.messages() == []


# ── quiet hours ─────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def night_clock(clock):
    clock.advance(hours=13)  # 23:00 in Nanjing
    assert clock.now() == NIGHT
    return clock


def test_an_sms_at_night_waits_until_eight_in_the_morning(night_clock, notification, rabbit_config, database_url,
                                                          http, smtp):
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(ItemSupplementRequestedV1.event_type), NIGHT))
    sweep_until(notification, sent(database_url, channel="email"))  # email is not held
    one_more_sweep(notification)

    held = db.one(database_url, channel="sms")
    morning = datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI)
    assert (held["status"], held["hold_reason"], held["next_attempt_at"], held["attempts"]) == (
        "pending", "quiet_hours", morning, 0)
    assert http.to("/sms") == [] and len(smtp.messages()) == 1

    night_clock.advance(hours=8, minutes=59, seconds=59)  # 07:59:59
    one_more_sweep(notification)
    assert http.to("/sms") == []

    night_clock.advance(seconds=1)  # 08:00
    sweep_until(notification, sent(database_url, channel="sms"))
    [attempt] = db.attempts(database_url, held["id"])
    assert attempt["started_at"] == morning and len(http.to("/sms")) == 1


def test_an_urgent_message_goes_out_at_night_and_the_rest_waits(night_clock, notification, rabbit_config,
                                                                 database_url, http):
    tomorrow_nine = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)
    door_delivery = sample(ItemResolvedV1.event_type, 1, delivery=Delivery(method="door", agent_id="sw-0042",
                                                                           scheduled_for=tomorrow_nine))
    publish(notification, rabbit_config["AMQP_URI"], *envelope(door_delivery, NIGHT))
    publish(notification, rabbit_config["AMQP_URI"], *envelope(sample(CaseCompletedV1.event_type, 0), NIGHT))
    sweep_until(notification, sent(database_url, kind="item_resolved", channel="sms"))
    one_more_sweep(notification)

    urgent = db.one(database_url, kind="item_resolved", channel="sms")
    assert urgent["urgent"] and urgent["hold_reason"] is None
    assert db.attempts(database_url, urgent["id"])[0]["started_at"] == NIGHT
    [request] = http.to("/sms")
    assert "上门送达" in request.json()["text"] and "2026年12月2日 09:00" in request.json()["text"]
    for kind in ("case_completed", "rating_invitation"):
        waiting = db.one(database_url, kind=kind, channel="sms")
        assert (waiting["status"], waiting["hold_reason"]) == ("pending", "quiet_hours")


# ── rate limits ─────────────────────────────────────────────────────────────────────────────────────


def test_a_backlog_drains_at_the_providers_configured_rate(container_factory, notification_config, intake, contacts,
                                                           rabbit_config, database_url, http, clock):
    cases = [f"00000000-0000-4000-8000-0000000002{n:02d}" for n in range(3)]
    for case_id in cases:
        contacts[case_id] = {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}
    container = container_factory(NotificationService,
                                  notification_config(SANJI_NOTIFICATION_RATE_LIMITS="sms=1,email=100"))
    replace_dependencies(container, clock=clock)
    container.start()
    for case_id in cases:
        publish(container, rabbit_config["AMQP_URI"],
                *envelope(sample(CaseSubmittedV1.event_type, case_id=case_id), DAY))

    sweep_until(container, lambda: len(db.deliveries(database_url, channel="email", status="sent")) == 3)
    one_more_sweep(container)
    assert len(http.to("/sms")) == 1  # one a second, and the clock stands still
    for expected in (2, 3):
        clock.advance(seconds=1)
        sweep_until(container, lambda: len(db.deliveries(database_url, channel="sms", status="sent")) == expected)  # noqa: B023
        one_more_sweep(container)
        assert len(http.to("/sms")) == expected


# ── replicas ────────────────────────────────────────────────────────────────────────────────────────


def test_two_replicas_send_each_message_exactly_once(container_factory, notification_config, intake, contacts,
                                                     rabbit_config, database_url, http, smtp):
    cases = [f"00000000-0000-4000-8000-0000000001{n:02d}" for n in range(8)]
    for case_id in cases:
        contacts[case_id] = {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}
    replicas = []
    for _ in range(2):
        replica = container_factory(NotificationService, notification_config(
            SANJI_NOTIFICATION_QUIET_HOURS="off", WEB_SERVER_ADDRESS="127.0.0.1:0",
            SANJI_NOTIFICATION_BATCH_SIZE=3))
        replica.start()
        replicas.append(replica)
    for case_id in cases:
        event, routing_key = envelope(sample(CaseSubmittedV1.event_type, case_id=case_id), DAY)
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)
    sweep_until(replicas[0], lambda: len(db.deliveries(database_url)) == 16 and nothing_pending(database_url)(),
                timeout=20)

    refs = [request.json()["client_ref"] for request in http.to("/sms")]
    assert len(refs) == len(set(refs)) == 8
    assert len(smtp.messages()) == 8
    assert {row["attempts"] for row in db.deliveries(database_url)} == {1}
    assert len(db.attempts(database_url)) == 16


def test_a_sweep_skips_the_rows_another_replica_is_claiming(database_url, notification_config):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; row locks are a PostgreSQL matter")
    notifier = started_notifier(notification_config())
    factory = session_factory(shared_engine(database_url))
    uow = lambda: UnitOfWork(factory, source="/sanji/notification", clock=FrozenClock(DAY))  # noqa: E731
    for case_id in ("c1", "c2", "c3", "c4"):
        handlers.handle_event(envelope(sample(CaseSubmittedV1.event_type, case_id=case_id), DAY)[0],
                              unit_of_work=uow(), rules=notifier.rules)
    other_replica = factory()
    locked = other_replica.scalars(select(DeliveryRow).where(
        DeliveryRow.channel == "sms", DeliveryRow.case_id.in_(["c1", "c2"])).with_for_update()).all()
    try:
        claimed = handlers.claim_due(uow, now=DAY, dispatcher=notifier.dispatcher)
        assert {row.case_id for row in claimed if row.channel == "sms"} == {"c3", "c4"}
    finally:
        other_replica.rollback()
        other_replica.close()
    assert {row.case_id for row in handlers.claim_due(uow, now=DAY, dispatcher=notifier.dispatcher)} == {"c1", "c2"}
    assert len(locked) == 2


def test_sends_whose_results_the_database_could_not_take_are_recorded_later_not_sent_again(
        database_url, notification_config, http, smtp):
    """The fault suite's duplicates: a sweep sent its batch, the database went away before the results were
    written, and once the lease lapsed every one of those messages went out again."""
    notifier = started_notifier(notification_config())
    factory = session_factory(shared_engine(database_url))
    uow = lambda: UnitOfWork(factory, source="/sanji/notification", clock=FrozenClock(DAY))  # noqa: E731
    handlers.handle_event(envelope(sample(CaseSubmittedV1.event_type, case_id=CASE), DAY)[0],
                          unit_of_work=uow(), rules=notifier.rules)
    contact = {"phone": RESIDENT_PHONE, "email": RESIDENT_EMAIL}
    contacts = lambda case_id, purpose: handlers.Contact(**{  # noqa: E731
        {"sms": "phone", "email": "email"}[purpose]: contact[{"sms": "phone", "email": "email"}[purpose]]})
    units_of_work = []

    def database_gone_after_the_claim():
        units_of_work.append(1)
        if len(units_of_work) == 2:  # the claim went through; the results' transaction finds no database
            raise OperationalError("INSERT INTO notification_attempts", {}, ConnectionRefusedError("refused"))
        return uow()

    def sweep(factory_, at):
        return handlers.dispatch_due(unit_of_work_factory=factory_, clock=FrozenClock(at),
                                     dispatcher=notifier.dispatcher, contacts=contacts,
                                     unrecorded=notifier.unrecorded)

    with pytest.raises(OperationalError):
        sweep(database_gone_after_the_claim, DAY)
    assert len(http.to("/sms")) == 1 and len(notifier.unrecorded) == 2  # sent; results held in memory
    report = sweep(uow, DAY + timedelta(seconds=5))  # the database is back
    assert report.sent == 2 and len(notifier.unrecorded) == 0
    assert all(row["status"] == "sent" for row in db.deliveries(database_url, case_id=CASE))
    # long after the lease: nothing is pending, so nothing goes out twice
    later = DAY + timedelta(seconds=notifier.settings.lease_seconds * 3)
    assert sweep(uow, later).claimed == 0
    assert len(http.to("/sms")) == 1


# ── a broken template stops the service at start ────────────────────────────────────────────────────


def test_the_service_does_not_start_with_a_template_that_names_a_missing_variable(container_factory,
                                                                                   notification_config, tmp_path):
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, broken)
    (broken / "rating_invitation.email.j2").write_text(
        "{% block subject %}评价{% endblock %}{% block body %}{{ rating_url }}{% endblock %}", encoding="utf-8")
    container = container_factory(NotificationService,
                                  notification_config(SANJI_NOTIFICATION_TEMPLATES_DIR=str(broken)))
    with pytest.raises(TemplateProblems, match="rating_invitation.email.j2: 'rating_url' is undefined"):
        container.start()
