"""Timers under load (issue 15): the services' clock stepped forward while the load and the faults go on, so
that 容缺 reminders and expiry and 督办's item deadlines fire during the faults, not only after them.

The clock moves in whole days (the time of day, and with it the quiet hours, unchanged), through the file
every service reads (``SANJI_CLOCK_OFFSET_FILE``, shared/clock.py), twice:

1. to the latest due date of the 容缺 materials then owed: each of them is due today, so routing's sweep reminds
   the resident (a reminder goes out from one working day before the due date), and every open single matter
   is past its promised limit (one working day), so escalation fires the 80 % warning and the breaches;
2. a day later, after the broker and database faults and the alarms: every material owed before the first step
   is overdue, and its item (with the items of the same case waiting for it) is terminated.

Each step is followed at once by the next fault (a broker restart; a partition of a routing replica), so the
sweeps fire while it goes on. Submissions go on across both steps (new cases take their dates from the new
clock), and so do the staff: an item a timer closed under them answers 409, which the load counts and leaves.

Expected, checked from outside at the end (bench/chaos_checker.py, ``timers``):

- **容缺 expiry under load**: every material of an "open" bundle (one the staff never touch) due before the
  second step's date terminates its item, once; so does every material still pending on an open item past its
  due date (a sweep that missed one);
- **容缺 reminder under load**: every material of an "open" bundle due on the first step's date, whose item was
  routed a minute or more before the second step, is reminded once (a reminder is due only while the services'
  date is the first step's: the minute, with the database up after its outage, holds a sweep of each routing
  replica, every 30 s);
- **督办 deadline under load**: every item deadline due by the second step's time has left ``pending`` by the end
  (fired, or cancelled because its item closed first); no firing is published twice (one key, one event).

A step is verified when events stamped by the moved clock arrived after it and timers fired while another fault
was in progress (the report names those faults). Its ``recovery_s`` is the time until the last expected firing
arrived; None (the run fails) when one never did.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, timedelta

from services.routing.lifecycle import OPEN_STATUSES
from shared.workdays import SHANGHAI

T = "cn.sanji."
TERMINATED = T + "item.terminated.v1"
REMINDER = T + "case.deferral-reminder.v1"
ROUTED = T + "item.routed.v1"
# Item deadlines escalation fires: the internal loops' time boxes and 督办's warning and breaches.
ITEM_DEADLINE_KINDS = ("loop_community", "loop_street", "deadline_warning", "promised_breach", "legal_breach")
# What each deadline firing publishes, keyed so that one deadline firing twice shows as two events for one key.
TIMER_EVENT_KEYS = {
    T + "item.deadline-warning.v1": lambda d: (d.get("item_id"), d.get("level"), d.get("promised_deadline")),
    T + "item.supervision-escalated.v1": lambda d: (d.get("item_id"), d.get("level"), d.get("stage")),
    T + "escalation.ordered.v1": lambda d: (d.get("item_id"), d.get("from_level")),
}
TIMER_TYPES = {TERMINATED, REMINDER, *TIMER_EVENT_KEYS}
REMINDER_SWEEPS_S = 60      # two sweeps of each routing replica (services/routing/service.py: every 30 s)


def deadline_firings(records) -> dict[str, list]:
    """Each deadline firing's key, by kind, one entry per distinct event id: a key twice is a firing twice."""
    fired: dict[str, list] = {}
    for record in {r.event_id: r for r in records}.values():
        key_of = TIMER_EVENT_KEYS.get(record.type)
        if key_of is not None:
            fired.setdefault(record.type.split(".")[-2], []).append(key_of(record.data or {}))
    return fired


def services_today(offset_days: int) -> date:
    return (datetime.now(SHANGHAI) + timedelta(days=offset_days)).date()


