"""RV3's own tables: the change-capture timer, the therapist ⇄ GHL user mapping, GHL bookings to review, status."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports
from shared.setting_defaults import RV3_POLL_SCHEDULE, schedule

bp = func.Blueprint()
TAG = "rv3"


@bp.timer_trigger(arg_name="timer", schedule=schedule("RV3_POLL_SCHEDULE", RV3_POLL_SCHEDULE))
def rv3_poll(timer: func.TimerRequest) -> None:
    with serial_imports:
        from shared.services import rv3_capture
        from shared.work import Work

    rv3_capture.run(Work.current())


@api_route(
    bp,
    "rv3/therapists",
    methods=["GET"],
    summary="RV3's therapists and the GHL user (and calendar) each one's appointments go to",
    tag=TAG,
    responses={200: "Rv3TherapistList", 409: "ErrorResponse"},
)
def rv3_therapists_list(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import rv3_api
        from shared.work import Work

    return json_response(rv3_api.list_therapists(Work.current()).model_dump(mode="json"))


@api_route(
    bp,
    "rv3/therapists/{id:int}",
    methods=["GET"],
    summary="One RV3 therapist and their GHL user",
    tag=TAG,
    responses={200: "Rv3Therapist", 409: "ErrorResponse"},
)
def rv3_therapists_get(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import rv3_api
        from shared.work import Work

    return json_response(rv3_api.get_therapist(Work.current(), route_id(req)).model_dump(mode="json"))


@api_route(
    bp,
    "rv3/therapists/{id:int}",
    methods=["PUT"],
    summary="Map an RV3 therapist to a GHL user; their upcoming appointments are reassigned in GHL",
    tag=TAG,
    body="Rv3TherapistIn",
    responses={200: "Rv3Therapist", 409: "ErrorResponse", 422: "ErrorResponse"},
)
def rv3_therapists_put(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body, route_id
        from shared.api.schemas import Rv3TherapistIn
        from shared.services import rv3_api
        from shared.work import Work

    therapist = rv3_api.put_therapist(Work.current(), route_id(req), parse_body(req, Rv3TherapistIn))
    return json_response(therapist.model_dump(mode="json"))


@api_route(
    bp,
    "rv3/therapists/{id:int}",
    methods=["DELETE"],
    summary="Forget a therapist's GHL user (the therapist stays in RV3)",
    tag=TAG,
    responses={204: None, 409: "ErrorResponse"},
)
def rv3_therapists_delete(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services import rv3_api
        from shared.work import Work

    rv3_api.delete_therapist(Work.current(), route_id(req))
    return func.HttpResponse(status_code=204)


@api_route(
    bp,
    "rv3/review",
    methods=["GET"],
    summary="GHL bookings waiting for the front desk to name their RV3 patient",
    tag=TAG,
    responses={200: "Rv3ReviewList", 409: "ErrorResponse"},
)
def rv3_review_list(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import rv3_api
        from shared.work import Work

    return json_response(rv3_api.list_reviews(Work.current()).model_dump(mode="json"))


@api_route(
    bp,
    "rv3/review/{id:int}/resolve",
    methods=["POST"],
    summary="Link a GHL booking to an RV3 patient; the appointment is created in RV3",
    tag=TAG,
    body="Rv3ResolveIn",
    responses={200: "Rv3Review", 409: "ErrorResponse", 422: "ErrorResponse"},
)
def rv3_review_resolve(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body, route_id
        from shared.api.schemas import Rv3ResolveIn
        from shared.services import rv3_api
        from shared.work import Work

    review = rv3_api.resolve_review(Work.current(), route_id(req), parse_body(req, Rv3ResolveIn))
    return json_response(review.model_dump(mode="json"))


@api_route(
    bp,
    "rv3/status",
    methods=["GET"],
    summary="Where the sync with RV3's tables stands: last run, error, cursors, backlog",
    tag=TAG,
    responses={200: "Rv3SyncStatus"},
)
def rv3_status(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import rv3_api
        from shared.work import Work

    return json_response(rv3_api.status(Work.current()).model_dump(mode="json"))


@api_route(
    bp,
    "rv3/statuses",
    methods=["GET"],
    summary="RV3's appointment statuses, what each means to the sync, and which ones RV3 lacks",
    tag=TAG,
    responses={200: "Rv3StatusList", 409: "ErrorResponse", 503: "ErrorResponse"},
)
def rv3_statuses_get(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import rv3_api
        from shared.work import Work

    return json_response(rv3_api.list_statuses(Work.current()).model_dump(mode="json"))


@api_route(
    bp,
    "rv3/statuses",
    methods=["PUT"],
    summary="Say what each RV3 status means (checked against RV3's statuses); rows whose meaning changed are synced",
    tag=TAG,
    body="Rv3StatusMapIn",
    responses={200: "Rv3StatusList", 409: "ErrorResponse", 422: "ErrorResponse", 503: "ErrorResponse"},
)
def rv3_statuses_put(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body
        from shared.api.schemas import Rv3StatusMapIn
        from shared.services import rv3_api
        from shared.work import Work

    statuses = rv3_api.put_statuses(Work.current(), parse_body(req, Rv3StatusMapIn))
    return json_response(statuses.model_dump(mode="json"))
