"""Waiting for a rate-budget slot: a process that wakes up late gives its slot up for a new one, so late calls
do not pile up in the API's window (what a starved instance would otherwise send in a burst)."""

from __future__ import annotations

import pytest

from shared.rate_budget import LATE_SLOTS, MemoryRateBudget, wait_for_slot
from sync_core.rate_budget import BudgetLimits, Reservation

LIMITS = BudgetLimits(max_requests=10, interval_s=1.0)  # slots 103 ms apart, 30 ms of slack
T0 = 1_900_000_000.0


class Refused(Exception):
    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Machine:
    """A clock and a sleep that oversleeps by `late` seconds, as on a starved CPU."""

    def __init__(self, late: list[float]) -> None:
        self.now = T0
        self.late = late

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + (self.late.pop(0) if self.late else 0.0)


def send(machine: Machine, budget: MemoryRateBudget) -> float:
    wait_for_slot(budget, "loc", 60.0, clock=machine.clock, sleep=machine.sleep, refused=Refused)
    return machine.now


def test_a_call_on_time_takes_one_slot() -> None:
    machine = Machine(late=[0.010])  # the second call waits for its slot and wakes 10 ms late: within the slack
    budget = MemoryRateBudget(LIMITS, clock=machine.clock)
    first, second = send(machine, budget), send(machine, budget)
    assert second - first == pytest.approx(LIMITS.spacing_s + 0.010, abs=1e-6)
    assert budget.state("loc").used_today == 2


def test_a_slot_missed_by_more_than_the_slack_is_given_up_for_a_new_one() -> None:
    machine = Machine(late=[0.5])  # the second call wakes 500 ms after its slot
    budget = MemoryRateBudget(LIMITS, clock=machine.clock)
    send(machine, budget)
    woke = T0 + LIMITS.spacing_s + 0.5
    sent = send(machine, budget)
    assert sent == pytest.approx(woke, abs=1e-6)  # the new slot is free at once: sent on time for it
    assert budget.state("loc").used_today == 3  # the missed slot stays spent: nobody else sends in it
    assert budget.state("loc").next_slot_at == pytest.approx(woke + LIMITS.spacing_s, abs=1e-6)


class Busy(MemoryRateBudget):
    """Another worker takes a slot just before each of ours: ours is always ahead, so every wait oversleeps."""

    def reserve(self, key: str, max_wait_s: float, *, following: int = 0) -> Reservation:
        super().reserve(key, max_wait_s)
        return super().reserve(key, max_wait_s)


def test_a_process_late_every_time_sends_after_a_bounded_number_of_new_slots() -> None:
    machine = Machine(late=[0.5] * 20)
    budget = Busy(LIMITS, clock=machine.clock)
    send(machine, budget)
    assert budget.state("loc").used_today == 2 * (LATE_SLOTS + 1)  # ours and the other worker's, each time
    assert len(machine.late) == 20 - (LATE_SLOTS + 1)


def test_a_slot_too_far_away_is_refused_with_its_wait() -> None:
    machine = Machine(late=[])
    budget = MemoryRateBudget(LIMITS, clock=machine.clock)
    budget.rate_limited("loc", 120.0)
    with pytest.raises(Refused) as refused:
        send(machine, budget)
    assert refused.value.retry_after >= 60.0
