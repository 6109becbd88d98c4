"""Retry math and policy: jittered backoff, and what each kind of failure should lead to."""

from __future__ import annotations

import random
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

# Azure Storage queues cap a message's visibility delay at 7 days.
MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600 - 1


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry `attempt` (1-based): full jitter, uniform(0, min(cap, base·2^(n-1))).

    Full jitter spreads retries of many workers that failed together; the cap bounds the wait.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must not be negative")
    # 2**64 already exceeds any sensible cap; capping the exponent avoids float overflow.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return rng.uniform(0.0, ceiling)


class ErrorKind(StrEnum):
    """Failures as the GHL client reports them, by what the caller can do about them."""

    rate_limited = "rate_limited"
    timeout = "timeout"
    connection = "connection"
    server_error = "server_error"
    outcome_unknown = "outcome_unknown"
    auth_expired = "auth_expired"
    not_found = "not_found"
    invalid_request = "invalid_request"


class RetryAction(StrEnum):
    retry = "retry"
    """Transient: try again after `delay_s` (raise or re-enqueue; counts as a failed attempt)."""
    requeue = "requeue"
    """Not a failure (429): re-enqueue with a visibility delay of `delay_s`; must not count toward poison."""
    verify_first = "verify_first"
    """A create may have happened: look for the event in GHL and adopt it before any new attempt."""
    permanent = "permanent"
    """Retrying cannot help: record the error on the appointment and stop."""


class RetryDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: RetryAction
    delay_s: float
    reason: str


_TRANSIENT = {ErrorKind.timeout, ErrorKind.connection, ErrorKind.server_error}


def decide_retry(
    kind: ErrorKind,
    *,
    attempt: int,
    rng: random.Random,
    retry_after_s: float | None = None,
    max_attempts: int = 5,
    max_requeues: int = 50,
    base: float = 2.0,
    cap: float = 300.0,
) -> RetryDecision:
    """Map a failure on attempt number `attempt` (1-based) to the next step. Every path is bounded.

    A 429 waits for `Retry-After` when GHL gave one; its own, larger bound (`max_requeues`) applies
    because waiting out a rate limit is normal work, not failure.
    """
    if kind == ErrorKind.rate_limited:
        if attempt > max_requeues:
            return RetryDecision(action=RetryAction.permanent, delay_s=0.0, reason="rate_limit_exhausted")
        delay = retry_after_s if retry_after_s is not None else backoff_delay(attempt, base=base, cap=cap, rng=rng)
        return RetryDecision(
            action=RetryAction.requeue,
            delay_s=min(max(delay, 0.0), MAX_VISIBILITY_DELAY_S),
            reason="rate_limited",
        )
    if kind in _TRANSIENT or kind == ErrorKind.outcome_unknown:
        if attempt >= max_attempts:
            return RetryDecision(action=RetryAction.permanent, delay_s=0.0, reason="retries_exhausted")
        action = RetryAction.verify_first if kind == ErrorKind.outcome_unknown else RetryAction.retry
        return RetryDecision(
            action=action, delay_s=backoff_delay(attempt, base=base, cap=cap, rng=rng), reason=kind.value
        )
    return RetryDecision(action=RetryAction.permanent, delay_s=0.0, reason=kind.value)
