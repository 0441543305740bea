"""The resident lookup's lockout rule (intake's ``GuardState``, pure): misses within the window, the lockout,
and a fresh count after it; and the phone ending that the lookup compares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.intake.lookups import GuardState, LookupPolicy, normalise_case_number, phone_ending

POLICY = LookupPolicy(max_misses=5, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
NO_MISSES = GuardState()


def misses(count: int, start: GuardState = NO_MISSES, every=timedelta(seconds=10)) -> GuardState:
    state = start
    for n in range(count):
        state = state.after_miss(T0 + every * n, POLICY)
    return state


def test_four_misses_leave_one_attempt_and_no_lock():
    state = misses(4)
    assert state.misses == 4
    assert state.misses_left(POLICY) == 1
    assert not state.locked_at(T0 + timedelta(minutes=1))


def test_the_fifth_miss_locks_for_the_lockout_period():
    state = misses(5)
    assert state.locked_until == T0 + timedelta(seconds=40) + POLICY.lockout
    assert state.misses_left(POLICY) == 0
    assert state.locked_at(T0 + timedelta(minutes=10))
    assert not state.locked_at(state.locked_until)


def test_misses_spread_beyond_the_window_start_a_new_count():
    state = misses(4)
    later = state.after_miss(T0 + POLICY.window + timedelta(seconds=1), POLICY)
    assert later.misses == 1
    assert later.locked_until is None


def test_after_a_lockout_the_count_starts_again():
    locked = misses(5)
    after = locked.after_miss(locked.locked_until + timedelta(seconds=1), POLICY)
    assert (after.misses, after.locked_until) == (1, None)


def test_the_phone_ending_and_the_case_number_are_normalised():
    assert phone_ending("13912345678") == "5678"
    assert phone_ending("025-8432 1234") == "1234"
    assert normalise_case_number(" sj20261130-0a1b2c3d0000 ") == "SJ20261130-0A1B2C3D0000"
