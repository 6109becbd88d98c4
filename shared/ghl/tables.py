"""Azure Table storage of the GHL adapters: its OAuth tokens, and the shared tables module's rate budgets."""

from __future__ import annotations

from shared.tables import RATE_BUDGET_TABLE, ensure_table, table_client

TOKENS_TABLE = "ghltokens"

__all__ = ["RATE_BUDGET_TABLE", "TOKENS_TABLE", "ensure_table", "table_client"]
