"""GHL's burst limit scaled down in time (100 per 4 s instead of per 10 s) so the budget tests run fast."""

from sync_core.rate_budget import BudgetLimits

SCALED_MAX = 100
# GHL's 100 requests / 10 s scaled to 100 / 4 s: same shape. The pacing keeps 3% of the window as slack against
# scheduling jitter between taking a slot and sending (300 ms in production); 120 ms holds on a busy 2-core
# machine where 30 ms (a 1 s window) did not, once a process's first call no longer loads telemetry after its slot
# (~100-250 ms: it pushed the first calls of each host past the slack, and the first window over the limit).
SCALED_INTERVAL_MS = 4000
SCALED_LIMITS = BudgetLimits(max_requests=SCALED_MAX, interval_s=SCALED_INTERVAL_MS / 1000)
SANDBOX_SCALED = {"max_requests": SCALED_MAX, "interval_ms": SCALED_INTERVAL_MS}
