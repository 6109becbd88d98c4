"""Seeded fault decisions per endpoint (the socket-level failures themselves are in tools.asgi_server)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from .config import FaultConfig

Failure = Literal["rate_limit", "500", "502", "503", "timeout", "reset", "rejected"]


_SERVER_ERRORS: dict[int, Failure] = {500: "500", 502: "502", 503: "503"}


@dataclass(frozen=True)
class FaultPlan:
    latency_seconds: float = 0.0
    before: Failure | None = None  # instead of handling the request
    after: Failure | None = None  # after a write was applied, instead of its answer


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def plan(self, endpoint: str, is_write: bool) -> FaultPlan:
        """Draw the same numbers for every request, so a seed replays the same faults in the same order."""
        rule = self.config.endpoints.get(endpoint, self.config.all_endpoints)
        rng = self._rng
        draws = {kind: rng.random() for kind in ("rate_limit", "server_error", "timeout", "reset", "applied")}
        status = rng.choice(rule.server_error_statuses) if rule.server_error_statuses else 500
        latency = (rule.latency_ms + rng.uniform(0, rule.latency_jitter_ms)) / 1000
        before: Failure | None = None
        # Drawn only when configured, so the seeds of configurations without it replay as they always did.
        if rule.rejected and rng.random() < rule.rejected:
            before = "rejected"
        elif draws["reset"] < rule.reset:
            before = "reset"
        elif draws["timeout"] < rule.timeout:
            before = "timeout"
        elif draws["server_error"] < rule.server_error:
            before = _SERVER_ERRORS[status]
        elif draws["rate_limit"] < rule.rate_limit:
            before = "rate_limit"
        after: Failure | None = None
        if before is None and is_write and draws["applied"] < rule.applied_then_failed:
            after = rule.applied_then_failed_outcome
        return FaultPlan(latency, before, after)
