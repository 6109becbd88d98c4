"""What every queue-triggered function does around its handler: parse, trace, log, and flag poison."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared import telemetry
from shared.lazy import serial_imports
from shared.queues import MAX_DEQUEUE_COUNT, grouped_messages
from sync_core.json_input import read_json

# Storage queues hold at most 64 KB per message.
MAX_MESSAGE_BYTES = 64 * 1024

log = telemetry.get_logger("queues")


def message_json(msg: func.QueueMessage) -> dict[str, Any]:
    """The JSON object in a queue message; anything else is malformed and must end in the poison queue."""
    data = read_json(msg.get_body(), max_bytes=MAX_MESSAGE_BYTES)
    if not isinstance(data, dict):
        raise ValueError("queue message is not a JSON object")
    return data


def run_queue_message(queue: str, msg: func.QueueMessage, handle: Callable[[dict[str, Any]], object]) -> None:
    """Run `handle` on the message inside a span continuing the producer's trace. A failure is logged
    (`queue.<queue>`, with the delivery count), and on the last delivery raises the `poison_message` alert before
    the host moves the message to `<queue>-poison`."""
    started = time.perf_counter()
    deliveries = int(msg.dequeue_count or 1)
    try:
        data = message_json(msg)
    except ValueError:
        _failed(queue, msg, deliveries, started, "malformed")
        raise
    group = grouped_messages(data)
    if group is not None:
        try:
            _run_group(queue, msg, group, handle, started)
        except Exception as exc:
            _failed(queue, msg, deliveries, started, type(exc).__name__)
            raise
        return
    with telemetry.span(
        f"queue {queue}",
        kind="consumer",
        traceparent=_text(data.get("traceparent")),
        correlation_id=_text(data.get("correlation_id")),
        attributes={"messaging.destination": queue, "messaging.message_id": str(msg.id)},
    ):
        try:
            handle(data)
        except Exception as exc:
            _failed(queue, msg, deliveries, started, type(exc).__name__)
            raise
        # A message handled says so once: the worker kernel's line (`worker.<queue>`, with its outcome).


def _run_group(
    queue: str, msg: func.QueueMessage, group: list[Any], handle: Callable[[dict[str, Any]], object], started: float
) -> None:
    """Each message of a group (`GroupedSender`) on its own, in its producer's trace. One that fails goes back
    to the queue alone, with a delivery budget of its own, so it neither holds back nor repeats the others (nor
    takes them to the poison queue). Should that send fail too, the whole group fails and comes back: what was
    applied is then a duplicate the handler recognizes (at-least-once, as for any message)."""
    sent_back = 0
    for item in group:
        data = item if isinstance(item, dict) else {"malformed": item}
        with telemetry.span(
            f"queue {queue}",
            kind="consumer",
            traceparent=_text(data.get("traceparent")),
            correlation_id=_text(data.get("correlation_id")),
            attributes={"messaging.destination": queue, "messaging.message_id": str(msg.id), "group_size": len(group)},
        ):
            try:
                handle(data)
            except Exception as exc:  # noqa: BLE001 - isolated: the message is retried on its own
                with serial_imports:
                    from shared import runtime

                runtime.queues().send(queue, data)
                sent_back += 1
                log.warning(
                    "a message of a %s group failed (%s); it is retried on its own",
                    queue,
                    type(exc).__name__,
                    extra={"operation": f"queue.{queue}", "success": False, "queue": queue},
                )
    telemetry.log_operation(
        log,
        f"queue.{queue}",
        success=True,
        started=started,
        queue=queue,
        attempt=int(msg.dequeue_count or 1),
        detail=f"group of {len(group)}, {sent_back} retried alone",
    )


def _failed(queue: str, msg: func.QueueMessage, deliveries: int, started: float, reason: str) -> None:
    telemetry.log_operation(
        log, f"queue.{queue}", success=False, started=started, queue=queue, attempt=deliveries, detail=reason
    )
    if deliveries >= MAX_DEQUEUE_COUNT:
        telemetry.alert(
            "poison_message",
            f"a {queue} message failed {deliveries} times and goes to {queue}-poison",
            queue=queue,
            detail=reason,
            event_id=str(msg.id),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
