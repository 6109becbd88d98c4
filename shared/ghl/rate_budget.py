"""GHL's per-location rate budgets: the shared machinery (shared.rate_budget), failing with GHL's errors."""

from __future__ import annotations

from shared import rate_budget
from shared.ghl.errors import RateLimited, Unavailable
from shared.rate_budget import MemoryRateBudget, RateBudget


class TableRateBudget(rate_budget.TableRateBudget):
    """Keyed by GHL location id; a contended or unreachable budget is a GHL error its callers already retry."""

    def _contended(self, retry_after: float) -> Exception:
        return RateLimited(retry_after, "rate budget contended")

    def _unavailable(self, detail: str) -> Exception:
        return Unavailable(detail)


__all__ = ["MemoryRateBudget", "RateBudget", "TableRateBudget"]
