"""ManyChat intake: check and read the event, queue it, answer 202 well inside ManyChat's ~10 s.

ManyChat never retries, so nothing that arrives is dropped without a trace: a body that cannot be read is refused
with a 4xx naming its fields and kept in `miasalud_events` for staff (`rejected`); an event storage cannot queue
is kept there too (`held`) and queued again by the sweep, and the answer says so (202, `held`). Only when SQL
cannot take it either is the answer a 503, so that the flow's failure branch runs.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared import telemetry
from shared.api.requests import validation_error
from shared.http import ApiError
from shared.queues import MANYCHAT_CAMPAIGN, MANYCHAT_CONTACT, QueueMessage
from shared.store import miasalud as store
from shared.work import Work
from sync_core.json_input import JsonInputError, read_json
from sync_core.miasalud.events import (
    CampaignEvent,
    ContactEvent,
    EventKind,
    ManychatCampaignIn,
    ManychatContactIn,
    reading,
)
from sync_core.models import UtcDatetime

log = telemetry.get_logger("miasalud")

MAX_BODY_BYTES = 16 * 1024  # the seed's bodies are ~300 bytes; a summary of 4,000 characters fits well
# ManyChat waits about 10 s for the answer: storage gets 3 s to take the event, then SQL 4 s to keep it. (A send
# still running past its deadline may land too: the event is then queued twice, and applied once.)
ENQUEUE_DEADLINE_S = 3.0
HOLD_DEADLINE_S = 4.0
HELD_SWEEP_BATCH = 200


class ContactMessage(QueueMessage):
    """A ManyChat contact event on the `manychat-contact` queue, read once at intake."""

    received_at: UtcDatetime
    event: ContactEvent


class CampaignMessage(QueueMessage):
    """A ManyChat campaign assignment on the `manychat-campaign` queue, read once at intake."""

    received_at: UtcDatetime
    event: CampaignEvent


@dataclass(frozen=True)
class Intake:
    kind: EventKind
    queue: str
    body: type[ManychatContactIn] | type[ManychatCampaignIn]
    event: type[ContactEvent] | type[CampaignEvent]
    message: type[ContactMessage] | type[CampaignMessage]


CONTACT = Intake("contact", MANYCHAT_CONTACT, ManychatContactIn, ContactEvent, ContactMessage)
CAMPAIGN = Intake("campaign", MANYCHAT_CAMPAIGN, ManychatCampaignIn, CampaignEvent, CampaignMessage)
INTAKES = {intake.queue: intake for intake in (CONTACT, CAMPAIGN)}


@dataclass(frozen=True)
class Receipt:
    """The 202's body: small, for ManyChat's response mapping (`$.status`, `$.event_id`)."""

    status: str  # accepted | held
    event_id: str
    manychat_id: str

    def body(self) -> dict[str, str]:
        return {"status": self.status, "event_id": self.event_id, "manychat_id": self.manychat_id}


async def receive(work: Work, intake: Intake, raw: bytes) -> Receipt:
    """Read and queue one ManyChat event; raises the ApiError to answer when it is not taken."""
    received = work.now()
    settings = work.settings
    try:
        data = read_json(raw, max_bytes=MAX_BODY_BYTES)
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "El cuerpo debe ser un objeto JSON.")
        context = reading(settings.manychat_timezone, received, settings.default_phone_region)
        event = intake.event.model_validate(intake.body.model_validate(data, context=context), context=context)
    except JsonInputError as exc:
        await _reject(work, intake, raw, received, [{"field": "body", "code": exc.reason}])
        if exc.reason == "too_large":
            raise ApiError(413, "payload_too_large", f"El cuerpo supera {MAX_BODY_BYTES // 1024} KB.") from None
        raise ApiError(400, "invalid_json", "El cuerpo no es JSON válido.", details=[exc.reason]) from None
    except ApiError as exc:
        await _reject(work, intake, raw, received, [{"field": "body", "code": exc.code}])
        raise
    except ValidationError as exc:
        refused = validation_error(exc)
        fields = ", ".join(dict.fromkeys(str(detail["field"]) for detail in refused.details))
        refused.message = f"El evento de ManyChat no es válido; revise: {fields}."
        await _reject(work, intake, raw, received, refused.details, manychat_id=_manychat_id(data))
        raise refused from None
    message = intake.message(
        received_at=received,
        event=event,
        correlation_id=telemetry.current_correlation_id(),
        traceparent=telemetry.current_traceparent(),
    )
    status = await _enqueue(work, intake, message)
    return Receipt(status, event.event_key, event.manychat_id)


async def _enqueue(work: Work, intake: Intake, message: ContactMessage | CampaignMessage) -> str:
    payload = message.model_dump(mode="json")
    try:
        await asyncio.wait_for(work.queues.send_grouped(intake.queue, payload), ENQUEUE_DEADLINE_S)
        return "accepted"
    except Exception as exc:  # noqa: BLE001 - whatever kept it out of the queue, SQL keeps it
        reason = type(exc).__name__
    event = message.event
    try:
        await asyncio.wait_for(asyncio.to_thread(_hold, work, intake, message), HOLD_DEADLINE_S)
    except Exception as exc:  # noqa: BLE001 - nowhere to keep it: the flow's failure branch must run
        telemetry.alert(
            "manychat_event_lost",
            f"a ManyChat {intake.kind} event could not be queued ({reason}) nor kept in SQL ({type(exc).__name__})",
            operation="manychat_intake",
            success=False,
            detail=event.event_key,
        )
        raise ApiError(
            503,
            "event_not_saved",
            "No se pudo guardar el evento en este momento; no se registró nada. Vuelva a enviarlo.",
            headers={"Retry-After": "60"},
        ) from None
    log.warning(
        "ManyChat %s event held in SQL: storage could not queue it (%s); the sweep queues it again",
        intake.kind,
        reason,
        extra={"operation": "manychat_intake", "success": True, "detail": event.event_key},
    )
    return "held"


def _hold(work: Work, intake: Intake, message: ContactMessage | CampaignMessage) -> None:
    event = message.event
    with work.transaction() as conn:
        store.keep_event(
            conn,
            event_key=event.event_key,
            kind=intake.kind,
            status=store.HELD,
            received_at=message.received_at,
            manychat_id=event.manychat_id,
            occurred_at=event.occurred_at,
            body=message.model_dump_json(),
        )


async def _reject(
    work: Work,
    intake: Intake,
    raw: bytes,
    received: Any,
    problems: list[Any],
    *,
    manychat_id: str | None = None,
) -> None:
    """Keep a refused body for staff to review; the caller's 4xx goes out whether or not SQL could take it."""
    key = "rejected:" + hashlib.sha256(intake.kind.encode() + b"\n" + raw).hexdigest()[:39]
    try:
        await asyncio.to_thread(
            functools.partial(
                _keep_rejected,
                work,
                intake,
                key=key,
                raw=raw,
                received=received,
                problems=problems,
                manychat_id=manychat_id,
            )
        )
    except Exception as exc:  # noqa: BLE001 - the refusal itself is answered anyway
        log.warning(
            "a refused ManyChat %s event could not be kept for review (%s)",
            intake.kind,
            type(exc).__name__,
            extra={"operation": "manychat_intake", "success": False, "detail": key},
        )
    telemetry.validation_rejected("manychat", str(problems[0].get("code", "invalid")), operation="manychat_intake")


