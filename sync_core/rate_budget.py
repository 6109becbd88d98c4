"""Per-location GHL request budget: strict pacing that stays under GHL's burst and daily limits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime

# GHL allows 100 requests per 10 s and 200,000 per day per app and location, without saying whether the
# 10 s window is fixed or sliding. A token bucket that lets a burst through and then refills can put up to
# twice the limit into one sliding window, so requests are paced strictly instead (GCRA without burst):
# each request takes the next free slot, one slot every `spacing_s`, and concurrent workers reserve
# distinct slots in one shared state. Any span of the window then holds at most
# `max_requests * utilization` requests; the remainder absorbs network jitter and clock skew between
# hosts. Times are epoch seconds passed in by the caller, because the state is shared between hosts.


@dataclass(frozen=True)
class BudgetLimits:
    """GHL's limits for one app and location, and the fraction of the burst limit the pacing aims at."""

    max_requests: int = 100
    interval_s: float = 10.0
    daily_limit: int = 200_000
    day_s: float = 86_400.0
    utilization: float = 0.97

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.daily_limit < 1:
            raise ValueError("limits must allow at least one request")
        if self.interval_s <= 0 or self.day_s <= 0:
            raise ValueError("windows must be positive")
        if not 0 < self.utilization <= 1:
            raise ValueError("utilization must be in (0, 1]")

    @property
    def spacing_s(self) -> float:
        """Time between two consecutive slots."""
        return self.interval_s / (self.max_requests * self.utilization)

    @property
    def slack_s(self) -> float:
        """The part of each window the pacing leaves free: how late a request may leave after its slot."""
        return self.interval_s * (1 - self.utilization)

    @property
    def expected_headroom(self) -> int:
        """`X-RateLimit-Remaining` below this means GHL counted requests our pacing did not send."""
        return max(0, self.max_requests - math.ceil(self.max_requests * self.utilization) - 1)


@dataclass(frozen=True)
class BudgetState:
    """What every worker of every host shares for one location."""

    next_slot_at: float = 0.0
    hold_until: float = 0.0
    day: int = 0
    used_today: int = 0


@dataclass(frozen=True)
class Reservation:
    """A slot to send at (`granted`), or the wait that was too long to take one; `state` is what to store."""

    granted: bool
    start_at: float
    wait_s: float
    state: BudgetState


@dataclass(frozen=True)
class RateLimitHeaders:
    """GHL's `X-RateLimit-*` response headers; a missing or malformed header is None."""

    max_requests: int | None = None
    interval_ms: int | None = None
    remaining: int | None = None
    daily_limit: int | None = None
    daily_remaining: int | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        lowered = {key.lower(): value for key, value in headers.items()}

        def number(name: str) -> int | None:
            raw = lowered.get(name, "").strip()
            return int(raw) if raw.isdigit() else None

        return cls(
            max_requests=number("x-ratelimit-max"),
            interval_ms=number("x-ratelimit-interval-milliseconds"),
            remaining=number("x-ratelimit-remaining"),
            daily_limit=number("x-ratelimit-limit-daily"),
            daily_remaining=number("x-ratelimit-daily-remaining"),
        )

    @property
    def present(self) -> bool:
        return any(value is not None for value in vars(self).values())


def day_of(moment: float, limits: BudgetLimits) -> int:
    return math.floor(moment / limits.day_s)


def reserve(state: BudgetState, limits: BudgetLimits, now: float, max_wait_s: float) -> Reservation:
    """The next free slot; refused (state unchanged, nothing reserved) when waiting for it exceeds `max_wait_s`."""
    today = day_of(now, limits)
    used = state.used_today if state.day == today else 0
    start = max(now, state.next_slot_at, state.hold_until)
    if used >= limits.daily_limit:
        start = max(start, (today + 1) * limits.day_s)
    start_day = day_of(start, limits)
    if start_day != today:
        used = 0
    wait = start - now
    if wait > max_wait_s:
        return Reservation(granted=False, start_at=start, wait_s=wait, state=state)
    reserved = BudgetState(
        next_slot_at=start + limits.spacing_s,
        hold_until=state.hold_until,
        day=start_day,
        used_today=used + 1,
    )
    return Reservation(granted=True, start_at=start, wait_s=wait, state=reserved)


def too_late(slot: Reservation, now: float, limits: BudgetLimits) -> bool:
    """Whether a slot's moment passed by more than the slack (a starved process woke up late): sent now, its
    request would land among the next slots' and could pass the API's window (GHL's), so a new slot is taken
    instead. A pacing without slack (Odoo's steady rate: no window the server counts) never gives one up."""
    return limits.utilization < 1 and now - slot.start_at > limits.slack_s


def reserve_several(
    state: BudgetState, limits: BudgetLimits, now: float, max_wait_s: float, count: int
) -> tuple[BudgetState, list[Reservation]]:
    """Up to `count` consecutive slots in one change of the state (for callers waiting at the same moment): the
    first reservation always (granted or refused), then as many more as come within `max_wait_s`."""
    first = reserve(state, limits, now, max_wait_s)
    taken = [first]
    current = first.state
    while first.granted and len(taken) < count:
        following = reserve(current, limits, now, max_wait_s)
        if not following.granted:
            break
        taken.append(following)
        current = following.state
    return current, taken


def retry_after_refusal(refused: Reservation, now: float, max_wait_s: float, spread: float) -> float:
    """Seconds until a refused reservation is worth asking again: when the hold (a 429) is over and the slot
    would come within `max_wait_s`. Asking only when the slot itself is due (`wait_s`) leaves it unused:
    the caller is a queue message that becomes visible then and waits for the next poll, so a location
    whose callers were all refused has gaps. `spread` (0..1, random) moves the moment later by up to half
    of `max_wait_s`, so the refused do not all come back at once."""
    held = refused.state.hold_until - now
    fits = refused.wait_s - max_wait_s + min(max(spread, 0.0), 1.0) * max_wait_s / 2
    return max(0.0, held, fits)


def after_response(state: BudgetState, limits: BudgetLimits, now: float, headers: RateLimitHeaders) -> BudgetState:
    """Adapt to what GHL reports: skip one slot per request it counted beyond our pacing, hold when the day is spent."""
    updated = state
    if headers.remaining is not None and headers.remaining < limits.expected_headroom:
        missing = limits.expected_headroom - headers.remaining
        updated = replace(updated, next_slot_at=max(updated.next_slot_at, now) + missing * limits.spacing_s)
    if headers.daily_remaining == 0:
        next_day = (day_of(now, limits) + 1) * limits.day_s
        updated = replace(updated, hold_until=max(updated.hold_until, next_day))
    return updated


def after_rate_limited(state: BudgetState, now: float, retry_after_s: float) -> BudgetState:
    """A 429: nobody sends before `Retry-After` has passed."""
    return replace(state, hold_until=max(state.hold_until, now + max(0.0, retry_after_s)))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, moment.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
