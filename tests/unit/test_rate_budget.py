"""The per-location request budget: pacing under a sliding window, waits, Retry-After and GHL's headers."""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.rate_budget import (
    BudgetLimits,
    BudgetState,
    RateLimitHeaders,
    after_rate_limited,
    after_response,
    parse_retry_after,
    reserve,
    reserve_several,
    retry_after_refusal,
)

GHL = BudgetLimits()  # 100 per 10 s, 200,000 per day
T0 = 1_900_000_000.0  # an epoch second in the middle of a day: 2030-03-17 17:46:40 UTC


def take(state: BudgetState, limits: BudgetLimits, now: float, max_wait_s: float = 1e9) -> tuple[float, BudgetState]:
    slot = reserve(state, limits, now, max_wait_s)
    assert slot.granted
    return slot.start_at, slot.state


def most_in_any_window(starts: list[float], window: float) -> int:
    """The largest number of starts in any half-open span of `window` seconds (GHL's sliding reading)."""
    ordered = sorted(starts)
    return max(bisect.bisect_left(ordered, s + window) - i for i, s in enumerate(ordered))


def test_a_request_on_an_idle_budget_goes_at_once() -> None:
    start, _ = take(BudgetState(), GHL, T0)
    assert start == T0


def test_simultaneous_requests_get_distinct_evenly_spaced_slots() -> None:
    state, starts = BudgetState(), []
    for _ in range(5):
        start, state = take(state, GHL, T0)
        starts.append(start)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([GHL.spacing_s] * 4, abs=1e-6)


def test_a_burst_never_puts_more_than_the_limit_in_any_sliding_window() -> None:
    state, starts = BudgetState(), []
    for _ in range(1000):  # everybody asks at the same instant
        start, state = take(state, GHL, T0)
        starts.append(start)
    assert most_in_any_window(starts, GHL.interval_s) <= GHL.max_requests


def test_a_saturated_budget_uses_at_least_95_percent_of_the_limit() -> None:
    state, starts = BudgetState(), []
    for _ in range(1000):
        start, state = take(state, GHL, T0)
        starts.append(start)
    requests_per_window = (len(starts) - 1) / (starts[-1] - starts[0]) * GHL.interval_s
    assert requests_per_window >= 0.95 * GHL.max_requests


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=400),
    holds=st.lists(st.floats(min_value=0, max_value=3), max_size=5),
)
def test_no_arrival_pattern_exceeds_the_limit_in_a_sliding_window(gaps: list[float], holds: list[float]) -> None:
    limits = BudgetLimits(max_requests=20, interval_s=2.0)
    state, now, starts = BudgetState(), T0, []
    for index, gap in enumerate(gaps):
        now += gap
        if index < len(holds):
            state = after_rate_limited(state, now, holds[index])
        start, state = take(state, limits, now)
        starts.append(start)
        now = max(now, start) if index % 2 else now  # some workers wait for their slot, others keep asking
    assert most_in_any_window(starts, limits.interval_s) <= limits.max_requests


def test_a_wait_longer_than_allowed_is_refused_and_reserves_nothing() -> None:
    state = after_rate_limited(BudgetState(), T0, 30)
    refused = reserve(state, GHL, T0, max_wait_s=10)
    assert not refused.granted
    assert refused.wait_s == 30
    assert refused.state == state


def test_retry_after_holds_every_worker_sharing_the_budget() -> None:
    state = after_rate_limited(BudgetState(), T0, 4)
    start, _ = take(state, GHL, T0 + 1)
    assert start == T0 + 4


def test_a_shorter_retry_after_never_shortens_an_earlier_hold() -> None:
    state = after_rate_limited(after_rate_limited(BudgetState(), T0, 8), T0, 2)
    assert state.hold_until == T0 + 8


def test_the_daily_limit_holds_requests_until_the_next_day() -> None:
    limits = BudgetLimits(daily_limit=3, day_s=100)
    state = BudgetState()
    for _ in range(3):
        _, state = take(state, limits, T0 + 10)
    start, state = take(state, limits, T0 + 10)
    assert start == T0 + 100  # T0 is a multiple of 100: the next "day" starts 100 s later
    assert state.used_today == 1


