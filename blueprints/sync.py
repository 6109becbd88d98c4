"""Background sync triggers: the `rv3-to-ghl` queue worker and the outbox sweeper timer."""

import json

import azure.functions as func

from shared.setting_defaults import OUTBOX_SWEEP_SCHEDULE, schedule

bp = func.Blueprint()


def message_json(msg: func.QueueMessage) -> dict[str, object]:
    """The JSON object in a queue message; anything else is malformed and must end in the poison queue."""
    data = json.loads(msg.get_body())
    if not isinstance(data, dict):
        raise ValueError("queue message is not a JSON object")
    return data


@bp.queue_trigger(arg_name="msg", queue_name="rv3-to-ghl", connection="AzureWebJobsStorage")
def rv3_to_ghl(msg: func.QueueMessage) -> None:
    from shared.services import outbound

    outbound.process(message_json(msg))


@bp.timer_trigger(arg_name="timer", schedule=schedule("OUTBOX_SWEEP_SCHEDULE", OUTBOX_SWEEP_SCHEDULE))
def outbox_sweeper(timer: func.TimerRequest) -> None:
    from shared.services import dispatch

    dispatch.sweep()
