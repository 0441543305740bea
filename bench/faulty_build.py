"""A service built wrong on purpose, for the chaos checker's self-test: ``python -m bench.faulty_build FAULT
SERVICE`` runs ``sanji serve SERVICE`` with one bug patched in.

- ``ack-before-commit``: the event consumer acknowledges a message as soon as it arrives and handles it a
  moment later (as a consumer that acks before its transaction commits does). A crash in between loses
  the message: the broker has forgotten it and nothing was written.
- ``send-twice``: the notifier hands every SMS, e-mail and webhook to its channel twice.

The self-test starts these instead of the real services and runs the checker on the result: it must find
messages lost and messages duplicated. The patch lives in the bench, outside the package: no setting of the
shipped services can turn it on, so nothing needs refusing in production.
"""

from __future__ import annotations

import sys

import sanji.cli  # noqa: I001 - monkey-patches eventlet before anything else opens a socket


def ack_before_commit() -> None:
    import eventlet

    from shared.nameko_ext import EventConsumer

    original_spawn = EventConsumer._spawn

    def spawn_after_ack(self, message, event, outage_retry):
        if outage_retry == 0:
            self.queue_consumer.ack_message(message)          # the bug: acknowledged before any work
            message.__dict__["_chaos_acked"] = True
            eventlet.spawn_after(1.0, original_spawn, self, message, event, outage_retry)
            return
        original_spawn(self, message, event, outage_retry)

    def settle_nothing(self, message, event, worker_ctx, result=None, exc_info=None, outage_retry=0):
        return result, exc_info                               # already acknowledged: nothing to settle

    EventConsumer._spawn = spawn_after_ack
    EventConsumer.handle_event_result = settle_nothing


def send_twice() -> None:
    from services.notification.adapters import channels

    for name in ("SmsGateway", "SmtpEmail", "WebhookSender"):
        cls = getattr(channels, name)
        original = cls.send

        def send(self, message, _original=original):
            _original(self, message)                          # the bug: the first send's result is dropped
            return _original(self, message)

        cls.send = send


def raise_once() -> None:
    """Not a bug: the test hook of the poison fault "a handler that raises once, then succeeds". An event whose id
    starts with ``chaos-raise-once-`` fails its first handling in this process (through the real failure policy,
    as any unexpected exception would); every other event is handled as shipped."""
    import structlog

    from shared.nameko_ext import EventConsumer

    original_spawn = EventConsumer._spawn
    raised: set[str] = set()
    log = structlog.get_logger("bench.faulty_build")

    def spawn_raising_once(self, message, event, outage_retry):
        if event.id.startswith("chaos-raise-once-") and event.id not in raised:
            raised.add(event.id)
            log.warning("chaos: raising once", event_id=event.id, queue=self.consumer_queue.name)
            error = RuntimeError("chaos: raising once")
            self.handle_event_result(message, event, None, exc_info=(RuntimeError, error, None))
            return
        original_spawn(self, message, event, outage_retry)

    EventConsumer._spawn = spawn_raising_once


FAULTS = {"ack-before-commit": ack_before_commit, "send-twice": send_twice, "raise-once": raise_once}


def main() -> int:
    fault, service = sys.argv[1], sys.argv[2]
    FAULTS[fault]()
    return sanji.cli.main(["serve", service])


if __name__ == "__main__":
    sys.exit(main())
