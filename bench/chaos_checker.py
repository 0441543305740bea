"""The chaos checker: what the accepted cases must have produced, against what arrived outside the system.

Pure: it takes the load's ground truth (``CaseTruth``: each acknowledged submission, each staff action
answered 200), what the department subscriber recorded from the bus, what the fake SMS gateway, SMTP server
and webhook receiver recorded, and the read model (routing's item statuses and intake's completion, as the
services' APIs and tables hold them), and counts.

- **lost**: expected and absent. Events: ``case.submitted`` per acknowledged case; an ``item.routed`` per
  matter and per return (each return routes the item again); the event of every staff action answered 200
  (``item.claimed``, ``item.accepted``, ``item.supplement-requested``, ``item.returned``, ``item.resolved``);
  ``case.completed`` when every item was resolved. Messages, per case (the phone number and e-mail address
  are the case's own): by SMS template, ``receipt`` once, ``item_routed`` per routing, ``supplement_requested``
  per request, ``item_resolved`` per resolution, ``case_completed`` and ``rating_invitation`` on completion;
  as many e-mails; a signed webhook ``department_new_item`` per ``item.routed`` event into a queue.
- **duplicated**: arrived twice for one cause. A second event id for one cause (one case's submission, one
  item's routing to one unit, one item's action); one attempt at a delivery that arrived twice (a message sent
  twice; a later attempt is counted apart as ``resent``, the at-least-once case); more distinct messages of
  one kind for one case than causes (a message planned twice).
- **read model**: an item resolved (or terminated) in routing without its ``item.resolved`` (``item.terminated``)
  on the bus, or the other way round; a case completed at intake without ``case.completed``, or the other way
  round.
- **timers**: each expected firing (``item.terminated`` for an expired 容缺 material, a 容缺 reminder, the 80 %
  warning and the breaches of 督办, an unacknowledged 吹哨) exactly once.
- **what the timers tell the resident**: a timer's event is on the bus, not in the load's ground truth, so its
  messages are expected from the event itself: per terminated item an ``item_terminated`` SMS and e-mail, per
  容缺 reminder a ``deferral_reminder``, per routing by escalation an ``item_routed``, and, for a case that a
  termination closed (``case.completed`` on the bus with an item terminated), ``case_completed`` and
  ``rating_invitation``. A timer that fired twice is a second event id for one cause (duplicated), and its
  messages then exceed the causes (duplicated again).
- **吹哨**, for the calls the load made: ``whistle.called`` once per call; an acknowledged call's
  ``whistle.acknowledged`` once and no ``whistle.escalated``; a call left unanswered escalated exactly once
  when its limit passed (a timer firing while the faults go on); a call whose acknowledgement's answer was lost
  one of the two, once.

A redelivery of one event id to the subscriber is not a duplicate effect (consumers dedupe by id; the
subscriber counts them apart as ``event_redeliveries``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

T = "cn.sanji."
ACTION_EVENTS = {"claim": T + "item.claimed.v1", "accept": T + "item.accepted.v1",
                 "request-supplement": T + "item.supplement-requested.v1",
                 "record-supplement": T + "item.supplement-supplied.v1", "return": T + "item.returned.v1",
                 "resolve": T + "item.resolved.v1"}
WHISTLE_EVENTS = {"called": T + "whistle.called.v1", "acknowledged": T + "whistle.acknowledged.v1",
                  "escalated": T + "whistle.escalated.v1"}
SMS_KINDS = {"receipt": "SMS_DEV_RECEIPT", "item_routed": "SMS_DEV_ITEM_ROUTED",
             "supplement_requested": "SMS_DEV_SUPPLEMENT_REQUESTED", "item_resolved": "SMS_DEV_ITEM_RESOLVED",
             "case_completed": "SMS_DEV_CASE_COMPLETED", "rating_invitation": "SMS_DEV_RATING_INVITATION",
             "item_terminated": "SMS_DEV_ITEM_TERMINATED", "deferral_reminder": "SMS_DEV_DEFERRAL_REMINDER"}
TERMINATED = T + "item.terminated.v1"
DEFERRAL_REMINDER = T + "case.deferral-reminder.v1"


@dataclass
class Verdict:
    lost: Counter = field(default_factory=Counter)
    duplicated: Counter = field(default_factory=Counter)
    read_model_disagreements: int = 0
    timers: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)
    event_redeliveries: int = 0
    cases_checked: int = 0
    resent: Counter = field(default_factory=Counter)   # later attempts at a delivery that had arrived, by channel

    def add_lost(self, what: str, n: int, example) -> None:
        if n > 0:
            self.lost[what] += n
            if len(self.examples) < 20:
                self.examples.append({"lost": what, "n": n, **example})

    def add_duplicated(self, what: str, n: int, example) -> None:
        if n > 0:
            self.duplicated[what] += n
            if len(self.examples) < 20:
                self.examples.append({"duplicated": what, "n": n, **example})

    def absorb(self, other: Verdict) -> None:
        """Add another check's findings (the clock jump's, checked on its own events) to this one."""
        self.lost.update(other.lost)
        self.duplicated.update(other.duplicated)
        self.read_model_disagreements += other.read_model_disagreements
        self.timers.update(other.timers)
        self.event_redeliveries += other.event_redeliveries
        self.resent.update(other.resent)
        self.examples.extend(other.examples[:max(0, 20 - len(self.examples))])

    def summary(self) -> dict:
        return {"lost": sum(self.lost.values()), "duplicated": sum(self.duplicated.values()),
                "lost_by_kind": dict(self.lost), "duplicated_by_kind": dict(self.duplicated),
                "read_model_disagreements": self.read_model_disagreements, "timers": self.timers,
                "event_redeliveries": self.event_redeliveries, "cases_checked": self.cases_checked,
                "resent_by_channel": dict(self.resent),
                "examples": self.examples}


def _event_cause(event) -> tuple | None:
    data = event.data
    if event.type == T + "case.submitted.v1":
        return ("case.submitted", data.get("case_id"))
    if event.type == T + "case.completed.v1":
        return ("case.completed", data.get("case_id"))
    if event.type == T + "item.routed.v1":
        return ("item.routed", data.get("item_id"), data.get("unit_code"), data.get("route_reason"))
    if event.type == T + "item.supplement-supplied.v1":
        return (event.type, data.get("item_id"), tuple(sorted(data.get("material_codes") or ())))
    if event.type in WHISTLE_EVENTS.values():
        return (event.type, data.get("call_id"))
    if event.type == TERMINATED:       # an item ends once, whatever ended it
        return (event.type, data.get("item_id"))
    if event.type == DEFERRAL_REMINDER:
        return (event.type, data.get("case_id"), data.get("material_code"), data.get("due_date"))
    if event.type in ACTION_EVENTS.values():
        return (event.type, data.get("item_id"), data.get("unit_code"))
    return None


def count_sent_twice(verdict: Verdict, arrivals: Iterable, already: Iterable = ()) -> None:
    """One delivery arriving twice. The same attempt twice is a message sent twice: duplicated. A later attempt
    at a delivery that had arrived is the at-least-once case docs/notifications.md names (the sender died, or
    lost its database, between the provider's acceptance and its record; the claim lapsed and the delivery
    went again): counted apart as ``resent``, by channel, not as a duplicate. ``already``: arrivals an earlier
    check counted, so that only what ``arrivals`` adds is counted here."""
    already = list(already)
    before = Counter((a.channel, a.delivery_id, a.attempt) for a in already)
    attempts_before: dict[tuple, set] = defaultdict(set)
    for a in already:
        attempts_before[(a.channel, a.delivery_id)].add(a.attempt)
    now = Counter((a.channel, a.delivery_id, a.attempt) for a in arrivals)
    for (channel, delivery_id, attempt), n in now.items():
        verdict.add_duplicated(f"{channel} sent twice", n + min(before[(channel, delivery_id, attempt)], 1) - 1,
                               {"delivery_id": delivery_id, "attempt": attempt})
    attempts: dict[tuple, set] = defaultdict(set)
    for channel, delivery_id, attempt in now:
        attempts[(channel, delivery_id)].add(attempt)
    for key, seen in attempts.items():
        earlier = attempts_before.get(key, set())
        extra = len(seen | earlier) - max(len(earlier), 1)
        if extra > 0:
            verdict.resent[key[0]] += extra


def check_whistles(verdict: Verdict, cases: list, ids_per_cause: dict[tuple, set]) -> None:
    """Each call the load made: called once; acknowledged, or escalated by its limit, as the load left it."""
    def seen(verb: str, call_id: str) -> bool:
        return (WHISTLE_EVENTS[verb], call_id) in ids_per_cause

    expected_escalations = fired = missing = 0
    for case in cases:
        for call_id, state in case.calls.items():
            example = {"case": case.case_id, "call": call_id, "state": state}
            verdict.add_lost("event whistle.called", int(not seen("called", call_id)), example)
            acknowledged, escalated = seen("acknowledged", call_id), seen("escalated", call_id)
            if state == "acknowledged":
                verdict.add_lost("event whistle.acknowledged", int(not acknowledged), example)
                verdict.add_duplicated("whistle escalated though acknowledged", int(escalated), example)
            elif state == "unanswered":
                expected_escalations += 1
                fired += int(escalated)
                missing += int(not escalated)
                verdict.add_lost("timer 吹哨 limit escalated the call", int(not escalated), example)
                verdict.add_duplicated("whistle acknowledged though unanswered", int(acknowledged), example)
            else:   # the acknowledgement's answer was lost: either outcome, but exactly one
                verdict.add_lost("whistle neither acknowledged nor escalated", int(not (acknowledged or escalated)),
                                 example)
                verdict.add_duplicated("whistle both acknowledged and escalated", int(acknowledged and escalated),
                                       example)
    if expected_escalations:   # a firing twice shows as two event ids for one call (duplicated by cause)
        verdict.timers["吹哨 limit escalated the call"] = {"expected": expected_escalations, "fired": fired,
                                                           "missing": missing}


def check(cases: Iterable, events: Iterable, arrivals: Iterable, read_model: dict | None = None,
          timers: dict | None = None) -> Verdict:
    """``cases``: CaseTruth of the acknowledged submissions; ``events``: the subscriber's records;
    ``arrivals``: the recorders' Arrivals; ``read_model``: {"resolved_items": set, "completed_cases": set};
    ``timers``: {"expected": {name: set of causes}, "fired": {name: list of causes}}."""
    verdict = Verdict()
    cases = [case for case in cases if case.acknowledged]
    verdict.cases_checked = len(cases)

    # ── events: one per cause, by event id ──
    by_id: dict[str, object] = {}
    deliveries = Counter()
    for event in events:
        deliveries[event.event_id] += 1
        by_id.setdefault(event.event_id, event)
    verdict.event_redeliveries = sum(n - 1 for n in deliveries.values())
    ids_per_cause: dict[tuple, set] = defaultdict(set)
    for event_id, event in by_id.items():
        cause = _event_cause(event)
        if cause is not None:
            ids_per_cause[cause].add(event_id)
    for cause, ids in ids_per_cause.items():
        verdict.add_duplicated(f"event {cause[0]}", len(ids) - 1, {"cause": list(cause)})
    routed_events_queued: dict[str, str] = {}     # event id -> case id, for the webhooks
    for event_id, event in by_id.items():
        if event.type == T + "item.routed.v1":
            if event.data.get("status") == "queued":
                routed_events_queued[event_id] = event.data.get("case_id")
    causes_per_item: Counter = Counter(cause[:2] for cause in ids_per_cause if cause[0] in ACTION_EVENTS.values())

    known_items = {(event.data.get("item_id")): event.data.get("case_id") for event in by_id.values()
                   if event.type == T + "item.routed.v1"}
    routed_causes_of_case: Counter = Counter()
    escalated_routings_of_case: Counter = Counter()
    for cause in ids_per_cause:
        if cause[0] == "item.routed":
            routed_causes_of_case[known_items.get(cause[1])] += 1
            if cause[3] == "escalated":
                escalated_routings_of_case[known_items.get(cause[1])] += 1
    terminated_items_of_case: dict[str, set] = defaultdict(set)
    reminders_of_case: Counter = Counter()
    for cause in ids_per_cause:
        if cause[0] == TERMINATED:
            terminated_items_of_case[known_items.get(cause[1])].add(cause[1])
        elif cause[0] == DEFERRAL_REMINDER:
            reminders_of_case[cause[1]] += 1

    for case in cases:
        example = {"case": case.case_id, "submission": case.submission_id}
        verdict.add_lost("event case.submitted", int(("case.submitted", case.case_id) not in ids_per_cause), example)
        verdict.add_lost("event item.routed", case.matters + case.returns - routed_causes_of_case[case.case_id],
                         example)
        for (item_id, action), count in Counter(case.actions).items():
            got = causes_per_item[(ACTION_EVENTS[action], item_id)]
            verdict.add_lost(f"event {ACTION_EVENTS[action][9:]}", count - got, {**example, "item": item_id})
        if case.completed:
            verdict.add_lost("event case.completed", int(("case.completed", case.case_id) not in ids_per_cause),
                             example)

    check_whistles(verdict, cases, ids_per_cause)

    # ── messages, counted outside ──
    arrivals = list(arrivals)
    count_sent_twice(verdict, arrivals)
    sms_by_case: dict[tuple, set] = defaultdict(set)
    email_by_case: dict[str, set] = defaultdict(set)
    for arrival in arrivals:
        if arrival.channel == "sms":
            sms_by_case[(arrival.to, arrival.kind)].add(arrival.delivery_id)
        elif arrival.channel == "email":
            email_by_case[arrival.to].add(arrival.delivery_id)
    for case in cases:
        example = {"case": case.case_id, "phone": case.phone}
        resolved = sum(1 for _, action in case.actions if action == "resolve")
        supplements = sum(1 for _, action in case.actions if action == "request-supplement")
        terminated = terminated_items_of_case.get(case.case_id, set())
        # a case the load did not complete may still have been closed by a timer: an item terminated, the rest final
        completed = case.completed or (bool(terminated) and ("case.completed", case.case_id) in ids_per_cause)
        routings = case.matters + case.returns + escalated_routings_of_case[case.case_id]
        expected = {"receipt": 1, "item_routed": routings,
                    "supplement_requested": supplements, "item_resolved": resolved,
                    "case_completed": int(completed), "rating_invitation": int(completed),
                    "item_terminated": len(terminated), "deferral_reminder": reminders_of_case[case.case_id]}
        for kind, count in expected.items():
            got = len(sms_by_case.get((case.phone, SMS_KINDS[kind]), ()))
            verdict.add_lost(f"sms {kind}", count - got, example)
            verdict.add_duplicated(f"sms {kind}", got - count, example)
        total = sum(expected.values())
        got = len(email_by_case.get(case.email, ()))
        verdict.add_lost("email", total - got, {**example, "email": case.email})
        verdict.add_duplicated("email", got - total, {**example, "email": case.email})

    acknowledged_cases = {case.case_id for case in cases}
    webhooks_per_event: dict[str, set] = defaultdict(set)
    for arrival in arrivals:
        if arrival.channel == "webhook" and arrival.kind == "department_new_item":
            webhooks_per_event[(arrival.document or {}).get("event", {}).get("id")].add(arrival.delivery_id)
    for event_id, case_id in routed_events_queued.items():
        if case_id in acknowledged_cases:
            got = len(webhooks_per_event.get(event_id, ()))
            verdict.add_lost("webhook department_new_item", 1 - got, {"event": event_id, "case": case_id})
            verdict.add_duplicated("webhook department_new_item", got - 1, {"event": event_id, "case": case_id})

    # ── the read model agrees with the events ──
    if read_model is not None:
        resolved_on_bus = {cause[1] for cause in ids_per_cause if cause[0] == T + "item.resolved.v1"}
        completed_on_bus = {cause[1] for cause in ids_per_cause if cause[0] == "case.completed"}
        items_of_cases = {item for item, case_id in known_items.items() if case_id in acknowledged_cases}
        disagree = ((read_model["resolved_items"] & items_of_cases) ^ (resolved_on_bus & items_of_cases))
        disagree_cases = (read_model["completed_cases"] & acknowledged_cases) ^ (completed_on_bus & acknowledged_cases)
        terminated_on_bus = {cause[1] for cause in ids_per_cause if cause[0] == TERMINATED}
        terminated_in_routing = read_model.get("terminated_items")
        disagree_terminated = set() if terminated_in_routing is None else (
            (terminated_in_routing & items_of_cases) ^ (terminated_on_bus & items_of_cases))
        verdict.read_model_disagreements = len(disagree) + len(disagree_cases) + len(disagree_terminated)
        for item in sorted(disagree)[:3]:
            verdict.examples.append({"read_model": "item resolved in one and not the other", "item": item})
        for item in sorted(disagree_terminated)[:3]:
            verdict.examples.append({"read_model": "item terminated in one and not the other", "item": item})

    # ── timers: each expected firing exactly once ──
    if timers is not None:
        for name, expected in timers["expected"].items():
            fired = Counter(timers["fired"].get(name, []))
            missing = [cause for cause in expected if fired[cause] == 0]
            twice = sum(n - 1 for n in fired.values() if n > 1)
            verdict.add_lost(f"timer {name}", len(missing), {"examples": [list(c) for c in missing[:3]]})
            verdict.add_duplicated(f"timer {name}", twice, {})
            verdict.timers[name] = {"expected": len(expected), "fired": sum(fired.values()),
                                    "missing": len(missing), "twice": twice}
    return verdict
