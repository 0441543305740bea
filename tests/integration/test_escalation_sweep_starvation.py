"""A deadline that fails on every attempt neither starves the other due deadlines nor is retried forever
(issue 15).

The sweep takes a batch of due rows, earliest first. A row whose firing raises stays pending; if it came back
first in every batch, more such rows than the batch size would keep every later deadline from ever firing. So a
failure is recorded on the row (an attempt count and a next attempt after a backoff), and after
``SANJI_ESCALATION_FAILED_ATTEMPTS`` failures the row is parked: state ``parked``, out of the sweep, logged.

The failing rows here are real: 容缺 grants whose community code no event accepts, so the reminder raises every
time. They fall due before the good ones, and there are more of them than the batch size.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.escalation import sweeps
from services.escalation.adapters.orm import Deadline, DeferralGrant
from services.escalation.domain import DeadlineKind
from services.escalation.records import EscalationRules
from services.escalation.settings import DEFAULT_CAUSES_FILE, load_causes, settings_from_config
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock, new_id
from shared.config import REPO_ROOT
from shared.db import session_factory, shared_engine
from shared.outbox import UnitOfWork
from shared.workdays import WorkdayCalendar
from tests.support.escalation_harness import query
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

BATCH = 3
BROKEN, GOOD = 5, 4          # more always-failing due rows than the batch size, and good ones behind them
ATTEMPTS = 3                 # failures before a row is parked
START = at(2026, 11, 30, 9, 0)


def rules(**config) -> EscalationRules:
    return EscalationRules(catalogue=load_catalogue(REPO_ROOT / "catalogue" / "nanjing"),
                           calendar=WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml"),
                           settings=settings_from_config(config), causes=load_causes(DEFAULT_CAUSES_FILE))


def add_reminder(sessions, *, community_code: str, due_at) -> str:
    """A pending 容缺 grant and its reminder deadline; returns the deadline's id."""
    grant_id, deadline_id = new_id(), new_id()
    with sessions() as session:
        session.add(DeferralGrant(
            id=grant_id, report_id=new_id(), item_id=new_id(), case_id=new_id(), case_number="NJ-2026-000001",
            community_code=community_code, matter_code="property-management-complaint", department_code="housing",
            material_codes="id-card", due_date=(due_at + timedelta(days=2)).date(), state="pending",
            granted_by="specialist", granted_at=START))
        session.add(Deadline(id=deadline_id, key=f"{DeadlineKind.DEFERRAL_REMINDER}:{grant_id}",
                             kind=str(DeadlineKind.DEFERRAL_REMINDER), subject_type="grant", subject_id=grant_id,
                             due_at=due_at, state="pending", created_at=START))
        session.commit()
    return deadline_id


def states(database_url: str, ids: list[str]) -> dict[str, str]:
    rows = query(database_url, "SELECT id, state FROM escalation_deadlines")
    return {row_id: state for row_id, state in rows if row_id in ids}


def test_deadlines_that_always_fail_do_not_starve_the_others_and_are_parked(database_url):
    sessions = session_factory(shared_engine(database_url))
    broken = [add_reminder(sessions, community_code="unplaceable", due_at=START + timedelta(minutes=i))
              for i in range(BROKEN)]
    good = [add_reminder(sessions, community_code="320113003021", due_at=START + timedelta(hours=1, minutes=i))
            for i in range(GOOD)]
    the_rules = rules(SANJI_ESCALATION_BATCH_SIZE=BATCH, SANJI_ESCALATION_FAILED_ATTEMPTS=ATTEMPTS,
                      SANJI_ESCALATION_RETRY_SECONDS=60)
    now = START + timedelta(hours=2)                 # every deadline is due

    reports = []
    for _ in range(8):                               # sweeps a minute apart, as replicas would run them
        clock = FrozenClock(now)
        reports.append(sweeps.fire_due_deadlines(lambda: UnitOfWork(sessions, source="/sanji/escalation",
                                                                    clock=clock),  # noqa: B023
                                                 rules=the_rules, now=now))
        now += timedelta(minutes=1)

    assert set(states(database_url, good).values()) == {"fired"}, (
        f"good deadlines starved behind always-failing ones: {states(database_url, good)}")
    assert sum(report.fired["deferral_reminder"] for report in reports) == GOOD
    reminded = query(database_url, "SELECT count(*) FROM outbox_messages WHERE event_type = :t",
                     t="cn.sanji.case.deferral-reminder.v1")[0][0]
    assert reminded == GOOD

    # Each always-failing row was tried exactly ATTEMPTS times, then parked and left alone.
    assert set(states(database_url, broken).values()) == {"parked"}
    attempts = query(database_url, "SELECT id, attempts, last_error FROM escalation_deadlines")
    for row_id, tried, last_error in attempts:
        if row_id in broken:
            assert tried == ATTEMPTS and last_error, (row_id, tried, last_error)
    assert sum(report.failed for report in reports) == BROKEN * ATTEMPTS
    assert sum(report.parked for report in reports) == BROKEN
    later = sweeps.fire_due_deadlines(lambda: UnitOfWork(sessions, source="/sanji/escalation",
                                                         clock=FrozenClock(now + timedelta(days=1))),
                                      rules=the_rules, now=now + timedelta(days=1))
    assert (later.failed, dict(later.fired)) == (0, {})
