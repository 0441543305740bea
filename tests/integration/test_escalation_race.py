"""The lost update between a 吹哨 acknowledgement and the sweep, raced on PostgreSQL with two connections.

An acknowledgement reads the call, then locks the item and the call. If the lock returned the object the
session had already loaded, without reading the row again, an acknowledgement that waited on the item's lock
while the sweep escalated the call would still see "called" and publish too: the department would be told
both that it answered in time and that it did not. The row must be read again under the lock, so exactly one
of the two wins and exactly one event about the call reaches the outbox.

The interleaving is forced, not hoped for: the sweep is held just before its commit (with the item and the call
locked), the acknowledgement is let go until PostgreSQL shows it waiting on that lock, then the sweep commits.
"""

from __future__ import annotations

import json

import eventlet
import pytest
from eventlet.event import Event
from sqlalchemy import create_engine, select

from services.escalation import sweeps, whistle
from services.escalation.adapters.orm import WhistleCall
from services.escalation.domain import ReportRefused
from services.escalation.records import EscalationRules
from services.escalation.schemas import Acknowledgement
from services.escalation.settings import causes_file, load_causes, settings_from_config
from shared.auth import TokenRegistry
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.db import normalise_url, session_factory, shared_engine
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar
from tests.support.escalation_harness import query, start_stack, wait_until
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

COMPLAINT = "property-management-complaint"
# The called department's own system, for a desk at 迈皋桥街道.
ACKNOWLEDGER = {"housing": "Bearer dev-dept-maigaoqiao-housing", "civil": "Bearer dev-dept-qixia-civil"}


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    if not database_url.startswith("postgresql"):
        pytest.skip("the race needs row locks: PostgreSQL (SQLite serialises every writer)")
    return start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                       database_url, clock)


class HeldBeforeCommit(UnitOfWork):
    """A unit of work that, at its first commit, says which call it changed and waits to be let go."""

    def __init__(self, *args, holding: Event, go: Event, **kwargs):
        super().__init__(*args, **kwargs)
        self.holding, self.go = holding, go

    def commit(self) -> None:
        changed = [row.call_id for row in self.session.dirty if isinstance(row, WhistleCall)]
        if changed and not self.holding.ready():
            self.session.flush()              # the row is changed and locked, not yet committed
            self.holding.send(changed[0])
            self.go.wait()
        super().commit()


def rules_of(config: dict) -> EscalationRules:
    return EscalationRules(catalogue=load_catalogue(config["SANJI_CATALOGUE_DIR"]),
                           calendar=WorkdayCalendar.from_file(config["SANJI_CALENDAR_OVERRIDES"]),
                           settings=settings_from_config(config), causes=load_causes(causes_file(config)))


ACKNOWLEDGER_CONNECTION = "sanji-race-acknowledgement"


def acknowledgement_waits_on_a_lock(database_url: str) -> bool:
    return query(database_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND application_name = :name AND wait_event_type = 'Lock'",
                 name=ACKNOWLEDGER_CONNECTION)[0][0] == 1


def test_an_acknowledgement_racing_the_sweep_never_publishes_beside_the_escalation(stack, clock, database_url,
                                                                                   make_service_config):
    item_id = stack.submit(COMPLAINT)[COMPLAINT]
    clock._at = at(2026, 12, 3, 17, 31)
    stack.sweep()
    stack.wait_item(item_id, lambda v: v["level"] == "street" and len(v["calls"]) == 2, "calls at the street")
    sessions = session_factory(shared_engine(database_url))
    with sessions() as session:
        (due_at,) = set(session.scalars(select(WhistleCall.ack_due_at).where(WhistleCall.item_id == item_id)))
    the_moment = FrozenClock(due_at)   # the last instant an acknowledgement counts, and the sweep's first
    rules = rules_of(make_service_config("escalation"))
    source = "/sanji/escalation"
    holding, go = Event(), Event()

    sweep = eventlet.spawn(sweeps.fire_due_deadlines,
                           lambda: HeldBeforeCommit(sessions, source=source, clock=the_moment, holding=holding, go=go),
                           rules=rules, now=due_at)
    call_id = holding.wait()           # the sweep has escalated this call, under its locks, uncommitted
    department = query(database_url, "SELECT department_code FROM escalation_whistle_calls WHERE call_id = :c",
                       c=call_id)[0][0]
    principal = TokenRegistry.from_file(REPO_ROOT / "config" / "dev-tokens.yaml").authenticate(
        ACKNOWLEDGER[department])

    # The acknowledgement's own connection, named so the test sees it (and only it) wait on the sweep's lock.
    acknowledger_engine = create_engine(normalise_url(database_url),
                                        connect_args={"application_name": ACKNOWLEDGER_CONNECTION})
    acknowledger = session_factory(acknowledger_engine)

    def acknowledge():
        try:
            return whistle.acknowledge(call_id, principal, Acknowledgement(note="到场"), rules=rules, now=due_at,
                                       unit_of_work=UnitOfWork(acknowledger, source=source, clock=the_moment))
        except ReportRefused as refused:
            return refused

    acknowledgement = eventlet.spawn(acknowledge)
    wait_until(lambda: acknowledgement_waits_on_a_lock(database_url),
               what="the acknowledgement waits on the sweep's lock")
    go.send()
    report = sweep.wait()
    outcome = acknowledgement.wait()

    assert report.fired["whistle_ack"] >= 1
    assert isinstance(outcome, ReportRefused) and outcome.reason == "call_escalated", outcome
    about_the_call = [json.loads(body)["type"] for (body,) in query(
        database_url, "SELECT body FROM outbox_messages WHERE event_type LIKE 'cn.sanji.whistle.%' "
                      "AND body LIKE :c ORDER BY seq", c=f"%{call_id}%")]
    assert about_the_call == ["cn.sanji.whistle.called.v1", "cn.sanji.whistle.escalated.v1"]
    state = query(database_url, "SELECT state, acknowledged_at FROM escalation_whistle_calls WHERE call_id = :c",
                  c=call_id)[0]
    assert (state[0], state[1]) == ("escalated", None)
    acknowledger_engine.dispose()
