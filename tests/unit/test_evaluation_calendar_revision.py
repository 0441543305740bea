"""The evaluation service's pure rules for provisional due times: a rectification's due and escalation times and a
督办单's due time counted across a year without its holiday arrangement, counted again once it is loaded; and the
rates read model taking routing's revised promised deadline, never undone by an older event."""

from __future__ import annotations

import os
import warnings
from datetime import UTC, date, datetime, timedelta

import pytest

from services.evaluation import domain
from services.evaluation.adapters.orm import EvaluationItem
from services.evaluation.facts import EvaluationRules, apply
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.events import ItemDeadlineRevisedV1, ItemResolvedV1, ItemRoutedV1, ItemSupplementSuppliedV1
from shared.statutory_holidays import derived_days_off
from shared.workdays import SHANGHAI, WorkdayCalendar

OPENED_AT = datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)   # a Monday; 1 January 2027 is a statutory holiday
WORKED_SATURDAY = date(2027, 1, 2)                          # a 调休 the law cannot derive


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def override_file(tmp_path):
    path = tmp_path / "calendar-overrides.yaml"
    path.write_text("# 2027 not listed yet\n", encoding="utf-8")
    return path


def load_2027(path, workdays=(WORKED_SATURDAY,)) -> None:
    holidays = ", ".join(day.isoformat() for day in derived_days_off(2027))
    worked = ", ".join(day.isoformat() for day in workdays)
    path.write_text(f"years:\n  2027:\n    holidays: [{holidays}]\n    workdays: [{worked}]\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def revise(calendar, due: domain.RectificationDue, days=5, after=2) -> domain.RectificationRevision:
    return domain.revise_rectification(
        calendar, opened_at=OPENED_AT, deadline_days=days, escalate_after_days=after, deadline=due.deadline,
        deadline_provisional=due.deadline_provisional, escalate_at=due.escalate_at,
        escalate_at_provisional=due.escalate_at_provisional)


def test_a_rectification_due_in_an_unloaded_year_is_provisional_and_a_worked_saturday_brings_it_forward(
        override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    due = domain.rectification_due(calendar, OPENED_AT, 5, 2)
    # 29, 30, 31 December, (1 January off), 4 and 5 January; then 6 and 7 January.
    assert due == domain.RectificationDue(at(2027, 1, 5, 17, 30), True, at(2027, 1, 7, 17, 30), True)
    assert not revise(calendar, due).needed  # nothing loaded yet: nothing to store

    load_2027(override_file)
    revision = revise(calendar, due)
    assert revision.needed and revision.changed and revision.deadline_changed
    assert (revision.deadline.after, revision.deadline.provisional) == (at(2027, 1, 4, 17, 30), False)
    assert (revision.escalate_at.after, revision.escalate_at.provisional) == (at(2027, 1, 6, 17, 30), False)

    # Stored as revised, a second revision under the same calendar changes nothing.
    stored = domain.RectificationDue(revision.deadline.after, False, revision.escalate_at.after, False)
    assert not revise(calendar, stored).needed


def test_an_arrangement_without_a_make_up_day_clears_the_flags_and_keeps_the_times(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    due = domain.rectification_due(calendar, OPENED_AT, 5, 2)
    load_2027(override_file, workdays=())
    revision = revise(calendar, due)
    assert revision.needed and not revision.changed
    assert revision.deadline.after == due.deadline and revision.escalate_at.after == due.escalate_at
    assert not revision.deadline.provisional and not revision.escalate_at.provisional


def test_only_the_escalation_time_in_the_unloaded_year_is_revised_from_the_settled_due_time(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    opened = at(2026, 12, 21, 10, 0)
    due = domain.rectification_due(calendar, opened, 5, 5)
    assert (due.deadline, due.deadline_provisional) == (at(2026, 12, 28, 17, 30), False)
    assert (due.escalate_at, due.escalate_at_provisional) == (at(2027, 1, 5, 17, 30), True)
    load_2027(override_file)
    revision = domain.revise_rectification(
        calendar, opened_at=opened, deadline_days=5, escalate_after_days=5, deadline=due.deadline,
        deadline_provisional=False, escalate_at=due.escalate_at, escalate_at_provisional=True)
    assert not revision.deadline_changed and revision.deadline.after == due.deadline
    assert (revision.escalate_at.after, revision.escalate_at.provisional) == (at(2027, 1, 4, 17, 30), False)


def test_a_settled_rectification_is_never_recomputed(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    settled = domain.RectificationDue(at(2026, 12, 8, 17, 30), False, at(2026, 12, 10, 17, 30), False)
    load_2027(override_file)
    assert not revise(calendar, settled, days=3).needed  # even with another count, a settled time stays


def test_an_orders_due_time_carries_its_flag(override_file):
    calendar = WorkdayCalendar.from_file(override_file)
    assert domain.order_due(calendar, OPENED_AT, 5) == (at(2027, 1, 5, 17, 30), True)
    assert domain.order_due(calendar, at(2026, 12, 1, 10, 0), 5) == (at(2026, 12, 8, 17, 30), False)


# ── the rates read model ───────────────────────────────────────────────────────────────────────────────

COMMON = dict(item_id="i", case_id="c", case_number="n", matter_code="residence-permit", department_code="police",
              level="street", unit_code="320113003000", district_code="320113000000", community_code="320113003021")
ROUTED_AT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
PROVISIONAL = at(2027, 1, 11, 17, 30)
REVISED = at(2027, 1, 9, 17, 30)


@pytest.fixture(scope="module")
def rules():
    return EvaluationRules(catalogue=load_catalogue(REPO_ROOT / "catalogue" / "nanjing"), calendar=WorkdayCalendar(),
                           settings=domain.EvaluationSettings(), reasons=None, link_key="k", link_days=30,
                           fingerprint_key="p")


def routed() -> ItemRoutedV1:
    return ItemRoutedV1(**COMMON, status="queued", occurred_at=ROUTED_AT, promised_deadline=PROVISIONAL,
                        legal_deadline=PROVISIONAL + timedelta(days=3), deadline_provisional=True,
                        catalogue_version="v")


def revision(occurred_at=datetime(2026, 12, 20, 1, 0, tzinfo=UTC), previous=PROVISIONAL, to=REVISED,
             status="queued") -> ItemDeadlineRevisedV1:
    return ItemDeadlineRevisedV1(**COMMON, status=status, occurred_at=occurred_at,
                                 legal_deadline=to + timedelta(days=3), promised_deadline=to,
                                 deadline_provisional=False, previous_legal_deadline=previous + timedelta(days=3),
                                 previous_promised_deadline=previous, revised_at=occurred_at)


def resolved() -> ItemResolvedV1:
    return ItemResolvedV1(**COMMON, status="resolved", occurred_at=at(2027, 1, 10, 10, 0), actor="s", result="ok",
                          delivery={"method": "pickup", "place": "w"})


def fold(rules, events) -> EvaluationItem:
    item = EvaluationItem(item_id="i", status=events[0].status, as_of=events[0].occurred_at, return_count=0,
                          flag_return_reset=0, flag_late_suspension=0, flag_reopened=0,
                          **{k: v for k, v in COMMON.items() if k not in ("item_id", "case_number")})
    for event in events:
        apply(item, event, rules)
    return item


def test_a_revised_promised_deadline_decides_whether_the_item_was_concluded_in_time(rules):
    assert fold(rules, [routed(), resolved()]).concluded_in_time == 1   # by the provisional 11 January
    item = fold(rules, [routed(), revision(), resolved()])
    assert item.promised_deadline == REVISED and item.concluded_in_time == 0  # late by the revised 9 January
    # A revision that arrives after the resolution recomputes it too; its status does not reopen the item.
    late = fold(rules, [routed(), resolved(), revision(status="resolved")])
    assert (late.promised_deadline, late.concluded_in_time, late.status, late.flag_reopened) == (
        REVISED, 0, "resolved", 0)


def test_no_older_event_brings_the_provisional_deadline_back(rules):
    newer = revision(occurred_at=datetime(2026, 12, 22, 1, 0, tzinfo=UTC), previous=REVISED,
                     to=at(2027, 1, 8, 17, 30))
    for events in ([routed(), revision(), routed()],               # the routing event replayed
                   [routed(), revision(), newer, revision()],       # an older revision after a newer one
                   [revision(), routed()],                          # the revision before the routing it revises
                   [routed(), newer, revision()]):
        expected = newer.promised_deadline if newer in events else REVISED
        assert fold(rules, events).promised_deadline == expected, events
    # A later change built on the revised deadline (a supplement's paused time) is not undone by the revision.
    supplied = ItemSupplementSuppliedV1(**COMMON, status="accepted", actor="s", material_codes=("photo",),
                                        occurred_at=datetime(2026, 12, 23, 1, 0, tzinfo=UTC),
                                        promised_deadline=at(2027, 1, 12, 17, 30))
    assert fold(rules, [routed(), revision(), supplied, revision()]).promised_deadline == at(2027, 1, 12, 17, 30)
