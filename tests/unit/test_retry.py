"""Retry math and policy: bounded full-jitter backoff, and the next step for each kind of failure."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_core.retry import MAX_VISIBILITY_DELAY_S, ErrorKind, RetryAction, backoff_delay, decide_retry


class HighestDraw(random.Random):
    """Always draws the top of the range, to observe the backoff ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0, max_value=100),
    cap=st.floats(min_value=0, max_value=3600),
    seed=st.integers(),
)
def test_backoff_never_exceeds_its_cap_or_goes_negative(attempt: int, base: float, cap: float, seed: int) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(attempt - 1, 64))


def test_backoff_ceiling_doubles_per_attempt_until_the_cap() -> None:
    ceilings = [backoff_delay(n, base=1.0, cap=10.0, rng=HighestDraw()) for n in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_workers_failing_together_retry_at_spread_out_times() -> None:
    rng = random.Random(7)
    delays = {round(backoff_delay(5, base=1.0, cap=60.0, rng=rng), 3) for _ in range(50)}
    assert len(delays) > 40


def test_attempts_are_counted_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, base=1.0, cap=10.0, rng=random.Random(1))


def test_rate_limit_waits_for_retry_after_without_counting_as_a_failure() -> None:
    decision = decide_retry(ErrorKind.rate_limited, attempt=1, retry_after_s=12.5, rng=random.Random(1))
    assert (decision.action, decision.delay_s) == (RetryAction.requeue, 12.5)


def test_rate_limit_without_retry_after_backs_off_within_the_cap() -> None:
    decision = decide_retry(ErrorKind.rate_limited, attempt=3, rng=random.Random(1), base=2.0, cap=300.0)
    assert decision.action == RetryAction.requeue
    assert 0.0 <= decision.delay_s <= 8.0


def test_rate_limit_delay_fits_a_queue_visibility_timeout() -> None:
    decision = decide_retry(ErrorKind.rate_limited, attempt=1, retry_after_s=30 * 24 * 3600, rng=random.Random(1))
    assert decision.delay_s == MAX_VISIBILITY_DELAY_S


def test_endless_rate_limiting_eventually_gives_up() -> None:
    decision = decide_retry(ErrorKind.rate_limited, attempt=51, max_requeues=50, rng=random.Random(1))
    assert (decision.action, decision.reason) == (RetryAction.permanent, "rate_limit_exhausted")


@pytest.mark.parametrize("kind", [ErrorKind.timeout, ErrorKind.connection, ErrorKind.server_error])
def test_transient_failures_are_retried_then_given_up(kind: ErrorKind) -> None:
    first = decide_retry(kind, attempt=1, max_attempts=5, rng=random.Random(1))
    last = decide_retry(kind, attempt=5, max_attempts=5, rng=random.Random(1))
    assert first.action == RetryAction.retry and first.delay_s >= 0
    assert (last.action, last.reason) == (RetryAction.permanent, "retries_exhausted")


def test_a_create_with_unknown_outcome_is_verified_before_any_new_attempt() -> None:
    decision = decide_retry(ErrorKind.outcome_unknown, attempt=1, rng=random.Random(1))
    assert decision.action == RetryAction.verify_first


@pytest.mark.parametrize("kind", [ErrorKind.auth_expired, ErrorKind.not_found, ErrorKind.invalid_request])
def test_failures_retrying_cannot_fix_are_permanent(kind: ErrorKind) -> None:
    decision = decide_retry(kind, attempt=1, rng=random.Random(1))
    assert (decision.action, decision.reason) == (RetryAction.permanent, kind.value)
