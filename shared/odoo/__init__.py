"""Odoo adapter (MiaSalud's CRM): one client over JSON-RPC or JSON-2 (ODOO_PROTOCOL), paced at ODOO_RATE_PER_S by a
rate budget every instance shares, with errors callers can act on; `python -m shared.odoo check` sets it up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import serial_imports

if TYPE_CHECKING:
    from sync_core.rate_budget import BudgetLimits

# Odoo publishes no daily limit: the budget's day counter is kept, never reached.
NO_DAILY_LIMIT = 10**12


def budget_key(db: str) -> str:
    """The database's entity in the shared rate budget table (beside GHL's location ids)."""
    return f"odoo:{db}"


def rate_limits(rate_per_s: float) -> BudgetLimits:
    """One call every 1/ODOO_RATE_PER_S seconds, across every instance of the app."""
    with serial_imports:
        from sync_core.rate_budget import BudgetLimits

    return BudgetLimits(max_requests=1, interval_s=1 / rate_per_s, daily_limit=NO_DAILY_LIMIT, utilization=1.0)
