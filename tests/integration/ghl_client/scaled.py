"""GHL's burst limit scaled down in time (100 per 1 s instead of per 10 s) so the budget tests run fast."""

from sync_core.rate_budget import BudgetLimits

SCALED_MAX = 100
SCALED_INTERVAL_MS = 1000
SCALED_LIMITS = BudgetLimits(max_requests=SCALED_MAX, interval_s=SCALED_INTERVAL_MS / 1000)
SANDBOX_SCALED = {"max_requests": SCALED_MAX, "interval_ms": SCALED_INTERVAL_MS}
