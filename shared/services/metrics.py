"""Metrics endpoints: success, failure and duration statistics per operation over a time window."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from shared.api.schemas import (
    CallsInHour,
    GhlMetrics,
    MetricsWindow,
    OdooMetrics,
    OperationStats,
    QueueDepth,
    RateBudgetOut,
    SystemHealth,
    SystemMetrics,
    WebhookMetrics,
)
from shared.lazy import serial_imports
from shared.queues import APP_QUEUES, POISON_SUFFIX
from shared.store import inbox
from shared.store.schema import appointments, sync_attempts
from shared.work import Work


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


def window(hours: int, now: datetime) -> MetricsWindow:
    return MetricsWindow(hours=hours, desde=now - timedelta(hours=hours), hasta=now)


def webhook_metrics(work: Work, hours: int = 24, now: datetime | None = None) -> WebhookMetrics:
    """GHL webhooks processed in the last `hours`, per event type, from the inbox."""
    span = window(hours, now or work.now())
    with work.transaction() as conn:
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


def _rate_budgets(work: Work) -> dict[str, RateBudgetOut]:
    """Each active location's shared budget (read from Table storage), with the headers this instance saw."""
    with serial_imports:
        from shared.ghl import rate_limits
        from shared.ghl.rate_budget import TableRateBudget
        from shared.ghl.tables import RATE_BUDGET_TABLE, table_client
        from shared.store import locations

    settings = work.settings
    limits = rate_limits(settings)
    budget = TableRateBudget(table_client(settings, RATE_BUDGET_TABLE), limits)
    client = work.ghl
    with work.transaction() as conn:
        active = [loc.ghl_location_id for loc in locations.list_locations(conn, active_only=True)]
    now = time.time()
    result: dict[str, RateBudgetOut] = {}
    for location_id in active:
        state = budget.state(location_id)
        seen = client.last_rate_limit(location_id)
        used = state.used_today if state.day == int(now // limits.day_s) else 0
        result[location_id] = RateBudgetOut(
            max_requests=limits.max_requests,
            interval_s=limits.interval_s,
            daily_limit=limits.daily_limit,
            used_today=used,
            daily_remaining=max(0, limits.daily_limit - used),
            next_slot_in_s=round(max(0.0, state.next_slot_at - now), 3),
            held_for_s=round(max(0.0, state.hold_until - now), 3),
            reported_remaining=seen.remaining if seen else None,
            reported_daily_remaining=seen.daily_remaining if seen else None,
        )
    return result


ODOO_CALLS = "odoo.%"  # the Odoo client's operations (`odoo.<model>.<method>`) beside GHL's in `sync_attempts`


@dataclass(frozen=True)
class _Calls:
    operations: dict[str, OperationStats]
    totals: OperationStats
    responses: dict[str, int]
    timeline: list[CallsInHour]


def _calls(work: Work, since: datetime, hours: int, *, odoo: bool) -> _Calls:
    """GHL's or Odoo's calls since `since` (every attempt, as recorded by the client): per operation, in all, per
    HTTP status (or error code when no status came), and hour by hour over the `hours` of the window."""
    work.flush_call_log()
    whose = sync_attempts.c.operation.like(ODOO_CALLS)
    with work.transaction() as conn:
        rows = conn.execute(
            sa.select(
                sync_attempts.c.operation,
                sync_attempts.c.success,
                sync_attempts.c.duration_ms,
                sync_attempts.c.status_code,
                sync_attempts.c.error_code,
                sync_attempts.c.attempted_at,
            ).where(sync_attempts.c.attempted_at >= since, whose if odoo else ~whose)
        ).all()
    by_operation: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    by_hour: list[list[tuple[bool, float]]] = [[] for _ in range(hours)]
    responses: Counter[str] = Counter()
    for row in rows:
        outcome = (bool(row.success), float(row.duration_ms))
        by_operation[row.operation].append(outcome)
        hour = int((row.attempted_at - since).total_seconds() // 3600)
        by_hour[min(max(hour, 0), hours - 1)].append(outcome)
        responses[str(row.status_code) if row.status_code is not None else str(row.error_code)] += 1
    totals = operation_stats((bool(r.success), float(r.duration_ms)) for r in rows)
    operations = {op: operation_stats(items) for op, items in sorted(by_operation.items())}
    timeline = []
    for index, outcomes in enumerate(by_hour):
        stats = operation_stats(outcomes)
        timeline.append(
            CallsInHour(
                start=since + timedelta(hours=index),
                total_count=stats.total_count,
                failed_count=stats.failed_count,
                success_rate=stats.success_rate,
                p95_duration_ms=stats.p95_duration_ms,
            )
        )
    return _Calls(operations, totals, dict(sorted(responses.items())), timeline)


def ghl_metrics(work: Work, hours: int = 24, now: datetime | None = None) -> GhlMetrics:
    """GHL calls of the last `hours` (every attempt, as recorded by the client), per operation."""
    span = window(hours, now or work.now())
    calls = _calls(work, span.desde, hours, odoo=False)
    return GhlMetrics(
        window=span,
        ghl_operations=calls.operations,
        totals=calls.totals,
        responses=calls.responses,
        ghl_health_percentage=calls.totals.success_rate,
        rate_budget=_rate_budgets(work),
        timeline=calls.timeline,
    )


def odoo_metrics(work: Work, hours: int = 24, now: datetime | None = None) -> OdooMetrics:
    """Odoo calls of the last `hours` (every attempt, as recorded by the client), per model and method."""
    span = window(hours, now or work.now())
    calls = _calls(work, span.desde, hours, odoo=True)
    return OdooMetrics(
        window=span,
        odoo_operations=calls.operations,
        totals=calls.totals,
        responses=calls.responses,
        odoo_health_percentage=calls.totals.success_rate,
    )


def _queue_depths(work: Work) -> dict[str, QueueDepth]:
    queues = work.queues
    return {
        name: QueueDepth(depth=queues.depth(name), poison=queues.depth(name + POISON_SUFFIX)) for name in APP_QUEUES
    }


def _sync_states(work: Work) -> dict[str, int]:
    with work.transaction() as conn:
        rows = conn.execute(
            sa.select(appointments.c.sync_state, sa.func.count()).group_by(appointments.c.sync_state)
        ).all()
    return {state: int(count) for state, count in sorted(rows)}


def system_metrics(work: Work, hours: int = 24, now: datetime | None = None) -> SystemMetrics:
    """Everything an operator looks at first: GHL and Odoo calls, webhooks, health, queues and poison, sync states."""
    moment = now or work.now()
    ghl = ghl_metrics(work, hours, moment)
    odoo = odoo_metrics(work, hours, moment)
    hooks = webhook_metrics(work, hours, moment)
    health = SystemHealth(
        ghl_health_percentage=ghl.ghl_health_percentage,
        webhook_health_percentage=hooks.webhook_health_percentage,
        overall_health=round((ghl.ghl_health_percentage + hooks.webhook_health_percentage) / 2, 2),
    )
    with serial_imports:
        from shared.services.reconcile import reports

    return SystemMetrics(
        window=ghl.window,
        reconciliation=reports.metrics(work),
        ghl_operations=ghl.ghl_operations,
        odoo_operations=odoo.odoo_operations,
        webhooks=hooks.webhooks,
        system_health=health,
        queues=_queue_depths(work),
        sync_states=_sync_states(work),
        rate_budget=ghl.rate_budget,
        ghl_timeline=ghl.timeline,
    )
