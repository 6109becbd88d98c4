"""GHL webhook intake: check the signature over the raw body, read the event once, and enqueue it — or, when it
is GHL's echo of a write of ours, apply it at once (one transaction, no GHL call), which spares the queue a
message, a receive and a delete for the most common webhook of all.

GHL redelivers a webhook only when the answer is 429, so everything that may work later (storage down,
settings being fixed) answers 429, and only what can never work (bad signature, malformed body) is refused.
Applying at once never decides the answer: whatever it cannot do (not an echo, SQL unreachable, too many at
the same moment) is queued exactly as before.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
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
# Deliveries the intake applies itself at the same moment; more are queued at once, so a burst of GHL
# deliveries is answered as fast as before. Once one is turned away, none is applied for AT_ONCE_BUSY_S: under
# a burst the queue's group commit is the cheaper path, and a burst of webhooks that are not echoes (bookings
# made in GHL) costs no attempt for each.
AT_ONCE_MAX = 4
AT_ONCE_BUSY_S = 1.0
# How long a delivery waits for it before it is queued instead (a database that hangs, a lock held long).
AT_ONCE_DEADLINE_S = 2.0
# After an error applying one (SQL unreachable, timing out), every delivery is queued for this long: a slow
# database never holds GHL's answers back more than once.
AT_ONCE_PAUSE_S = 30.0


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


ApplyAtOnce = Callable[[Work, WebhookMessage], bool]


class _AtOnceGate:
    """How many deliveries the intake is applying itself, and until when it applies none (after an error)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._paused_until = 0.0

    def enter(self, now: float) -> bool:
        with self._lock:
            if now < self._paused_until:
                return False
            if self._running >= AT_ONCE_MAX:
                self._paused_until = now + AT_ONCE_BUSY_S
                return False
            self._running += 1
            return True

    def left(self, applying: asyncio.Future[bool]) -> None:
        """An application ended (also one the intake stopped waiting for). Its error was logged when the intake
        waited for it; a late one is not: its delivery was queued, and the worker reports its own outcome."""
        with self._lock:
            self._running -= 1
        if not applying.cancelled():
            applying.exception()  # retrieved, so asyncio does not report it as never retrieved

    def pause(self, now: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, now + AT_ONCE_PAUSE_S)


_GATE = _AtOnceGate()


async def receive(
    work: Work,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
    apply_at_once: ApplyAtOnce | None = None,
) -> Receipt:
    """Verify, read and enqueue one delivery. Raises `ApiError` (400, 401, 413 or 429) when it is not taken.
    `apply_at_once` (`inbound.apply_if_echo`) may apply it instead and say so; when it does not, it is queued.

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
    message = to_message(raw, event, moment)
    if apply_at_once is None or not await _applied_at_once(work, message, apply_at_once):
        await _enqueue(work, message)
    return Receipt(status="accepted", event_type=event.type)


async def _applied_at_once(work: Work, message: WebhookMessage, apply: ApplyAtOnce) -> bool:
    """Whether `apply` took the delivery within AT_ONCE_DEADLINE_S (in a worker thread, so the event loop keeps
    answering other requests). Past the deadline the delivery is queued anyway: should the late transaction
    commit after all, the queued copy finds it applied (the inbox)."""
    if not _GATE.enter(time.monotonic()):
        return False
    applying = asyncio.ensure_future(asyncio.to_thread(apply, work, message))
    applying.add_done_callback(_GATE.left)
    try:
        return await asyncio.wait_for(asyncio.shield(applying), AT_ONCE_DEADLINE_S)
    except Exception as exc:  # noqa: BLE001 - queued instead: applying at once is a saving, never a condition
        _GATE.pause(time.monotonic())
        log.warning(
            "webhooks are queued for %.0f s: applying one at intake failed (%s)",
            AT_ONCE_PAUSE_S,
            type(exc).__name__,
            extra={"operation": "webhook_at_intake", "success": False},
        )
        return False


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
