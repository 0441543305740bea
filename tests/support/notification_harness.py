"""Drive a running notification container: publish events and wait for its sweeps, without sleeping."""

from __future__ import annotations

import logging
from collections.abc import Callable

from nameko.testing.services import entrypoint_waiter

from shared.events import CloudEvent
from tests.support.bus import publish_raw
from tests.support.notification_fakes import RESIDENT_EMAIL, RESIDENT_NAME, RESIDENT_PHONE


def publish(container, amqp_uri: str, event: CloudEvent, routing_key: str) -> None:
    """Publish an event and wait until the service has handled it."""
    with entrypoint_waiter(container, "on_event", timeout=10):
        publish_raw(amqp_uri, event.model_dump_json(), routing_key)


def sweep_until(container, condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for the first sweep after which ``condition()`` holds."""
    with entrypoint_waiter(container, "dispatch", timeout=timeout,
                           callback=lambda worker_ctx, result, exc_info: exc_info is None and condition()):
        pass


def one_more_sweep(container, timeout: float = 10) -> None:
    """Wait for a whole sweep that started after this call."""
    started = []

    def whole(worker_ctx, result, exc_info):
        started.append(True)
        return len(started) >= 2  # the first may have begun before we asked

    with entrypoint_waiter(container, "dispatch", timeout=timeout, callback=whole):
        pass


def assert_no_contact_data_logged(records: list[logging.LogRecord], *secrets: str) -> None:
    text = "\n".join(f"{record.getMessage()} {record.args}" for record in records)
    for secret in (RESIDENT_PHONE, RESIDENT_EMAIL, RESIDENT_NAME, *secrets):
        assert secret not in text
    # The logging redactor masks phone numbers and remembered names as a second line of defence; it must
    # have had nothing to do.
    assert "[phone redacted]" not in text and "[personal data redacted]" not in text
