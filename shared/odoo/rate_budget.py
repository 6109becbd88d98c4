"""Odoo's rate budget per database (key `odoo:<db>`): the shared machinery (shared.rate_budget), failing with the
Odoo client's errors."""

from __future__ import annotations

from shared import rate_budget
from shared.odoo.errors import OdooRateLimited, OdooUnavailable


class TableRateBudget(rate_budget.TableRateBudget):
    """Shared by every instance of the app through Table storage, as GHL's budgets are."""

    def _contended(self, retry_after: float) -> Exception:
        return OdooRateLimited(retry_after, "rate budget contended")

    def _unavailable(self, detail: str) -> Exception:
        return OdooUnavailable(detail)
