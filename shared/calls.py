"""One HTTP attempt at an outside API (GHL, Odoo) as the metrics record it (`sync_attempts`): no body, no secret."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallRecord:
    """`operation` names the call (`contacts.update`; Odoo's `odoo.res.partner.create`); `location_id` the GHL
    location, or Odoo's rate budget entity (`odoo:<db>`)."""

    operation: str
    location_id: str
    method: str
    path_template: str
    status_code: int | None
    duration_ms: float
    success: bool
    error_code: str | None
    trace_id: str | None
