"""``kill -USR1`` of a ``sanji serve`` writes where each green thread waits (sanji/cli.py)."""

import io

import eventlet

from sanji.cli import dump_green_stacks


def _waiting_for_a_lock_that_never_comes(event):
    event.wait()


def test_the_dump_names_the_function_a_green_thread_is_blocked_in():
    event = eventlet.event.Event()
    blocked = eventlet.spawn(_waiting_for_a_lock_that_never_comes, event)
    eventlet.sleep(0)  # let it start and block
    out = io.StringIO()
    try:
        assert dump_green_stacks(out) >= 1
        assert "_waiting_for_a_lock_that_never_comes" in out.getvalue()
    finally:
        event.send(None)
        blocked.wait()
