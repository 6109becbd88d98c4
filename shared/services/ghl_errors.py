"""How a GHL failure is reported to an API caller (one mapping for every endpoint that calls GHL)."""

from __future__ import annotations

import math

from shared.ghl.errors import AuthExpired, Forbidden, GhlError, Invalid, NotFound, RateLimited
from shared.http import ApiError


def api_error_from_ghl(exc: GhlError, *, not_found: str = "El recurso no existe en GoHighLevel.") -> ApiError:
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after))
        return ApiError(
            429,
            "ghl_rate_limited",
            f"GoHighLevel limitó las solicitudes; reintente en {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, AuthExpired | Forbidden):
        # Not an outage to wait out: the location must be connected again (409, the caller can fix it).
        return ApiError(
            409,
            "ghl_auth_failed",
            "No se pudo autenticar con GoHighLevel: reinstale la app o revise el token de la sede.",
        )
    if isinstance(exc, NotFound):
        return ApiError(404, "ghl_not_found", not_found)
    if isinstance(exc, Invalid):
        return ApiError(422, "ghl_rejected", "GoHighLevel rechazó la solicitud.", details=list(exc.details))
    return ApiError(503, "ghl_unavailable", "GoHighLevel no está disponible en este momento; reintente más tarde.")
