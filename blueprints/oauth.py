"""Marketplace OAuth install: the authorize redirect (function key) and GHL's callback (anonymous, signed state)."""

import html

import azure.functions as func

from shared.api.routing import api_route
from shared.http import ApiError, json_response
from shared.lazy import serial_imports

bp = func.Blueprint()
TAG = "oauth"


@api_route(
    bp,
    "ghl/oauth/authorize",
    methods=["GET"],
    summary="Start the marketplace install: redirect to GHL's location chooser with a signed state",
    tag=TAG,
    responses={302: None},
)
def ghl_oauth_authorize(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.ghl.install import authorize_url
        from shared.settings import get_settings

    location = authorize_url(get_settings(), req.url)
    return func.HttpResponse(status_code=302, headers={"Location": location, "Cache-Control": "no-store"})


@api_route(
    bp,
    "ghl/oauth/callback",
    methods=["GET"],
    summary="GHL's OAuth redirect: verifies the state, stores the location's tokens (HTML page, or JSON)",
    tag=TAG,
    anonymous=True,
    query="OAuthCallbackQuery",
    responses={200: None, 400: "ErrorResponse"},
)
def ghl_oauth_callback(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared import runtime
        from shared.api.requests import parse_query
        from shared.api.schemas import OAuthCallbackQuery
        from shared.ghl.install import Installer
        from shared.settings import get_settings

    query = parse_query(req, OAuthCallbackQuery)
    if query.error:
        raise ApiError(400, "install_denied", "La instalación fue cancelada o rechazada en GHL.")
    with Installer.from_settings(get_settings(), runtime.database()) as installer:
        done = installer.complete(code=query.code, state=query.state, request_url=req.url)
    if "application/json" in req.headers.get("accept", ""):
        body = {"status": "installed", "location_id": done.location_id, "name": done.name, "timezone": done.timezone}
        return json_response(body)
    page = (
        "<!doctype html><html lang='es'><head><meta charset='utf-8'><title>Instalación completada</title></head>"
        f"<body><h1>Instalación completada</h1><p>La sede <strong>{html.escape(done.name)}</strong> "
        f"({html.escape(done.location_id)}) ya está conectada con Reflexo. Puede cerrar esta ventana.</p></body></html>"
    )
    return func.HttpResponse(page, status_code=200, mimetype="text/html", charset="utf-8")
