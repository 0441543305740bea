"""The retention job's rules without a database: cut-offs, what 0 means, the settings and their refusals, and
which rows of which table may go at all (shared/retention.py, services/notification/retention.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notification.retention import retention_targets
from services.subscriptions.retention import retention_targets as subscriptions_targets
from shared.config import Settings, SettingsInvalid, nameko_config
from shared.retention import (
    DEFAULT_BATCH_SIZE,
    RetentionPolicy,
    RetentionTimer,
    cutoff,
    retention_of,
)

NOW = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)


def test_zero_means_kept_for_ever_and_a_negative_retention_is_refused():
    assert retention_of(0) is None and retention_of(None) is None
    assert retention_of(7) == timedelta(days=7)
    assert retention_of(0.5) == timedelta(hours=12)
    with pytest.raises(ValueError):
        retention_of(-1)


def test_the_cut_off_is_now_minus_the_retention_and_none_when_kept_for_ever():
    assert cutoff(NOW, timedelta(days=7)) == datetime(2026, 12, 13, 2, 0, tzinfo=UTC)
    assert cutoff(NOW, None) is None
    with pytest.raises(ValueError):
        cutoff(NOW.replace(tzinfo=None), timedelta(days=1))


def test_the_defaults_and_the_container_config():
    defaults = RetentionPolicy.from_config(nameko_config("routing", Settings.read({}, "routing")))
    assert defaults == RetentionPolicy(outbox=timedelta(days=7), processed=timedelta(days=14), interval_seconds=3600,
                                       batch_size=DEFAULT_BATCH_SIZE)
    settings = Settings.read({"SANJI_RETENTION_OUTBOX_DAYS": "0", "SANJI_RETENTION_PROCESSED_DAYS": "0.25",
                              "SANJI_RETENTION_INTERVAL_SECONDS": "60", "SANJI_RETENTION_BATCH_SIZE": "200",
                              "SANJI_RETENTION_VACUUM": "no"}, "routing")
    policy = RetentionPolicy.from_config(nameko_config("routing", settings))
    assert policy == RetentionPolicy(outbox=None, processed=timedelta(hours=6), interval_seconds=60, batch_size=200,
                                     vacuum=False)


@pytest.mark.parametrize(("variable", "value", "line"), [
    ("SANJI_RETENTION_OUTBOX_DAYS", "-1", "SANJI_RETENTION_OUTBOX_DAYS: expected at least 0, got '-1'"),
    ("SANJI_RETENTION_PROCESSED_DAYS", "two weeks", "SANJI_RETENTION_PROCESSED_DAYS: expected a number"),
    ("SANJI_RETENTION_INTERVAL_SECONDS", "nan", "SANJI_RETENTION_INTERVAL_SECONDS: expected a finite number"),
    ("SANJI_RETENTION_BATCH_SIZE", "0", "SANJI_RETENTION_BATCH_SIZE: expected at least 1, got '0'"),
    ("SANJI_RETENTION_BATCH_SIZE", "50000", "SANJI_RETENTION_BATCH_SIZE: expected at most 10000, got '50000'"),
    ("SANJI_RETENTION_VACUUM", "sometimes", "SANJI_RETENTION_VACUUM: expected true or false"),
])
def test_a_bad_retention_setting_is_one_line_naming_it(variable, value, line):
    with pytest.raises(SettingsInvalid) as refused:
        Settings.read({variable: value}, "routing")
    assert refused.value.lines[0].startswith(line)


def test_notification_prunes_finished_deliveries_and_the_inbox_by_their_own_settings():
    targets = {target.name: target for target in retention_targets({
        "SANJI_NOTIFICATION_RETENTION_DAYS": "30", "SANJI_NOTIFICATION_INBOX_RETENTION_DAYS": "0"})}
    assert targets["notification_deliveries"].retention == timedelta(days=30)
    assert targets["notification_inbox"].retention is None
    defaults = {target.name: target.retention for target in retention_targets({})}
    assert defaults == {"notification_deliveries": timedelta(days=90), "notification_inbox": timedelta(days=365)}
    with pytest.raises(SettingsInvalid):
        retention_targets({"SANJI_NOTIFICATION_RETENTION_DAYS": "-3"})


def test_subscriptions_prunes_delivered_deliveries_and_then_unneeded_events_by_one_setting():
    targets = subscriptions_targets({"SANJI_SUBSCRIPTIONS_RETENTION_DAYS": "45"})
    assert [(target.name, target.retention) for target in targets] == [
        ("subscriptions_deliveries", timedelta(days=45)), ("subscriptions_events", timedelta(days=45))]
    assert {target.retention for target in subscriptions_targets({})} == {timedelta(days=30)}
    assert {target.retention for target in subscriptions_targets({"SANJI_SUBSCRIPTIONS_RETENTION_DAYS": "0"})} == {None}
    with pytest.raises(SettingsInvalid):
        subscriptions_targets({"SANJI_SUBSCRIPTIONS_RETENTION_DAYS": "-1"})


class FakeContainer:
    service_name = "routing"  # nameko's extensions name it in their repr, which a debug log line asks for

    def __init__(self, config):
        self.config = config
        self.spawned = []

    def spawn_managed_thread(self, run):
        self.spawned.append(run)


def test_the_timer_does_not_run_when_the_interval_is_zero():
    container = FakeContainer({"SANJI_RETENTION_INTERVAL_SECONDS": 0})
    spawned = container.spawned
    timer = RetentionTimer().bind(container, "prune_retained")
    timer.setup()
    timer.start()
    timer.stop()
    assert spawned == [] and timer.interval == 0
    container.config["SANJI_RETENTION_INTERVAL_SECONDS"] = 60
    running = RetentionTimer().bind(container, "prune_retained")
    running.setup()
    running.start()
    assert len(spawned) == 1 and running.interval == 60 and running.eager is False
