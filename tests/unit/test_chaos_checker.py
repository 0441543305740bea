"""The chaos checker counts lost and duplicated effects from what arrived outside the system (bench/chaos_checker.py).

A checker that cannot fail proves nothing: each test takes a run in which every effect arrived once (checked
clean), then removes or repeats one effect and checks that exactly that is counted.
"""

from __future__ import annotations

from dataclasses import replace

from bench.chaos_checker import SMS_KINDS, check
from bench.chaos_load import CaseTruth
from bench.recorders import Arrival, EventRecord

T = "cn.sanji."


def a_completed_single_matter_case():
    case = CaseTruth("sub-1", "13900000001", "r1@resident.example", bundle=False, matters=1, status=201,
                     case_id="case-1", items={"item-1": "employment-registration"},
                     actions=[("item-1", "claim"), ("item-1", "accept"), ("item-1", "resolve")], completed=True)
    events = [EventRecord(1.0, "e-sub", T + "case.submitted.v1", {"case_id": "case-1"}),
              EventRecord(1.1, "e-routed", T + "item.routed.v1",
                          {"case_id": "case-1", "item_id": "item-1", "unit_code": "u1", "status": "queued",
                           "route_reason": "submitted"}),
              EventRecord(2.0, "e-claim", T + "item.claimed.v1", {"case_id": "case-1", "item_id": "item-1"}),
              EventRecord(2.1, "e-accept", T + "item.accepted.v1", {"case_id": "case-1", "item_id": "item-1"}),
              EventRecord(2.2, "e-resolve", T + "item.resolved.v1", {"case_id": "case-1", "item_id": "item-1"}),
              EventRecord(2.3, "e-done", T + "case.completed.v1", {"case_id": "case-1"})]
    kinds = ["receipt", "item_routed", "item_resolved", "case_completed", "rating_invitation"]
    arrivals = [Arrival(3.0, "sms", case.phone, f"sms-{kind}", SMS_KINDS[kind]) for kind in kinds]
    arrivals += [Arrival(3.0, "email", case.email, f"email-{kind}", None) for kind in kinds]
    arrivals.append(Arrival(3.0, "webhook", "department", "hook-1", "department_new_item",
                            document={"event": {"id": "e-routed"}}))
    read_model = {"resolved_items": {"item-1"}, "completed_cases": {"case-1"}}
    return case, events, arrivals, read_model


def test_a_run_where_every_effect_arrived_once_is_clean():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    summary = check([case], events, arrivals, read_model).summary()
    assert (summary["lost"], summary["duplicated"], summary["read_model_disagreements"]) == (0, 0, 0)
    assert summary["cases_checked"] == 1


def test_a_missing_sms_is_lost():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    arrivals = [a for a in arrivals if a.delivery_id != "sms-item_resolved"]
    summary = check([case], events, arrivals, read_model).summary()
    assert summary["lost"] == 1 and summary["lost_by_kind"] == {"sms item_resolved": 1}
    assert summary["duplicated"] == 0


def test_a_message_sent_twice_is_duplicated():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    summary = check([case], events, arrivals + [arrivals[0]], read_model).summary()
    assert summary["duplicated"] == 1 and summary["duplicated_by_kind"] == {"sms sent twice": 1}
    assert summary["lost"] == 0


def test_a_message_planned_twice_for_one_cause_is_duplicated():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    second = replace(arrivals[0], delivery_id="sms-receipt-again")
    summary = check([case], events, arrivals + [second], read_model).summary()
    assert summary["duplicated_by_kind"] == {"sms receipt": 1}


def test_an_event_published_twice_under_two_ids_is_duplicated_but_a_redelivery_is_not():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    redelivered = replace(events[2], redelivered=True)
    again = replace(events[4], event_id="e-resolve-2")
    summary = check([case], events + [redelivered, again], arrivals, read_model).summary()
    assert summary["duplicated_by_kind"] == {"event cn.sanji.item.resolved.v1": 1}
    assert summary["event_redeliveries"] == 1


def test_an_action_answered_200_without_its_event_is_lost():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    events = [e for e in events if e.event_id != "e-claim"]
    summary = check([case], events, arrivals, read_model).summary()
    assert summary["lost_by_kind"] == {"event item.claimed.v1": 1}


def test_a_routing_never_published_loses_its_event_its_messages_and_its_webhook():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    events = [e for e in events if e.event_id != "e-routed"]
    summary = check([case], events, arrivals, read_model).summary()
    assert summary["lost_by_kind"]["event item.routed"] == 1


def test_a_read_model_that_disagrees_with_the_events_is_counted():
    case, events, arrivals, _ = a_completed_single_matter_case()
    summary = check([case], events, arrivals, {"resolved_items": set(), "completed_cases": {"case-1"}}).summary()
    assert summary["read_model_disagreements"] == 1


