"""Citas (appointments) API of SPEC §3: list, create, detail, full update, cancel, upcoming."""

import azure.functions as func

from shared.api.routing import GHL_FAILURES, Header, api_route
from shared.http import json_response
from shared.lazy import serial_imports

bp = func.Blueprint()
TAG = "citas"
IDEMPOTENCY = Header(
    "Idempotency-Key",
    "Repeat a create safely: the first result is returned for the same key",
    {"type": "string", "maxLength": 200},
)
IF_MATCH = Header(
    "If-Match",
    'The version you edited, e.g. "3" (or *); a stale version gets 412',
    {"type": "string", "pattern": '^(\\*|(W/)?"?[0-9]{1,9}"?)?$'},
)


def _cita_response(cita: object, status: int = 200, correlation: str | None = None) -> func.HttpResponse:
    body = cita.model_dump(mode="json")  # type: ignore[attr-defined]
    headers = {"ETag": f'"{body["version"]}"'}
    if correlation:
        headers["x-correlation-id"] = correlation
    return json_response(body, status=status, headers=headers)


@api_route(
    bp,
    "ghl/citas",
    methods=["GET"],
    summary="List appointments (filters: page, page_size, status, desde, hasta, location_id, sync_state)",
    tag=TAG,
    query="CitasQuery",
    responses={200: "CitaList", 404: "ErrorResponse", 422: "ErrorResponse"},
)
def citas_list(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_query
        from shared.api.schemas import CitasQuery
        from shared.services import citas
        from shared.work import Work

    return json_response(citas.list_citas(Work.current(), parse_query(req, CitasQuery)).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/citas",
    methods=["POST"],
    summary="Create an appointment; it is synced to GHL in the background (sync_state)",
    tag=TAG,
    body="CitaIn",
    headers=[IDEMPOTENCY],
    responses={**GHL_FAILURES, 200: "Cita", 201: "Cita", 409: "ErrorResponse"},
)
def citas_create(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import correlation_id, idempotency_key, parse_body
        from shared.api.schemas import CitaIn
        from shared.services import citas
        from shared.work import Work

    correlation = correlation_id(req)
    status, body = citas.create(
        Work.current(), parse_body(req, CitaIn), idempotency_key=idempotency_key(req), correlation_id=correlation
    )
    headers = {"ETag": f'"{body["version"]}"', "x-correlation-id": correlation}
    return json_response(body, status=status, headers=headers)


@api_route(
    bp,
    "ghl/citas/upcoming",
    methods=["GET"],
    summary="Next appointments from now, in start order",
    tag=TAG,
    query="UpcomingQuery",
    responses={200: "CitaList", 404: "ErrorResponse", 422: "ErrorResponse"},
)
def citas_upcoming(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_query
        from shared.api.schemas import UpcomingQuery
        from shared.services import citas
        from shared.work import Work

    return json_response(citas.upcoming(Work.current(), parse_query(req, UpcomingQuery)).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/citas/{id:int}",
    methods=["GET"],
    summary="One appointment, with its GHL event id, sync_state, last_error and version",
    tag=TAG,
    responses={200: "Cita"},
)
def citas_get(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import citas
        from shared.work import Work

    return _cita_response(citas.get(Work.current(), route_id(req)))


@api_route(
    bp,
    "ghl/citas/{id:int}",
    methods=["PUT"],
    summary="Replace an appointment (reschedule, retitle, status); If-Match supported",
    tag=TAG,
    body="CitaUpdateIn",
    headers=[IF_MATCH],
    responses={**GHL_FAILURES, 200: "Cita", 409: "ErrorResponse", 412: "ErrorResponse"},
)
def citas_update(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import correlation_id, if_match_version, parse_body, route_id
        from shared.api.schemas import CitaUpdateIn
        from shared.services import citas
        from shared.work import Work

    correlation = correlation_id(req)
    cita = citas.update(
        Work.current(),
        route_id(req),
        parse_body(req, CitaUpdateIn),
        if_match=if_match_version(req),
        correlation_id=correlation,
    )
    return _cita_response(cita, correlation=correlation)


@api_route(
    bp,
    "ghl/citas/{id:int}/cancel",
    methods=["POST"],
    summary="Cancel an appointment (idempotent); GHL keeps the event as cancelled",
    tag=TAG,
    headers=[IF_MATCH],
    responses={200: "Cita", 409: "ErrorResponse", 412: "ErrorResponse"},
)
def citas_cancel(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import correlation_id, if_match_version, route_id
        from shared.services import citas
        from shared.work import Work

    correlation = correlation_id(req)
    cita = citas.cancel(Work.current(), route_id(req), if_match=if_match_version(req), correlation_id=correlation)
    return _cita_response(cita, correlation=correlation)


@api_route(
    bp,
    "ghl/citas/{id:int}/retry",
    methods=["POST"],
    summary="Send an appointment whose sync failed (sync_state error) to GHL again, as it is now",
    tag=TAG,
    responses={202: "Cita", 409: "ErrorResponse"},
)
def citas_retry(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import correlation_id, route_id
        from shared.services import citas
        from shared.work import Work

    correlation = correlation_id(req)
    cita = citas.retry(Work.current(), route_id(req), correlation_id=correlation)
    return _cita_response(cita, status=202, correlation=correlation)


@api_route(
    bp,
    "ghl/citas/{id:int}/history",
    methods=["GET"],
    summary="An appointment's changes on their way to GHL (newest first), and where its sync stands",
    tag=TAG,
    responses={200: "CitaHistory"},
)
def citas_history(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import citas
        from shared.work import Work

    return json_response(citas.history(Work.current(), route_id(req)).model_dump(mode="json"))
