"""How an Odoo failure is reported to an API caller (one mapping for every route that calls Odoo): never a 500."""

from __future__ import annotations

import math

from shared.http import ApiError
from shared.odoo.errors import (
    OdooAccessDenied,
    OdooAuthFailed,
    OdooConflict,
    OdooError,
    OdooMissingRecord,
    OdooOutcomeUnknown,
    OdooRateLimited,
    OdooUnavailable,
    OdooValidationError,
)

RETRY_AFTER_S = 5


def require_odoo(configured: bool) -> None:
    """409 when ODOO_URL is not set: the route has no Odoo to talk to (the leads stay in SQL meanwhile)."""
    if not configured:
        raise ApiError(409, "odoo_not_configured", "Odoo no está configurado (ODOO_URL): los registros quedan en SQL.")


OUTCOME_UNKNOWN = (
    "Odoo no respondió a tiempo a la escritura: puede haberse guardado. Consulte el registro antes de repetirla."
)
UNAVAILABLE = "Odoo no está disponible en este momento; no se cambió nada. Intente de nuevo en unos segundos."
# Status, code and Spanish message (None: the error's own reason) per client error, subclasses before their bases.
_ANSWERS: tuple[tuple[type[OdooError], int, str, str | None], ...] = (
    (OdooAuthFailed, 502, "", None),  # odoo_auth_failed, odoo_database_not_found: the integration's settings
    (OdooAccessDenied, 502, "odoo_access_denied", None),
    (OdooOutcomeUnknown, 504, "odoo_outcome_unknown", OUTCOME_UNKNOWN),
    (OdooConflict, 503, "odoo_conflict", UNAVAILABLE),
    (OdooUnavailable, 503, "odoo_unavailable", UNAVAILABLE),
)


def api_error_from_odoo(exc: OdooError, *, not_found: str = "El registro no existe en Odoo.") -> ApiError:
    """404 a record Odoo does not have; 422 data Odoo refused; 502 Odoo refusing the integration itself
    (credentials, rights, a missing field); 503 nothing was changed and a retry may work; 504 a write was sent and
    its answer lost (look before trying again)."""
    if isinstance(exc, OdooMissingRecord):
        return ApiError(404, "odoo_record_not_found", not_found)
    if isinstance(exc, OdooValidationError):
        if exc.unknown_field:
            return ApiError(502, "odoo_field_missing", exc.reason)
        return ApiError(422, "odoo_rejected", exc.reason)
    if isinstance(exc, OdooRateLimited):
        wait = max(1, math.ceil(exc.retry_after))
        return ApiError(503, "odoo_rate_limited", exc.reason, headers={"Retry-After": str(wait)})
    for kind, status, code, message in _ANSWERS:
        if isinstance(exc, kind):
            headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
            return ApiError(status, code or f"odoo_{exc.code}", message or exc.reason, headers=headers)
    return ApiError(502, "odoo_error", "Odoo respondió un error inesperado; no se cambió nada.")