def test_a_timer_that_fired_twice_or_never_is_counted():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    timers = {"expected": {"warning": {("item-1",), ("item-2",)}}, "fired": {"warning": [("item-1",), ("item-1",)]}}
    summary = check([case], events, arrivals, read_model, timers).summary()
    assert summary["lost_by_kind"] == {"timer warning": 1}
    assert summary["duplicated_by_kind"] == {"timer warning": 1}


def test_the_clock_jumps_check_adds_its_findings_to_the_main_verdict():
    case, events, arrivals, read_model = a_completed_single_matter_case()
    main = check([case], events, arrivals, read_model)
    assert main.summary()["lost"] == 0 and main.summary()["duplicated"] == 0
    # after the jump: one expiry never fired, a warning published twice for one key, nothing expected of cases
    timers = {"expected": {"expiry": {("item-9",)}, "warning (once per key)": set()},
              "fired": {"expiry": [], "warning (once per key)": [("item-1", "community"), ("item-1", "community")]}}
    main.absorb(check([], [], [], None, timers))
    summary = main.summary()
    assert summary["lost_by_kind"] == {"timer expiry": 1}
    assert summary["duplicated_by_kind"] == {"timer warning (once per key)": 1}
    assert set(summary["timers"]) == {"expiry", "warning (once per key)"}


def test_one_attempt_twice_is_a_duplicate_and_a_later_attempt_is_counted_as_a_resend():
    """The same attempt arriving twice is a message sent twice; attempt 2 of a delivery whose attempt 1 arrived is
    the at-least-once case (the sender died between the provider's acceptance and its record), counted apart."""
    case, events, arrivals, read_model = a_completed_single_matter_case()
    first = [replace(a, attempt=1) for a in arrivals]
    sms = next(a for a in first if a.channel == "sms")
    email = next(a for a in first if a.channel == "email")
    summary = check([case], events, [*first, replace(sms, at=9.0), replace(email, at=9.0, attempt=2)],
                    read_model).summary()
    assert summary["duplicated_by_kind"] == {"sms sent twice": 1}
    assert summary["resent_by_channel"] == {"email": 1}
    # the same, when the repeats come in a later check (after the clock jump) that knows what came before
    from bench.chaos_checker import Verdict, count_sent_twice
    later = Verdict()
    count_sent_twice(later, [replace(sms, at=9.0), replace(email, at=9.0, attempt=2)], already=first)
    assert dict(later.duplicated) == {"sms sent twice": 1} and dict(later.resent) == {"email": 1}


def a_whistled_open_case():
    """An open single matter the street whistled on: one call acknowledged, one left to its limit."""
    case, events, arrivals, read_model = a_completed_single_matter_case()
    case = replace(case, actions=[], completed=False, plan="open", whistle="acknowledge",
                   calls={"call-1": "acknowledged", "call-2": "unanswered"})
    events = events[:2] + [
        EventRecord(2.0, f"e-called-{n}", T + "whistle.called.v1", {"case_id": "case-1", "call_id": f"call-{n}"})
        for n in (1, 2)] + [
        EventRecord(2.1, "e-ack-1", T + "whistle.acknowledged.v1", {"case_id": "case-1", "call_id": "call-1"}),
        EventRecord(62.0, "e-esc-2", T + "whistle.escalated.v1", {"case_id": "case-1", "call_id": "call-2"})]
    arrivals = [a for a in arrivals if a.kind in (SMS_KINDS["receipt"], SMS_KINDS["item_routed"])
                or a.delivery_id in ("email-receipt", "email-item_routed") or a.channel == "webhook"]
    return case, events, arrivals, {"resolved_items": set(), "completed_cases": set()}


def test_whistle_calls_acknowledged_or_escalated_by_their_limit_are_clean():
    summary = check([a_whistled_open_case()[0]], *a_whistled_open_case()[1:]).summary()
    assert (summary["lost"], summary["duplicated"]) == (0, 0), summary["examples"]
    assert summary["timers"]["吹哨 limit escalated the call"] == {"expected": 1, "fired": 1, "missing": 0}


def test_a_whistle_limit_that_never_fired_is_lost_and_one_that_fired_twice_is_duplicated():
    case, events, arrivals, read_model = a_whistled_open_case()
    never = check([case], [e for e in events if e.event_id != "e-esc-2"], arrivals, read_model).summary()
    assert never["lost_by_kind"] == {"timer 吹哨 limit escalated the call": 1} and never["duplicated"] == 0
    twice = check([case], events + [replace(events[-1], event_id="e-esc-2-again")], arrivals, read_model).summary()
    assert twice["duplicated_by_kind"] == {"event cn.sanji.whistle.escalated.v1": 1} and twice["lost"] == 0


