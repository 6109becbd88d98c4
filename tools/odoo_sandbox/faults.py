"""Seeded fault decisions per call: the rules of FaultConfig, in order, each for the calls it matches."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import FaultConfig, FaultKind, FaultRule
from .orm import WRITE_METHODS

# Faults that need an authenticated ORM call, or a change of data, to mean anything.
_ORM_ONLY = {"access_error", "serialization_failure"}
_WRITES_ONLY = {"validation_error", "applied_then_dropped"}


@dataclass(frozen=True)
class CallSite:
    """What a rule is matched against: `model` is empty for the `common` service and /web/version."""

    protocol: str
    model: str
    method: str
    authenticated: bool  # the call carries credentials (every call but version)

    @property
    def write(self) -> bool:
        return bool(self.model) and self.method in WRITE_METHODS


@dataclass(frozen=True)
class FaultPlan:
    delay_s: float = 0.0
    kind: FaultKind | None = None
    status: int = 503  # of a server_error


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._seen = [0] * len(config.rules)

    def add(self, rule: FaultRule) -> None:
        self.config.rules.append(rule)
        self._seen.append(0)

    def plan(self, site: CallSite) -> FaultPlan:
        """The first rule that fires decides the fault; every slow rule that fires adds its delay. One number is
        drawn per matching rule and call, so a seed replays the same faults for the same calls."""
        delay = 0.0
        chosen: FaultRule | None = None
        for index, rule in enumerate(self.config.rules):
            if not _matches(rule, site):
                continue
            seen = self._seen[index]
            self._seen[index] += 1
            draw = self._rng.random()
            if seen < rule.after:
                continue
            fires = seen < rule.after + rule.count if rule.count is not None else draw < rule.probability
            if not fires:
                continue
            delay += rule.delay_ms / 1000
            if rule.kind != "slow" and chosen is None:
                chosen = rule
        if chosen is None:
            return FaultPlan(delay)
        return FaultPlan(delay, chosen.kind, chosen.status)


def _matches(rule: FaultRule, site: CallSite) -> bool:
    if rule.protocols and site.protocol not in rule.protocols:
        return False
    if rule.models and site.model not in rule.models:
        return False
    if rule.methods and site.method not in rule.methods:
        return False
    if rule.kind == "access_denied" and not site.authenticated:
        return False
    if rule.kind in _ORM_ONLY and not site.model:
        return False
    return not (rule.kind in _WRITES_ONLY and not site.write)