def _keep_rejected(
    work: Work,
    intake: Intake,
    *,
    key: str,
    raw: bytes,
    received: Any,
    problems: list[Any],
    manychat_id: str | None,
) -> None:
    with work.transaction() as conn:
        store.keep_event(
            conn,
            event_key=key,
            kind=intake.kind,
            status=store.REJECTED,
            received_at=received,
            manychat_id=manychat_id,
            body=raw[: store.MAX_KEPT_BODY_CHARS].decode("utf-8", "replace"),
            detail=problems,
        )


def _manychat_id(data: Any) -> str | None:
    """The refused body's manychat_id when it looks like one (to find it in the review list), else None."""
    value = data.get("manychat_id") if isinstance(data, dict) else None
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text[:64] if text and text.isascii() and "{{" not in text else None


def requeue_held(work: Work) -> int:
    """The sweep: queue again the events storage could not take (oldest first); returns how many were sent."""
    with work.transaction() as conn:
        held = store.held_events(conn, HELD_SWEEP_BATCH)
    sent = 0
    for row in held:
        intake = CONTACT if row.kind == CONTACT.kind else CAMPAIGN
        work.queues.send_text(intake.queue, row.body)
        with work.transaction() as conn:
            store.mark_queued(conn, row.event_key)
        sent += 1
    if sent:
        log.info("re-queued %d held ManyChat events", sent, extra={"operation": "manychat_sweep", "success": True})
    return sent