def test_an_acknowledged_call_escalated_anyway_is_counted():
    case, events, arrivals, read_model = a_whistled_open_case()
    wrong = EventRecord(63.0, "e-esc-1", T + "whistle.escalated.v1", {"case_id": "case-1", "call_id": "call-1"})
    summary = check([case], events + [wrong], arrivals, read_model).summary()
    assert summary["duplicated_by_kind"] == {"whistle escalated though acknowledged": 1}


def test_a_call_whose_acknowledgement_was_unanswered_must_end_one_way_exactly_once():
    case, events, arrivals, read_model = a_whistled_open_case()
    case = replace(case, calls={"call-1": "ambiguous", "call-2": "unanswered"})
    assert check([case], events, arrivals, read_model).summary()["lost"] == 0
    neither = [e for e in events if e.event_id != "e-ack-1"]
    assert check([case], neither, arrivals, read_model).summary()["lost_by_kind"] == {
        "whistle neither acknowledged nor escalated": 1}


def a_case_closed_by_its_timers():
    """An open case the staff never touched: its 容缺 material was reminded, then expired; the termination closed
    the item and so the case. None of this is in the load's ground truth: the messages follow the timers' events."""
    case, events, arrivals, _ = a_completed_single_matter_case()
    case = replace(case, actions=[], completed=False, plan="open")
    events = events[:2] + [
        EventRecord(5.0, "e-remind", T + "case.deferral-reminder.v1",
                    {"case_id": "case-1", "material_code": "landlord-id-copy", "due_date": "2026-12-14"}),
        EventRecord(6.0, "e-end", T + "item.terminated.v1",
                    {"case_id": "case-1", "item_id": "item-1", "reason_code": "deferral_expired"}),
        EventRecord(6.1, "e-done", T + "case.completed.v1", {"case_id": "case-1"})]
    kinds = ["receipt", "item_routed", "deferral_reminder", "item_terminated", "case_completed", "rating_invitation"]
    arrivals = [Arrival(7.0, "sms", case.phone, f"sms-{kind}", SMS_KINDS[kind]) for kind in kinds]
    arrivals += [Arrival(7.0, "email", case.email, f"email-{kind}", None) for kind in kinds]
    arrivals.append(Arrival(3.0, "webhook", "department", "hook-1", "department_new_item",
                            document={"event": {"id": "e-routed"}}))
    read_model = {"resolved_items": set(), "terminated_items": {"item-1"}, "completed_cases": {"case-1"}}
    return case, events, arrivals, read_model


def test_what_the_timers_told_the_resident_is_expected_from_their_events():
    summary = check([a_case_closed_by_its_timers()[0]], *a_case_closed_by_its_timers()[1:]).summary()
    assert (summary["lost"], summary["duplicated"], summary["read_model_disagreements"]) == (0, 0, 0), \
        summary["examples"]


def test_a_timers_message_that_never_arrived_is_lost():
    case, events, arrivals, read_model = a_case_closed_by_its_timers()
    arrivals = [a for a in arrivals if a.delivery_id not in ("sms-item_terminated", "email-deferral_reminder")]
    summary = check([case], events, arrivals, read_model).summary()
    assert summary["lost_by_kind"] == {"sms item_terminated": 1, "email": 1} and summary["duplicated"] == 0


def test_a_termination_published_twice_is_duplicated_with_its_messages():
    case, events, arrivals, read_model = a_case_closed_by_its_timers()
    again = replace(events[3], event_id="e-end-again")
    more = [replace(a, delivery_id=a.delivery_id + "-again") for a in arrivals if a.delivery_id.endswith("terminated")]
    summary = check([case], [*events, again], [*arrivals, *more], read_model).summary()
    assert summary["duplicated_by_kind"] == {"event cn.sanji.item.terminated.v1": 1, "sms item_terminated": 1,
                                             "email": 1}


def test_a_completion_without_a_termination_behind_it_is_not_excused():
    """Only a case a termination closed may complete without the load having completed it."""
    case, events, arrivals, read_model = a_case_closed_by_its_timers()
    events = [e for e in events if e.event_id != "e-end"]
    arrivals = [a for a in arrivals if not a.delivery_id.endswith("terminated")]
    summary = check([case], events, arrivals, {**read_model, "terminated_items": set()}).summary()
    assert summary["duplicated_by_kind"] == {"sms case_completed": 1, "sms rating_invitation": 1, "email": 2}


def test_an_item_terminated_in_routing_but_not_on_the_bus_disagrees():
    case, events, arrivals, read_model = a_case_closed_by_its_timers()
    events = [e for e in events if e.event_id != "e-end"]
    arrivals = [a for a in arrivals if not a.delivery_id.endswith("terminated")]
    summary = check([case], events, arrivals, read_model).summary()
    assert summary["read_model_disagreements"] == 1