def test_yesterdays_count_does_not_hold_todays_requests() -> None:
    limits = BudgetLimits(daily_limit=2, day_s=100)
    state = BudgetState(day=int(T0 // 100) - 1, used_today=2, next_slot_at=T0 - 50)
    start, _ = take(state, limits, T0 + 1)
    assert start == T0 + 1


def test_daily_remaining_zero_holds_until_the_day_resets() -> None:
    held = after_response(BudgetState(), GHL, T0, RateLimitHeaders(daily_remaining=0))
    next_midnight = datetime(2030, 3, 18, tzinfo=UTC).timestamp()
    assert held.hold_until == next_midnight
    assert not reserve(held, GHL, T0, max_wait_s=10).granted


def test_remaining_below_our_pacing_headroom_pushes_the_next_slot_out() -> None:
    state = BudgetState(next_slot_at=T0)
    pushed = after_response(state, GHL, T0, RateLimitHeaders(remaining=0))
    assert pushed.next_slot_at == T0 + GHL.expected_headroom * GHL.spacing_s
    assert pushed.next_slot_at > T0


def test_remaining_at_our_own_pace_changes_nothing() -> None:
    state = BudgetState(next_slot_at=T0 + 1)
    steady = RateLimitHeaders(remaining=GHL.max_requests - round(GHL.max_requests * GHL.utilization))
    assert after_response(state, GHL, T0, steady) == state


def test_rate_limit_headers_are_read_case_insensitively_and_garbage_is_ignored() -> None:
    parsed = RateLimitHeaders.parse(
        {"x-ratelimit-remaining": "7", "X-RateLimit-Max": "100", "X-RateLimit-Daily-Remaining": "n/a"}
    )
    assert parsed == RateLimitHeaders(max_requests=100, remaining=7)
    assert not RateLimitHeaders.parse({"content-type": "application/json"}).present


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("3", T0) == 3
    assert parse_retry_after("1.5", T0) == 1.5
    http_date = datetime.fromtimestamp(T0 + 20, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, T0) == 20
    assert parse_retry_after("soon", T0) is None
    assert parse_retry_after(None, T0) is None


@pytest.mark.parametrize("spread", [0.0, 0.5, 1.0])
def test_a_refused_caller_comes_back_while_the_slots_before_its_own_are_still_being_used(spread: float) -> None:
    state = BudgetState(next_slot_at=T0 + 30)  # 30 s of slots already reserved by other workers
    refused = reserve(state, GHL, T0, max_wait_s=10)
    assert not refused.granted
    back = retry_after_refusal(refused, T0, max_wait_s=10, spread=spread)
    assert back < 30  # before its slot is due: the location never runs out of callers waiting
    again = reserve(state, GHL, T0 + back, max_wait_s=10)
    assert again.granted and again.start_at == T0 + 30  # the next free slot, with no gap before it


def test_a_refused_caller_never_comes_back_before_ghls_retry_after() -> None:
    held = after_rate_limited(BudgetState(), T0, 30)
    refused = reserve(held, GHL, T0, max_wait_s=10)
    assert not refused.granted
    assert retry_after_refusal(refused, T0, max_wait_s=10, spread=0.0) == 30


def test_several_slots_taken_at_once_are_the_ones_taken_one_by_one() -> None:
    limits = BudgetLimits(max_requests=10, interval_s=1.0, utilization=1.0)
    state, one_by_one = BudgetState(), []
    for _ in range(4):
        slot = reserve(state, limits, 100.0, 0.35)
        one_by_one.append(slot)
        state = slot.state
    together_state, together = reserve_several(BudgetState(), limits, 100.0, 0.35, 6)
    granted = [slot for slot in one_by_one if slot.granted]
    expected = pytest.approx([100.0, 100.1, 100.2, 100.3])
    assert [slot.start_at for slot in together] == [slot.start_at for slot in granted] == expected
    assert together_state == granted[-1].state  # a fifth would wait 0.4 s > 0.35 s: not taken, not counted


def test_several_slots_refused_as_one_when_the_first_does_not_come_in_time() -> None:
    held = BudgetState(hold_until=110.0)
    state, [refused] = reserve_several(held, BudgetLimits(), 100.0, 5.0, 8)
    assert not refused.granted and state == held
