"""What the event consumer counts as an outage (retried in place, the delivery budget untouched) (issue 15).

A pool that hands out no connection in time (``sqlalchemy.exc.TimeoutError``, "QueuePool limit ... reached,
connection timed out") is the database unreachable for this process, not a bad message: counted as
"anything else", a good message would use up its delivery budget and be dead-lettered during the outage.
"""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from shared.nameko_ext import is_outage


def test_a_database_pool_timeout_is_an_outage() -> None:
    assert is_outage(sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached, connection timed out, "
                                         "timeout 30.00"))


@pytest.mark.parametrize("error", [
    sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
    ConnectionResetError(),
    TimeoutError(),
])
def test_an_unreachable_database_or_broker_is_an_outage(error) -> None:
    assert is_outage(error)


@pytest.mark.parametrize("error", [
    sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
    sa_exc.InvalidRequestError("a bug"),
    ValueError("a bug"),
])
def test_a_bug_or_a_conflict_is_not_an_outage(error) -> None:
    assert not is_outage(error)
