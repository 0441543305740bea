"""A container that dies on its own makes its process exit (``sanji serve``), a stopped one does not."""

from __future__ import annotations

import sys

import eventlet

from shared.broker_faults import SupervisedContainer, exit_when_dying


class Idle:
    name = "idle"


def test_a_container_that_kills_itself_is_reported_with_its_error():
    container = SupervisedContainer(Idle, {})
    container.start()
    deaths = []
    watchers = exit_when_dying([container], lambda dead, error: deaths.append((dead, error)), grace_seconds=5)

    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        container.kill(sys.exc_info())  # what nameko does when an extension's thread dies
    watchers[0].wait()

    assert len(deaths) == 1
    assert deaths[0][0] is container and isinstance(deaths[0][1], ConnectionResetError)


def test_a_graceful_stop_is_not_a_death():
    container = SupervisedContainer(Idle, {})
    container.start()
    deaths = []
    watchers = exit_when_dying([container], lambda dead, error: deaths.append(error), grace_seconds=5)

    container.stop()
    eventlet.sleep(0.1)

    assert deaths == [] and not watchers[0].dead
    watchers[0].kill()
