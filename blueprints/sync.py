"""Background sync triggers: the `rv3-to-ghl` queue worker and the outbox sweeper timer."""

import azure.functions as func

from shared.lazy import serial_imports
from shared.setting_defaults import OUTBOX_SWEEP_SCHEDULE, schedule

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name="rv3-to-ghl", connection="AzureWebJobsStorage")
def rv3_to_ghl(msg: func.QueueMessage) -> None:
    with serial_imports:
        from shared.services import outbound
        from shared.triggers import run_queue_message

    run_queue_message("rv3-to-ghl", msg, outbound.process)


@bp.timer_trigger(arg_name="timer", schedule=schedule("OUTBOX_SWEEP_SCHEDULE", OUTBOX_SWEEP_SCHEDULE))
def outbox_sweeper(timer: func.TimerRequest) -> None:
    with serial_imports:
        from shared.services import dispatch
        from shared.work import Work

    dispatch.sweep(Work.current())
