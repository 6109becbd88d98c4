"""GHL → RV3: the signed webhook intake (anonymous HTTP) and the `ghl-to-rv3` queue worker that applies it."""

import azure.functions as func

from shared.api.routing import Header, api_route
from shared.http import json_response
from shared.lazy import serial_imports

bp = func.Blueprint()


@api_route(
    bp,
    "webhooks/ghl",
    methods=["POST"],
    summary="GHL webhook target: verified (X-GHL-Signature, else x-wh-signature), queued, answered at once",
    tag="webhooks",
    body="GhlWebhookIn",
    headers=[
        Header("X-GHL-Signature", "Ed25519 signature of the raw body, base64 (GHL's current scheme)"),
        Header("x-wh-signature", "Legacy RSA-SHA256 signature of the raw body, base64"),
    ],
    responses={
        200: "WebhookAck",
        400: "ErrorResponse",
        401: "ErrorResponse",
        413: "ErrorResponse",
        429: "ErrorResponse",
    },
    anonymous=True,
)
async def ghl_webhook(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import inbound, webhook_intake
        from shared.work import Work

    receipt = await webhook_intake.receive(
        Work.current(), req.get_body() or b"", req.headers, apply_at_once=inbound.apply_if_echo
    )
    return json_response({"status": receipt.status, "event_type": receipt.event_type})


@bp.queue_trigger(arg_name="msg", queue_name="ghl-to-rv3", connection="AzureWebJobsStorage")
def ghl_to_rv3(msg: func.QueueMessage) -> None:
    with serial_imports:
        from shared.services import inbound
        from shared.triggers import run_queue_message

    run_queue_message("ghl-to-rv3", msg, inbound.process)
