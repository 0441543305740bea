"""Fixtures the notification integration tests share: stand-in SMS gateway and webhook receiver, a real
SMTP server, a frozen clock, and the check that no contact data reached a log line.

A test module imports the ones it needs; it sets ``DAY`` (the frozen clock's time) and ``SECRET``
(the department webhook's ``whsec_`` secret, which the receiver verifies with) at module level.
"""

from __future__ import annotations

import logging

import pytest

from shared.clock import FrozenClock
from shared.logging import forget_personal_values
from tests.support.notification_harness import assert_no_contact_data_logged
from tests.support.notification_receiver import WebhookReceiver
from tests.support.notification_servers import HttpStandIn, SmtpServer


@pytest.fixture(autouse=True)
def no_contact_data_in_logs(caplog):
    # The redactor remembers values for the whole process: values an earlier test taught it (a fake's reply, a
    # test name) must not mask this test's lines, or "the redactor had nothing to do" says nothing of this test.
    forget_personal_values()
    caplog.set_level(logging.DEBUG)
    yield
    assert_no_contact_data_logged(caplog.get_records("setup") + caplog.get_records("call"))


@pytest.fixture
def http():
    server = HttpStandIn()
    yield server
    server.stop()


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "mail")
    yield server
    server.stop()


@pytest.fixture
def clock(request):
    return FrozenClock(request.module.DAY)


@pytest.fixture
def receiver(request, http):
    receiver = WebhookReceiver(request.module.SECRET)
    http.answer("/hooks/qixia-police", lambda req: receiver.receive(req.headers, req.body))
    return receiver
