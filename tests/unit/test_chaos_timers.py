"""The fault suite's timers under load (bench/chaos_timers.py): which firings the steps of the clock make expected,
and when a step counts as verified. The databases and the subscriber are fakes; the fault suite runs it for real.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from bench.chaos_checker import check
from bench.chaos_load import CaseTruth
from bench.chaos_timers import TimersUnderLoad
from bench.fault_suite import Faults
from bench.recorders import EventRecord

T = "cn.sanji."
DUE = date(2026, 12, 15)


class FakeSubscriber:
    def __init__(self):
        self.records: list[EventRecord] = []

    def snapshot(self):
        return list(self.records)


class FakeSystem:
    def __init__(self, tmp_path, deferrals, deadlines=()):
        self.clock_offset_file = tmp_path / "offset-seconds"
        self.clock_offset_file.write_text("0")
        self.subscriber = FakeSubscriber()
        self.deferrals, self.deadlines = deferrals, list(deadlines)

    def rows(self, sql: str) -> list:
        if sql.startswith("SELECT max(d.due_date)"):
            return [(DUE, len(self.deferrals))]
        if sql.startswith("SELECT d.case_id"):
            return self.deferrals
        if sql.startswith("SELECT id, state FROM escalation_deadlines"):
            return self.deadlines
        raise AssertionError(f"unexpected query {sql}")


class FakeLoad:
    def __init__(self, cases):
        self.cases = cases

    def acknowledged(self):
        return self.cases


def an_open_bundle(number: int) -> CaseTruth:
    return CaseTruth(f"sub-{number}", f"139{number:08d}", f"r{number}@resident.example", bundle=True, matters=4,
                     status=201, case_id=f"case-{number}", plan="open")


def event(at: float, event_id: str, event_type: str, data: dict, days_ahead: int) -> EventRecord:
    stamped = datetime.fromtimestamp(at + days_ahead * 86400, UTC).isoformat()
    return EventRecord(at, event_id, T + event_type, data, event_time=stamped)


def run_steps(tmp_path, deferrals, deadlines=()):
    """Both steps of the clock, two minutes apart, with a broker restart of 10 s after the first."""
    system = FakeSystem(tmp_path, deferrals, deadlines)
    faults = Faults(system)
    timers = TimersUnderLoad(system, faults, FakeLoad([an_open_bundle(1), an_open_bundle(2)]))
    timers.step_to_reminders()
    first = timers.steps[0]["stepped_at"]
    faults.entries.append({"fault": "broker restart", "started": first + 1, "ended": first + 11, "verified": True})
    timers.step_to_expiry()
    timers.steps[1]["stepped_at"] = timers.expiry_step_at = first + 120   # two minutes of faults in between
    return system, faults, timers, first


def test_a_step_moves_every_services_clock_in_whole_days_and_never_back(tmp_path):
    system, _, timers, _ = run_steps(tmp_path, [])
    offset = float(system.clock_offset_file.read_text())
    assert offset == timers.offset_days * 86400 and offset % 86400 == 0
    assert timers.expiry_date == date(2026, 12, 16)


def test_reminders_and_expiry_that_fired_during_a_fault_are_verified_and_clean(tmp_path):
    deferrals = [("case-1", "item-1", "landlord-id-copy", DUE, "expired", "terminated")]
    system, faults, timers, first = run_steps(tmp_path, deferrals)
    days = timers.offset_days
    system.subscriber.records = [
        event(first - 200, "e-routed", "item.routed.v1", {"case_id": "case-1", "item_id": "item-1"}, 0),
        event(first + 5, "e-remind", "case.deferral-reminder.v1",
              {"case_id": "case-1", "material_code": "landlord-id-copy", "due_date": str(DUE)}, days),
        event(timers.expiry_step_at + 3, "e-end", "item.terminated.v1",
              {"case_id": "case-1", "item_id": "item-1", "reason_code": "deferral_expired"}, days)]
    faults.entries.append({"fault": "partition", "started": timers.expiry_step_at + 1,
                           "ended": timers.expiry_step_at + 21, "verified": True})
    summary = check([], [], [], None, timers.outcome()).summary()
    assert (summary["lost"], summary["duplicated"]) == (0, 0)
    assert summary["timers"]["容缺 reminder under load"]["expected"] == 1
    assert summary["timers"]["容缺 expiry under load"]["expected"] == 1
    reminders, expiry = timers.steps
    assert reminders["verified"] and reminders["fired_during_faults"] == {"broker restart": 1}
    assert expiry["verified"] and expiry["fired_during_faults"] == {"partition": 1}
    assert reminders["recovery_s"] == 5.0 and expiry["recovery_s"] == 3.0


def test_an_open_bundle_never_terminated_is_a_lost_timer_and_its_step_never_settles(tmp_path):
    deferrals = [("case-1", "item-1", "landlord-id-copy", DUE, "pending", "queued")]
    system, _, timers, first = run_steps(tmp_path, deferrals)
    system.subscriber.records = [
        event(first - 200, "e-routed", "item.routed.v1", {"case_id": "case-1", "item_id": "item-1"}, 0),
        event(first + 5, "e-remind", "case.deferral-reminder.v1",
              {"case_id": "case-1", "material_code": "landlord-id-copy", "due_date": str(DUE)}, timers.offset_days)]
    summary = check([], [], [], None, timers.outcome()).summary()
    assert summary["lost_by_kind"] == {"timer 容缺 expiry under load": 1}
    assert timers.steps[1]["recovery_s"] is None and not timers.steps[1]["verified"]


def test_a_material_left_pending_past_its_date_on_a_case_the_staff_work_is_lost_too(tmp_path):
    """Not an open bundle, but still owed on an open item after its due date: a sweep missed it."""
    deferrals = [("case-9", "item-9", "landlord-id-copy", DUE, "pending", "accepted")]
    _, _, timers, _ = run_steps(tmp_path, deferrals)
    summary = check([], [], [], None, timers.outcome()).summary()
    assert summary["lost_by_kind"] == {"timer 容缺 expiry under load": 1}


def test_no_reminder_is_expected_of_an_item_routed_less_than_a_minute_before_the_second_step(tmp_path):
    deferrals = [("case-2", "item-2", "landlord-id-copy", DUE, "expired", "terminated")]
    system, _, timers, _ = run_steps(tmp_path, deferrals)
    system.subscriber.records = [
        event(timers.expiry_step_at - 30, "e-routed", "item.routed.v1", {"case_id": "case-2", "item_id": "item-2"}, 0),
        event(timers.expiry_step_at + 3, "e-end", "item.terminated.v1",
              {"case_id": "case-2", "item_id": "item-2"}, timers.offset_days)]
    summary = check([], [], [], None, timers.outcome()).summary()
    assert summary["timers"]["容缺 reminder under load"]["expected"] == 0
    assert summary["lost"] == 0


def test_a_due_deadline_left_pending_and_a_warning_published_twice_are_counted(tmp_path):
    system, _, timers, first = run_steps(tmp_path, [], deadlines=[("d-1", "fired"), ("d-2", "pending")])
    warning = {"item_id": "item-5", "level": "community", "promised_deadline": "2026-12-09T09:00:00+08:00"}
    system.subscriber.records = [event(first + 3, "e-w1", "item.deadline-warning.v1", warning, timers.offset_days),
                                 event(first + 4, "e-w2", "item.deadline-warning.v1", warning, timers.offset_days)]
    summary = check([], [], [], None, timers.outcome()).summary()
    assert summary["lost_by_kind"] == {"timer 督办 deadline under load left pending": 1}
    assert summary["duplicated_by_kind"] == {"timer deadline-warning under load (once per key)": 1}
