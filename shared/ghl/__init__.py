"""GoHighLevel adapter: API client, tokens, rate budget and OAuth install; `build_client` wires them from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import serial_imports

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.calls import CallRecord
    from shared.ghl.client import GhlClient, TokenProvider
    from shared.settings import Settings
    from sync_core.rate_budget import BudgetLimits


def rate_limits(settings: Settings) -> BudgetLimits:
    """GHL's per-location limits as configured (scaled down to match a sandbox in tests and benchmarks)."""
    with serial_imports:
        from sync_core.rate_budget import BudgetLimits

    return BudgetLimits(
        max_requests=settings.ghl_rate_limit_max,
        interval_s=settings.ghl_rate_limit_interval_ms / 1000,
        daily_limit=settings.ghl_rate_limit_daily,
    )


def token_provider(settings: Settings) -> TokenProvider:
    """The private-integration token when GHL_PRIVATE_TOKEN is set, else the OAuth tokens of installed locations."""
    if settings.ghl_private_token and settings.ghl_location_id:
        with serial_imports:
            from shared.ghl.tokens import PrivateTokenProvider

        return PrivateTokenProvider(settings.ghl_private_token, settings.ghl_location_id)
    with serial_imports:
        from shared.ghl.oauth import OAuthApp
        from shared.ghl.tables import TOKENS_TABLE, table_client
        from shared.ghl.token_store import TokenStore
        from shared.ghl.tokens import OAuthTokenProvider

    return OAuthTokenProvider(TokenStore(table_client(settings, TOKENS_TABLE)), OAuthApp.from_settings(settings))


def build_client(settings: Settings, *, on_call: Callable[[CallRecord], None] | None = None) -> GhlClient:
    """The GHL client of this process: its token provider and the rate budget shared in Table storage."""
    with serial_imports:
        from shared.ghl.client import GhlClient
        from shared.ghl.rate_budget import TableRateBudget
        from shared.ghl.tables import RATE_BUDGET_TABLE, table_client

    budget = TableRateBudget(table_client(settings, RATE_BUDGET_TABLE), rate_limits(settings))
    return GhlClient(settings.ghl_base_url, token_provider(settings), budget, on_call=on_call)