class TimersUnderLoad:
    def __init__(self, system, faults, load):
        self.system, self.faults, self.load = system, faults, load
        self.steps: list[dict] = []             # the two fault entries, completed by outcome()
        self.offset_days = 0
        self.reminder_date = self.expiry_date = None
        self.expiry_step_at: float | None = None

    def _step_to(self, day: date, entry: dict) -> None:
        days = (day - datetime.now(SHANGHAI).date()).days
        self.offset_days = max(days, self.offset_days)      # never back
        self.system.clock_offset_file.write_text(str(self.offset_days * 86400))
        entry.update(services_date=str(day), days_ahead=self.offset_days, recovery_applies=False,
                     stepped_at=time.time())
        self.steps.append(entry)

    def step_to_reminders(self) -> None:
        open_statuses = ", ".join(f"'{status}'" for status in sorted(OPEN_STATUSES))
        latest, owed = self.system.rows(
            "SELECT max(d.due_date), count(*) FROM routing_deferred_materials d"
            f" JOIN routing_items i ON i.id = d.item_id WHERE d.state = 'pending' AND i.status IN ({open_statuses})")[0]
        # with nothing owed yet (no bundle routed), a week on: warnings and breaches still fall due
        self.reminder_date = latest or services_today(self.offset_days) + timedelta(days=7)
        with self.faults.fault(f"clock on to {self.reminder_date} under load: 容缺 reminders and 督办 deadlines due",
                               wait_for_recovery=False) as entry:
            entry["materials_owed"] = owed
            self._step_to(self.reminder_date, entry)

    def step_to_expiry(self) -> None:
        self.expiry_date = self.reminder_date + timedelta(days=1)
        with self.faults.fault(f"clock on to {self.expiry_date} under load: 容缺 materials overdue",
                               wait_for_recovery=False) as entry:
            self._step_to(self.expiry_date, entry)
            self.expiry_step_at = entry["stepped_at"]

    def outcome(self) -> dict:
        """The timers' expected and fired sets for the checker; completes the two steps' fault entries."""
        system = self.system
        everything = system.subscriber.snapshot()
        records = [r for r in everything if r.at >= self.steps[0]["stepped_at"]]
        terminations = {r.event_id: r for r in records if r.type == TERMINATED}
        reminders = {r.event_id: r for r in records if r.type == REMINDER}
        open_bundles = {c.case_id for c in self.load.acknowledged() if c.bundle and c.plan == "open"}
        deferrals = system.rows("SELECT d.case_id, d.item_id, d.material_code, d.due_date, d.state, i.status"
                                " FROM routing_deferred_materials d JOIN routing_items i ON i.id = d.item_id")
        routed_at: dict[str, float] = {}
        for record in everything:
            if record.type == ROUTED:
                item = (record.data or {}).get("item_id")
                routed_at[item] = min(routed_at.get(item, record.at), record.at)
        expiring = {(item,) for case, item, _, due, state, status in deferrals if due < self.expiry_date
                    and (case in open_bundles or (state == "pending" and status in OPEN_STATUSES))}
        remindable = {(case, material, str(due)) for case, item, material, due, _, _ in deferrals
                      if case in open_bundles and due == self.reminder_date
                      and routed_at.get(item, float("inf")) <= self.expiry_step_at - REMINDER_SWEEPS_S}
        stepped_at = self.expiry_step_at + self.offset_days * 86400 - time.time()   # in the services' time, as SQL
        deadlines = system.rows(
            "SELECT id, state FROM escalation_deadlines WHERE subject_type = 'item'"
            f" AND kind IN ({', '.join(repr(kind) for kind in ITEM_DEADLINE_KINDS)})"
            f" AND due_at <= now() + interval '{stepped_at:.0f} seconds'")
        timers = {
            "expected": {"容缺 expiry under load": expiring, "容缺 reminder under load": remindable,
                         "督办 deadline under load left pending": {(row[0],) for row in deadlines}},
            "fired": {"容缺 expiry under load": [(r.data.get("item_id"),) for r in terminations.values()],
                      "容缺 reminder under load": [(r.data.get("case_id"), r.data.get("material_code"),
                                                  r.data.get("due_date")) for r in reminders.values()],
                      "督办 deadline under load left pending": [(row[0],) for row in deadlines
                                                                  if row[1] not in ("pending", "parked")]}}
        for name, keys in deadline_firings(records).items():   # no expected set: each key at most once
            timers["expected"][f"{name} under load (once per key)"] = set()
            timers["fired"][f"{name} under load (once per key)"] = keys
        self._complete_steps(records, expiring, remindable, terminations, reminders)
        return timers

    def _complete_steps(self, records, expiring, remindable, terminations, reminders) -> None:
        """Verified: events stamped by the moved clock arrived, and timers fired during another fault."""
        steps = {id(step) for step in self.steps}
        others = [f for f in self.faults.entries if id(f) not in steps and "started" in f and "ended" in f]
        arrived = {}
        for record in terminations.values():
            arrived.setdefault((record.data.get("item_id"),), record.at)
        for record in reminders.values():
            key = (record.data.get("case_id"), record.data.get("material_code"), record.data.get("due_date"))
            arrived.setdefault(key, record.at)
        for index, (entry, expected) in enumerate(zip(self.steps, (remindable, expiring), strict=True)):
            until = self.steps[index + 1]["stepped_at"] if index + 1 < len(self.steps) else float("inf")
            mine = [r for r in records if entry["stepped_at"] <= r.at < until]
            moved = sum(1 for r in mine if _stamped_ahead(r, entry["days_ahead"]))
            timer_records = [r for r in mine if r.type in TIMER_TYPES]
            during = Counter(f["fault"] for r in timer_records for f in others if f["started"] <= r.at <= f["ended"])
            times = [arrived.get(key) for key in expected]
            settled = (round(max(0.0, max(times) - entry["stepped_at"]), 1)
                       if expected and None not in times else None)
            entry.update(events_stamped_ahead=moved, timers_fired=len(timer_records), expected_firings=len(expected),
                         fired_during_faults=dict(during), recovery_s=settled,
                         verified=moved > 0 and bool(timer_records) and bool(during))


def _stamped_ahead(record, days: int) -> bool:
    try:
        stamped = datetime.fromisoformat(record.event_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return stamped - record.at >= days * 86400 - 3600
