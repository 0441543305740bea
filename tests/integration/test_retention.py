"""The retention job on SQLite and PostgreSQL: what goes, what stays, a late duplicate, two pruners at once, a
locked row, and the timer inside a running service (shared/retention.py, services/notification/retention.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import eventlet
import pytest
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import func, select, text, update

from services.notification import handlers
from services.notification.adapters.orm import Delivery, DeliveryAttempt, InboxMessage
from services.notification.dependencies import Notifier
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from shared.clock import FrozenClock, new_id
from shared.config import Settings, nameko_config
from shared.db import create_db_engine, session_factory, shared_engine
from shared.events import ItemRoutedV1
from shared.outbox import OutboxMessage, ProcessedMessage, UnitOfWork
from shared.retention import RetentionPolicy, kernel_targets, prune, targets_for
from shared.workdays import SHANGHAI
from tests.support.notification_fakes import envelope, sample

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI)
DAYS = timedelta(days=1)
POLICY = RetentionPolicy()  # the defaults: outbox 7 days, processed 14 days


def outbox_row(session, *, created: datetime, published: datetime | None, source: str = "/sanji/routing") -> str:
    event_id = new_id()
    session.add(OutboxMessage(event_id=event_id, source=source, event_type="cn.sanji.item.routed.v1",
                              routing_key="item.routed", body="{}", created_at=created, published_at=published))
    return event_id


def processed_row(session, *, at: datetime, key: str | None = None) -> str:
    key = key or new_id()
    session.add(ProcessedMessage(consumer="routing.case-submitted", event_key=key, processed_at=at))
    return key


def delivery_row(session, *, created: datetime, status: str, channel: str = "sms") -> str:
    delivery_id = new_id()
    session.add(Delivery(
        id=delivery_id, recipient=f"resident:{new_id()}", channel=channel, cause=f"/sanji/routing#{new_id()}/x",
        kind="resident_progress", audience="resident", event_type="cn.sanji.item.routed.v1", case_id=new_id(),
        subject="s", body="b", urgent=False, status=status, attempts=1, created_at=created,
        sent_at=created if status == "sent" else None))
    session.flush()
    session.add(DeliveryAttempt(delivery_id=delivery_id, number=1, started_at=created, finished_at=created,
                                outcome="sent" if status == "sent" else "transient"))
    if channel == "inbox":
        session.add(InboxMessage(id=new_id(), delivery_id=delivery_id, unit_code="320113003000", kind="x",
                                 subject="s", body="b", created_at=created))
    return delivery_id


def notification_config(database_url: str, tmp_path, **overrides) -> dict:
    config = nameko_config("notification", Settings.from_env("notification"))
    config.update(DATABASE_URL=database_url, SANJI_VAR_DIR=str(tmp_path / "var"), **overrides)
    return config


def test_old_rows_go_young_and_owed_rows_stay(database_url, tmp_path):
    engine = shared_engine(database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        old_published = outbox_row(session, created=NOW - 9 * DAYS, published=NOW - 8 * DAYS)
        young_published = outbox_row(session, created=NOW - 9 * DAYS, published=NOW - 6 * DAYS)
        at_the_cut_off = outbox_row(session, created=NOW - 9 * DAYS, published=NOW - 7 * DAYS)  # not older: stays
        old_unpublished = outbox_row(session, created=NOW - 30 * DAYS, published=None)  # still owed to the broker
        old_processed = processed_row(session, at=NOW - 15 * DAYS)
        young_processed = processed_row(session, at=NOW - 13 * DAYS)
        old_sent = delivery_row(session, created=NOW - 91 * DAYS, status="sent")
        old_skipped = delivery_row(session, created=NOW - 91 * DAYS, status="skipped", channel="email")
        young_sent = delivery_row(session, created=NOW - 89 * DAYS, status="sent")
        old_pending = delivery_row(session, created=NOW - 200 * DAYS, status="pending")  # not yet delivered
        old_failed = delivery_row(session, created=NOW - 200 * DAYS, status="failed")    # never delivered
        old_inbox = delivery_row(session, created=NOW - 366 * DAYS, status="sent", channel="inbox")
        young_inbox = delivery_row(session, created=NOW - 91 * DAYS, status="sent", channel="inbox")

    targets = targets_for(NotificationService, notification_config(database_url, tmp_path))
    removed = prune(engine, targets, now=NOW)

    assert removed == {"outbox_messages": 1, "processed_messages": 1, "notification_deliveries": 2,
                       "notification_inbox": 1}
    with factory() as session:
        assert set(session.scalars(select(OutboxMessage.event_id))) == {young_published, at_the_cut_off,
                                                                        old_unpublished}
        assert old_published not in set(session.scalars(select(OutboxMessage.event_id)))
        assert set(session.scalars(select(ProcessedMessage.event_key))) == {young_processed}
        assert old_processed not in set(session.scalars(select(ProcessedMessage.event_key)))
        kept = set(session.scalars(select(Delivery.id)))
        assert kept == {young_sent, old_pending, old_failed, young_inbox}
        assert not kept & {old_sent, old_skipped, old_inbox}
        # The attempts and the inbox message went with their delivery, and only those.
        assert set(session.scalars(select(DeliveryAttempt.delivery_id))) == kept
        assert set(session.scalars(select(InboxMessage.delivery_id))) == {young_inbox}
    # A second pass finds nothing more.
    assert set(prune(engine, targets, now=NOW).values()) == {0}


def test_many_rows_go_in_small_batches_and_zero_keeps_for_ever(database_url):
    engine = shared_engine(database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        for n in range(25):
            outbox_row(session, created=NOW - 30 * DAYS, published=NOW - (8 + n) * DAYS)
            processed_row(session, at=NOW - (15 + n) * DAYS)

    kept_for_ever = RetentionPolicy(outbox=None, processed=timedelta(days=14))
    assert prune(engine, kernel_targets(kept_for_ever), now=NOW, batch_size=4) == {
        "outbox_messages": 0, "processed_messages": 25}
    assert prune(engine, kernel_targets(POLICY), now=NOW, batch_size=4) == {
        "outbox_messages": 25, "processed_messages": 0}
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_duplicate_of_a_pruned_event_does_not_send_twice_within_the_bound(database_url, tmp_path):
    """The processed-message record goes after 14 days; the delivery rows (the unique key "once per recipient,
    channel and cause") stay 90 days and still stop a late duplicate. Past 90 days the bound is reached: what
    docs/reliability.md says happens then, happens."""
    config = notification_config(database_url, tmp_path)
    notifier = Notifier()
    notifier.container = type("Container", (), {"config": config})()
    notifier.setup()
    engine = shared_engine(database_url)
    factory = session_factory(engine)
    event, _ = envelope(sample(ItemRoutedV1.event_type), NOW)

    def handle(at: datetime) -> int:
        return handlers.handle_event(event, unit_of_work=UnitOfWork(factory, source="/sanji/notification",
                                                                     clock=FrozenClock(at)), rules=notifier.rules)

    planned = handle(NOW)
    assert planned >= 2  # the resident's SMS and e-mail, the staff inbox
    with factory() as session, session.begin():  # the sweep sent the resident's messages
        session.execute(update(Delivery).where(Delivery.status == "pending").values(status="sent", sent_at=NOW))
    targets = targets_for(NotificationService, config)

    later = NOW + 15 * DAYS
    assert prune(engine, targets, now=later)["processed_messages"] == 1
    assert handle(later) == 0  # a duplicate after the processed record went: nothing new
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == planned

    beyond = NOW + 91 * DAYS
    removed = prune(engine, targets, now=beyond)
    assert removed["notification_deliveries"] == planned - 1 and removed["notification_inbox"] == 0
    # Past the documented bound only the inbox message (kept a year) still guards its own key.
    assert handle(beyond) == planned - 1


def test_postgres_vacuums_the_tables_it_pruned(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite reuses its free pages without a vacuum")
    engine = shared_engine(database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        for _ in range(20):
            outbox_row(session, created=NOW - 30 * DAYS, published=NOW - 10 * DAYS)

    def vacuums(table: str) -> int:
        with engine.connect() as connection:
            return connection.execute(text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = :t"),
                                      {"t": table}).scalar()

    before = {table: vacuums(table) for table in ("outbox_messages", "processed_messages")}
    assert prune(engine, kernel_targets(POLICY), now=NOW, vacuum=True)["outbox_messages"] == 20
    deadline = time.monotonic() + 5
    while vacuums("outbox_messages") == before["outbox_messages"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vacuums("outbox_messages") == before["outbox_messages"] + 1
    assert vacuums("processed_messages") == before["processed_messages"]  # nothing deleted there: not vacuumed


def test_two_pruners_at_once_share_the_work(database_url):
    factory = session_factory(shared_engine(database_url))
    with factory() as session, session.begin():
        for n in range(1200):
            outbox_row(session, created=NOW - 30 * DAYS, published=NOW - 8 * DAYS - n * timedelta(seconds=1))
    engines = [create_db_engine(database_url), create_db_engine(database_url)]
    try:
        passes = [eventlet.spawn(prune, engine, kernel_targets(POLICY), now=NOW, batch_size=50)
                  for engine in engines]
        results = [green.wait() for green in passes]  # neither raises
    finally:
        for engine in engines:
            engine.dispose()
    assert sum(result["outbox_messages"] for result in results) == 1200
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_row_locked_elsewhere_is_skipped_not_waited_for(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row locks: a writer waits for the one other writer's short transaction")
    factory = session_factory(shared_engine(database_url))
    with factory() as session, session.begin():
        locked_id = outbox_row(session, created=NOW - 30 * DAYS, published=NOW - 20 * DAYS)
        for _ in range(5):
            outbox_row(session, created=NOW - 30 * DAYS, published=NOW - 10 * DAYS)
    other = factory()
    other.scalars(select(OutboxMessage).where(OutboxMessage.event_id == locked_id).with_for_update()).all()
    engine = create_db_engine(database_url)
    try:
        started = time.monotonic()
        removed = prune(engine, kernel_targets(POLICY), now=NOW, batch_size=1000)
        elapsed = time.monotonic() - started
    finally:
        other.rollback()
        other.close()
        engine.dispose()
    assert removed["outbox_messages"] == 5
    assert elapsed < 1.5, f"the pruner waited {elapsed:.1f}s on a locked row"
    with factory() as session:
        assert list(session.scalars(select(OutboxMessage.event_id))) == [locked_id]


def test_a_running_service_prunes_on_its_timer(container_factory, make_service_config, database_url):
    factory = session_factory(shared_engine(database_url))
    now = datetime.now(SHANGHAI)
    with factory() as session, session.begin():
        old = outbox_row(session, created=now - 2 * DAYS, published=now - 2 * DAYS)
        young = outbox_row(session, created=now, published=now)
        processed_row(session, at=now - 3 * DAYS)
    config = make_service_config("routing", SANJI_RETENTION_INTERVAL_SECONDS=0.2, SANJI_RETENTION_OUTBOX_DAYS=1,
                                 SANJI_RETENTION_PROCESSED_DAYS=2)
    container = container_factory(RoutingService, config)
    with entrypoint_waiter(container, "prune_retained", timeout=20):
        container.start()
    with factory() as session:
        assert set(session.scalars(select(OutboxMessage.event_id))) >= {young}
        assert old not in set(session.scalars(select(OutboxMessage.event_id)))
        assert session.scalar(select(func.count()).select_from(ProcessedMessage)) == 0



def test_sanji_prune_prints_one_line_per_table(database_url, monkeypatch, capsys, tmp_path):
    from sanji.cli import main

    factory = session_factory(shared_engine(database_url))
    recent = datetime.now(SHANGHAI)
    with factory() as session, session.begin():
        outbox_row(session, created=recent - 10 * DAYS, published=recent - 9 * DAYS)
        outbox_row(session, created=recent - 10 * DAYS, published=None)
        processed_row(session, at=recent - 20 * DAYS)
        processed_row(session, at=recent)
    monkeypatch.setenv("SANJI_DATABASE_URL", database_url)
    monkeypatch.setenv("SANJI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SANJI_NOTIFICATION_INBOX_RETENTION_DAYS", "0")
    assert main(["prune", "notification"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "notification: outbox_messages: 1 removed", "notification: processed_messages: 1 removed",
        "notification: notification_deliveries: 0 removed", "notification: notification_inbox: kept (retention 0)"]


def test_sanji_prune_refuses_bad_arguments(capsys, monkeypatch, tmp_path):
    from sanji.cli import main

    with pytest.raises(SystemExit) as unknown:
        main(["prune", "billing"])
    assert unknown.value.code == 2 and "invalid choice: 'billing'" in capsys.readouterr().err
    monkeypatch.setenv("SANJI_RETENTION_OUTBOX_DAYS", "-2")
    assert main(["prune", "routing"]) == 2
    assert "SANJI_RETENTION_OUTBOX_DAYS: expected at least 0" in capsys.readouterr().err
    monkeypatch.delenv("SANJI_RETENTION_OUTBOX_DAYS")
    monkeypatch.setenv("SANJI_DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    assert main(["prune", "routing"]) == 1
    assert "run `sanji migrate routing` first" in capsys.readouterr().err
