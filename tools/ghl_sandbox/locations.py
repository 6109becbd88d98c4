"""Locations API (Version 2021-07-28): the one read the product needs, GET /locations/{locationId}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .endpoints import CONTACTS_VERSION, Endpoint
from .render import location_dto
from .sandbox import require_location, sandbox_of


async def get_location(request: Request) -> Response:
    sandbox = sandbox_of(request)
    location_id = request.path_params["locationId"]
    require_location(request, location_id)
    location = sandbox.state.locations.get(location_id)
    if location is None:
        raise sandbox.not_found("Location not found")
    return JSONResponse({"location": location_dto(location)})


ENDPOINTS = [Endpoint("GET", "/locations/{locationId}", get_location, CONTACTS_VERSION, "locations.readonly")]
