"""GHL webhook intake: check the signature over the raw body, read the event once, enqueue it (no SQL, no GHL).

GHL redelivers a webhook only when the answer is 429, so everything that may work later (storage down,
settings being fixed) answers 429, and only what can never work (bad signature, malformed body) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import telemetry
from shared.http import ApiError
from shared.queues import GHL_TO_RV3, QueueMessage
from shared.settings import Settings, SettingsError
from shared.work import Work
from sync_core.hashing import payload_hash
from sync_core.models import UtcDatetime
from sync_core.webhook_signature import GHL_ED25519_PUBLIC_KEY_PEM, GHL_RSA_PUBLIC_KEY_PEM, verify_signature
from sync_core.webhooks import (
    MAX_BODY_BYTES,
    GhlAppointmentEvent,
    GhlContactEvent,
    WebhookEvent,
    WebhookParseError,
    dedupe_key,
    parse_webhook,
    read_body,
)

log = telemetry.get_logger("webhooks")

# GHL answers a 429 by redelivering the SAME body (same `timestamp`) about every 10 minutes, up to 6 times
# (~70 min in all). The 5 minutes GHL's docs suggest would refuse exactly the redeliveries our 429 path
# relies on, losing those webhooks; 75 minutes covers the whole schedule. Replays inside the window are
# harmless: the inbox applies a delivery once, and an older change never overwrites a newer one.
REPLAY_MAX_AGE = timedelta(minutes=75)
# A timestamp from the future cannot be honest; a few minutes absorb clock skew between GHL and us.
REPLAY_MAX_AHEAD = timedelta(minutes=5)
MAX_WEBHOOK_ID_CHARS = 128
# What GHL waits anyway before redelivering a 429; the header is for any other caller.
RETRY_AFTER_S = 600


class WebhookMessage(QueueMessage):
    """A verified GHL webhook on the `ghl-to-rv3` queue, read once at intake (`correlation_id`: the intake's
    trace id, so processing continues the same trace)."""

    dedupe_key: str
    payload_hash: str
    received_at: UtcDatetime
    event: WebhookEvent
    observed_at: UtcDatetime | None = None  # a state read from GHL (reconciliation): GHL held it at that moment


@dataclass(frozen=True)
class Receipt:
    """What the intake did with a delivery it accepted (200)."""

    status: str  # accepted | ignored
    event_type: str


async def receive(work: Work, raw: bytes, headers: Mapping[str, str], *, now: datetime | None = None) -> Receipt:
    """Verify, read and enqueue one delivery. Raises `ApiError` (400, 401, 413 or 429) when it is not taken.

    Async, so a delivery waiting for storage holds no function thread: GHL's acknowledgements do not depend
    on how busy the queue workers of the same instance are."""
    moment = now or work.now()
    settings = _settings(work)
    if len(raw) > MAX_BODY_BYTES:
        raise _refused(413, "payload_too_large", "El webhook supera el tamaño máximo aceptado.", "too_large")
    if settings.ghl_webhook_verify:
        check = verify_signature(
            raw,
            headers,
            ed25519_public_pem=settings.ghl_webhook_ed25519_key or GHL_ED25519_PUBLIC_KEY_PEM,
            rsa_public_pem=settings.ghl_webhook_rsa_key or GHL_RSA_PUBLIC_KEY_PEM,
        )
        if not check.valid:
            raise _refused(401, "invalid_signature", "La firma del webhook falta o no es válida.", check.reason)
    event = _parse(raw, settings.timezone)
    if outside_replay_window(event.timestamp, moment):
        raise _refused(401, "stale_webhook", "El webhook está fuera de la ventana de tiempo aceptada.", "timestamp")
    if not _is_synced(event):
        return Receipt(status="ignored", event_type=event.type)
    await _enqueue(work, to_message(raw, event, moment))
    return Receipt(status="accepted", event_type=event.type)


def to_message(raw: bytes, event: WebhookEvent, received_at: datetime) -> WebhookMessage:
    """The queue message for a verified delivery `raw`, already read as `event`."""
    return WebhookMessage(
        dedupe_key=dedupe_key(event, raw),
        payload_hash=payload_hash(read_body(raw)),
        received_at=received_at,
        event=event,
        correlation_id=telemetry.current_correlation_id(),
        traceparent=telemetry.current_traceparent(),
    )


def outside_replay_window(timestamp: datetime | None, now: datetime) -> bool:
    """True for a delivery too old for GHL's redelivery schedule or dated in the future; no timestamp passes."""
    if timestamp is None:
        return False
    return timestamp < now - REPLAY_MAX_AGE or timestamp > now + REPLAY_MAX_AHEAD


def _settings(work: Work) -> Settings:
    try:
        return work.settings
    except SettingsError as exc:
        # Fixable without GHL's help: ask for the redelivery instead of losing the webhook.
        log.error("webhook deferred: invalid app settings %s", [key for key, _ in exc.problems])
        raise _retry_later() from None


def _parse(raw: bytes, timezone: str) -> WebhookEvent:
    try:
        event = parse_webhook(raw, tz=timezone)
    except WebhookParseError as exc:
        raise _refused(400, "invalid_webhook", "El cuerpo del webhook no es válido.", exc.reason) from None
    except ValueError:
        raise _refused(400, "invalid_webhook", "El cuerpo del webhook no es válido.", "invalid_fields") from None
    if event.webhook_id is not None and len(event.webhook_id) > MAX_WEBHOOK_ID_CHARS:
        raise _refused(400, "invalid_webhook", "El cuerpo del webhook no es válido.", "invalid_field:webhookId")
    return event


def _is_synced(event: WebhookEvent) -> bool:
    """Appointment events and contact updates; GHL sends many other types the sync has no use for."""
    if isinstance(event, GhlAppointmentEvent):
        return True
    return isinstance(event, GhlContactEvent) and event.action == "update"


async def _enqueue(work: Work, message: WebhookMessage) -> None:
    try:
        # Grouped with the deliveries arriving at the same moment: one storage request for a burst.
        await work.queues.send_grouped(GHL_TO_RV3, message.model_dump(mode="json"))
    except Exception as exc:  # noqa: BLE001 - whatever kept the message out of the queue, GHL must redeliver
        telemetry.alert(
            "webhook_failure",
            f"webhook deferred with 429, could not enqueue ({type(exc).__name__}); GHL will redeliver",
            operation="webhook_intake",
            success=False,
            detail=message.event.type,
        )
        raise _retry_later() from None


def _retry_later() -> ApiError:
    return ApiError(
        429,
        "webhook_deferred",
        "No se pudo recibir el webhook en este momento; reenvíelo más tarde.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _refused(status: int, code: str, message: str, reason: str) -> ApiError:
    log.warning(
        "webhook refused: %s (%s)",
        code,
        reason,
        extra={"operation": "webhook_intake", "success": False, "reason": reason},
    )
    return ApiError(status, code, message, details=[reason])
