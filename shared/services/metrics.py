"""Metrics endpoints: success, failure and duration statistics per operation over a time window."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from shared import runtime
from shared.api.schemas import MetricsWindow, OperationStats, WebhookMetrics
from shared.store import inbox


def operation_stats(outcomes: Iterable[tuple[bool, float]]) -> OperationStats:
    """Counts, success rate (%), mean and p95 (nearest rank) duration of (success, duration_ms) outcomes."""
    items = list(outcomes)
    durations = sorted(duration for _, duration in items)
    successes = sum(1 for success, _ in items if success)
    total = len(items)
    return OperationStats(
        success_count=successes,
        failed_count=total - successes,
        total_count=total,
        success_rate=round(100.0 * successes / total, 2) if total else 100.0,
        avg_duration_ms=round(sum(durations) / total, 2) if total else 0.0,
        p95_duration_ms=round(durations[math.ceil(0.95 * total) - 1], 2) if total else 0.0,
    )


def window(hours: int, now: datetime | None = None) -> MetricsWindow:
    end = now or datetime.now(UTC)
    return MetricsWindow(hours=hours, desde=end - timedelta(hours=hours), hasta=end)


def webhook_metrics(hours: int = 24, now: datetime | None = None) -> WebhookMetrics:
    """GHL webhooks processed in the last `hours`, per event type, from the inbox."""
    span = window(hours, now)
    with runtime.database().transaction() as conn:
        samples = inbox.samples_since(conn, span.desde)
    by_type: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for sample in samples:
        by_type[sample.event_type].append((sample.success, sample.duration_ms))
    totals = operation_stats((s.success, s.duration_ms) for s in samples)
    return WebhookMetrics(
        window=span,
        webhooks={event_type: operation_stats(items) for event_type, items in sorted(by_type.items())},
        totals=totals,
        webhook_health_percentage=totals.success_rate,
    )
