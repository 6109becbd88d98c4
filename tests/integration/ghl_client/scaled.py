"""GHL's burst limit scaled down in time (100 per 4 s instead of per 10 s) so the budget tests run fast."""

from sync_core.rate_budget import BudgetLimits

SCALED_MAX = 100
SCALED_INTERVAL_MS = 4000
# The window is scaled, the slack is not. The slack absorbs the time between taking a slot and the request's
# arrival being counted, and that time is scheduling jitter, which does not shrink with the window: here the
# sandbox runs in the test process, so its handler waits for the GIL behind the six client threads. At the
# production utilization (3% of the window) a 4 s window left 120 ms, and a busy 2-core CI machine once went past
# it (one 429 in 300 requests); a 1 s window (30 ms) failed more often. So the scaled budget keeps production's
# 300 ms (3% of 10 s): the test is then exactly as tolerant of jitter as a host in production, no more.
PRODUCTION_SLACK_S = BudgetLimits().slack_s
SCALED_LIMITS = BudgetLimits(
    max_requests=SCALED_MAX,
    interval_s=SCALED_INTERVAL_MS / 1000,
    utilization=1 - PRODUCTION_SLACK_S / (SCALED_INTERVAL_MS / 1000),
)
SANDBOX_SCALED = {"max_requests": SCALED_MAX, "interval_ms": SCALED_INTERVAL_MS}
