"""MiaSalud leads: ManyChat's two intake routes (X-API-KEY), the queue workers that keep the records, the held sweep."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports
from shared.setting_defaults import MANYCHAT_HELD_SWEEP_SCHEDULE, schedule

bp = func.Blueprint()
TAG = "manychat"
INTAKE_RESPONSES = {202: "ManychatAck", 413: "ErrorResponse", 422: "ErrorResponse", 503: "ErrorResponse"}


@api_route(
    bp,
    "v1/manychat/webhook/contact",
    methods=["POST"],
    summary="ManyChat: a new or updated lead (seed body); validated, queued, answered 202 at once",
    tag=TAG,
    body="ManychatContactIn",
    responses=INTAKE_RESPONSES,
    api_key=True,
)
async def manychat_contact(req: func.HttpRequest) -> func.HttpResponse:
    return await _receive(req, "manychat-contact")


@api_route(
    bp,
    "v1/manychat/webhook/campaign-assignment",
    methods=["POST"],
    summary="ManyChat: a lead assigned to a campaign and its advisors (seed body); validated, queued, answered 202",
    tag=TAG,
    body="ManychatCampaignIn",
    responses=INTAKE_RESPONSES,
    api_key=True,
)
async def manychat_campaign_assignment(req: func.HttpRequest) -> func.HttpResponse:
    return await _receive(req, "manychat-campaign")


async def _receive(req: func.HttpRequest, queue: str) -> func.HttpResponse:
    with serial_imports:
        from shared.services.miasalud import intake
        from shared.work import Work

    receipt = await intake.receive(Work.current(), intake.INTAKES[queue], req.get_body() or b"")
    return json_response(receipt.body(), status=202)


@bp.queue_trigger(arg_name="msg", queue_name="manychat-contact", connection="AzureWebJobsStorage")
def manychat_contact_worker(msg: func.QueueMessage) -> None:
    with serial_imports:
        from shared.services.miasalud import records
        from shared.triggers import run_queue_message

    run_queue_message("manychat-contact", msg, records.process_contact)


@bp.queue_trigger(arg_name="msg", queue_name="manychat-campaign", connection="AzureWebJobsStorage")
def manychat_campaign_worker(msg: func.QueueMessage) -> None:
    with serial_imports:
        from shared.services.miasalud import records
        from shared.triggers import run_queue_message

    run_queue_message("manychat-campaign", msg, records.process_campaign)


@bp.timer_trigger(arg_name="timer", schedule=schedule("MANYCHAT_HELD_SWEEP_SCHEDULE", MANYCHAT_HELD_SWEEP_SCHEDULE))
def manychat_held_sweep(timer: func.TimerRequest) -> None:
    with serial_imports:
        from shared.services.miasalud import intake
        from shared.work import Work

    work = Work.current()
    if work.settings.manychat_keys:  # the integration is off: nothing can have been held
        intake.requeue_held(work)
