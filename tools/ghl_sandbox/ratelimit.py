"""GHL's per (client app, location) burst and daily request limits, with its X-RateLimit-* headers.

The burst limit is a sliding window (a log of accepted requests): no span of `interval_ms` ever holds more
than `max_requests` accepted requests, which is the strict reading of "100 requests per 10 seconds". The
daily limit is a fixed window aligned to UTC day boundaries. Rejected requests do not use up the budget.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .config import RateLimitConfig
from .state import Clock


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after_seconds: int | None = None


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._days: dict[tuple[str, str], tuple[int, int]] = {}

    def reset(self) -> None:
        self._windows.clear()
        self._days.clear()

    def check(self, key: tuple[str, str], limits: RateLimitConfig) -> Decision:
        now = self.clock.monotonic()
        interval = limits.interval_ms / 1000
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - interval:
            window.popleft()
        day = math.floor(self.clock.time() / limits.day_seconds)
        day_index, used_today = self._days.get(key, (day, 0))
        if day_index != day:
            used_today = 0

        retry_after: float | None = None
        if len(window) >= limits.max_requests:
            retry_after = window[0] + interval - now
        elif used_today >= limits.daily_limit:
            retry_after = (day + 1) * limits.day_seconds - self.clock.time()
        else:
            window.append(now)
            used_today += 1
        self._days[key] = (day, used_today)

        headers = {
            "X-RateLimit-Limit-Daily": str(limits.daily_limit),
            "X-RateLimit-Daily-Remaining": str(max(0, limits.daily_limit - used_today)),
            "X-RateLimit-Interval-Milliseconds": str(limits.interval_ms),
            "X-RateLimit-Max": str(limits.max_requests),
            "X-RateLimit-Remaining": str(max(0, limits.max_requests - len(window))),
        }
        if retry_after is None:
            return Decision(True, headers)
        return Decision(False, headers, max(1, math.ceil(retry_after)))
