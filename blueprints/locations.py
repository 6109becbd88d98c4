"""Location settings and calendars endpoints (SPEC §3): CRUD, default calendar, calendar cache."""

import azure.functions as func

from shared.api.routing import GHL_FAILURES, api_route
from shared.http import json_response
from shared.lazy import serial_imports

bp = func.Blueprint()
TAG = "locations"


@api_route(
    bp,
    "locations/settings",
    methods=["GET"],
    summary="List location settings",
    tag=TAG,
    responses={200: "LocationList"},
)
def locations_list(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import locations
        from shared.work import Work

    return json_response(locations.list_settings(Work.current()).model_dump(mode="json"))


@api_route(
    bp,
    "locations/settings",
    methods=["POST"],
    summary="Create the settings of a location",
    tag=TAG,
    body="LocationSettingsIn",
    responses={201: "LocationSettings", 409: "ErrorResponse", 422: "ErrorResponse"},
)
def locations_create(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body
        from shared.api.schemas import LocationSettingsIn
        from shared.services import locations
        from shared.work import Work

    created = locations.create_settings(Work.current(), parse_body(req, LocationSettingsIn))
    return json_response(created.model_dump(mode="json"), status=201)


@api_route(
    bp,
    "locations/settings/active_locations",
    methods=["GET"],
    summary="Active locations",
    tag=TAG,
    responses={200: "LocationList"},
)
def locations_active(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import locations
        from shared.work import Work

    return json_response(locations.list_settings(Work.current(), active_only=True).model_dump(mode="json"))


@api_route(
    bp,
    "locations/settings/{id:int}",
    methods=["GET"],
    summary="Settings of one location",
    tag=TAG,
    responses={200: "LocationSettings"},
)
def locations_get(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import locations
        from shared.work import Work

    return json_response(locations.get_settings(Work.current(), route_id(req)).model_dump(mode="json"))


@api_route(
    bp,
    "locations/settings/{id:int}",
    methods=["PUT"],
    summary="Replace the settings of a location",
    tag=TAG,
    body="LocationSettingsIn",
    responses={200: "LocationSettings", 409: "ErrorResponse", 422: "ErrorResponse"},
)
def locations_update(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body, route_id
        from shared.api.schemas import LocationSettingsIn
        from shared.services import locations
        from shared.work import Work

    updated = locations.update_settings(Work.current(), route_id(req), parse_body(req, LocationSettingsIn))
    return json_response(updated.model_dump(mode="json"))


@api_route(
    bp,
    "locations/settings/{id:int}",
    methods=["DELETE"],
    summary="Delete a location without appointments (otherwise deactivate it)",
    tag=TAG,
    responses={204: None, 409: "ErrorResponse"},
)
def locations_delete(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import locations
        from shared.work import Work

    locations.delete_settings(Work.current(), route_id(req))
    return func.HttpResponse(status_code=204)


@api_route(
    bp,
    "locations/settings/{id:int}/set_default_calendar",
    methods=["POST"],
    summary="Set the default calendar (must exist and be active in that location)",
    tag=TAG,
    body="DefaultCalendarIn",
    responses={**GHL_FAILURES, 200: "LocationSettings"},
)
def locations_set_default_calendar(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body, route_id
        from shared.api.schemas import DefaultCalendarIn
        from shared.services import locations
        from shared.work import Work

    body = parse_body(req, DefaultCalendarIn)
    updated = locations.set_default_calendar(Work.current(), route_id(req), body.calendar_id)
    return json_response(updated.model_dump(mode="json"))


@api_route(
    bp,
    "locations/settings/{id:int}/calendars",
    methods=["GET"],
    summary="Calendars of a location (cached from GHL)",
    tag=TAG,
    responses={**GHL_FAILURES, 200: "CalendarList"},
)
def locations_calendars(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import locations
        from shared.work import Work

    return json_response(locations.calendars(Work.current(), route_id(req)).model_dump(mode="json"))


@api_route(
    bp,
    "locations/settings/{id:int}/sync_calendars",
    methods=["POST"],
    summary="Refresh the calendars of a location from GHL",
    tag=TAG,
    responses={**GHL_FAILURES, 200: "CalendarList"},
)
def locations_sync_calendars(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import locations
        from shared.work import Work

    return json_response(locations.calendars(Work.current(), route_id(req), refresh=True).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/calendars",
    methods=["GET"],
    summary="GHL calendars of a location (cached in SQL; refresh=true to re-read GHL)",
    tag="calendars",
    query="CalendarsQuery",
    responses={**GHL_FAILURES, 200: "CalendarList"},
)
def ghl_calendars(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_query
        from shared.api.schemas import CalendarsQuery
        from shared.services import locations
        from shared.work import Work

    query = parse_query(req, CalendarsQuery)
    found = locations.ghl_calendars(Work.current(), query.location_id, refresh=query.refresh)
    return json_response(found.model_dump(mode="json"))
