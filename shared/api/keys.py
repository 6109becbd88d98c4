"""The MiaSalud wing's key: `X-API-KEY` against `MANYCHAT_API_KEYS`, compared in constant time.

ManyChat signs nothing; its External Request step sends the headers the flow's author sets, so MiaSalud's routes
are anonymous for the host and checked here. While the setting is empty the integration is off and its routes
say so (`integration_disabled`) instead of pretending not to exist.
"""

from __future__ import annotations

import hmac

import azure.functions as func

from shared.http import ApiError
from shared.lazy import serial_imports

API_KEY_HEADER = "X-API-KEY"


def require_api_key(req: func.HttpRequest) -> None:
    """Return when the request carries one of the configured keys; raise the ApiError to answer otherwise."""
    with serial_imports:
        from shared import runtime

    keys = runtime.settings().manychat_keys
    if not keys:
        raise ApiError(
            404, "integration_disabled", "La integración MiaSalud (ManyChat) no está activada en este servicio."
        )
    given = (req.headers.get(API_KEY_HEADER) or "").strip().encode("utf-8", "replace")
    matched = False
    for key in keys:  # every key compared, whichever matches: the time taken tells nothing
        matched |= hmac.compare_digest(given, key.encode())
    if not matched:
        raise ApiError(401, "invalid_api_key", "Falta la cabecera X-API-KEY o la clave no es válida.")
