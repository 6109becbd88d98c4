"""What no route serves: 405 with `Allow` for a method the route does not take, else 404, in the API's error shape."""

import azure.functions as func

from shared.http import ApiError, http_endpoint
from shared.lazy import serial_imports

bp = func.Blueprint()


@bp.route(route="{*path}", auth_level=func.AuthLevel.ANONYMOUS)
@http_endpoint
async def route_fallback(req: func.HttpRequest) -> func.HttpResponse:
    # Anonymous: it only tells whether a route exists, as the OpenAPI document does. Async: it holds no thread.
    with serial_imports:
        from shared.api.routing import allowed_methods

    allowed = allowed_methods(req.route_params.get("path", "").strip("/"))
    if allowed and req.method.upper() not in allowed:
        raise ApiError(
            405,
            "method_not_allowed",
            f"Método no permitido en esta ruta; use {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )
    raise ApiError(404, "not_found", "La ruta no existe.")
