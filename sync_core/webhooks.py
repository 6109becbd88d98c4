"""Reading GHL webhook deliveries: event shapes, the replay window and the dedupe key."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sync_core.ghl_appointments import GhlAppointment, GhlShapeError, parse_ghl_appointment
from sync_core.hashing import payload_hash
from sync_core.json_input import JsonInputError, read_json
from sync_core.models import UtcDatetime
from sync_core.times import DEFAULT_TIMEZONE, parse_ghl_time

Action = Literal["create", "update", "delete"]

_APPOINTMENT_TYPES: dict[str, Action] = {
    "appointmentcreate": "create",
    "appointmentupdate": "update",
    "appointmentdelete": "delete",
}
_CONTACT_TYPES: dict[str, Action] = {
    "contactcreate": "create",
    "contactupdate": "update",
    "contactdelete": "delete",
}
# Without these an appointment cannot be mirrored; a delete only needs the id.
_REQUIRED_FOR_UPSERT = (("calendar_id", "calendarId"), ("start", "startTime"), ("end", "endTime"))

DEFAULT_MAX_AGE = timedelta(minutes=5)
# Appointment and contact events are a few KB; the queue takes at most 64 KB of base64 (48 KB of JSON).
MAX_BODY_BYTES = 32 * 1024


class WebhookParseError(ValueError):
    """A delivery that is not a readable GHL webhook; `reason` is a short English code (HTTP 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    location_id: str | None = None
    webhook_id: str | None = None
    timestamp: UtcDatetime | None = None


class GhlContact(BaseModel):
    """The contact fields the sync uses from ContactCreate/Update/Delete (whose bodies are flat)."""

    model_config = ConfigDict(frozen=True)

    id: str
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class GhlAppointmentEvent(_Envelope):
    kind: Literal["appointment"] = "appointment"
    action: Action
    appointment: GhlAppointment


class GhlContactEvent(_Envelope):
    kind: Literal["contact"] = "contact"
    action: Action
    contact: GhlContact


class IgnoredEvent(_Envelope):
    """A well-formed delivery of a type the sync does not act on (INSTALL, tag updates, ...)."""

    kind: Literal["ignored"] = "ignored"


WebhookEvent = Annotated[GhlAppointmentEvent | GhlContactEvent | IgnoredEvent, Field(discriminator="kind")]
WEBHOOK_EVENT_ADAPTER: TypeAdapter[WebhookEvent] = TypeAdapter(WebhookEvent)
"""(De)serialises a parsed event, e.g. for a queue message: `WEBHOOK_EVENT_ADAPTER.validate_json(...)`."""


def read_body(raw: bytes) -> object:
    """The JSON of a delivery, read by the bounded reader; `WebhookParseError` names why it is refused."""
    try:
        return read_json(raw, max_bytes=MAX_BODY_BYTES)
    except JsonInputError as exc:
        raise WebhookParseError(exc.reason) from None


def parse_webhook(raw: bytes, *, tz: str | tzinfo = DEFAULT_TIMEZONE) -> WebhookEvent:
    """Read a delivery body. Accepts the official shape (`appointment` object) and RV3's older one (`data`).

    `tz` reads the rare naive appointment times. Raises `WebhookParseError` for anything malformed.
    """
    body = read_body(raw)
    if not isinstance(body, dict):
        raise WebhookParseError("not_an_object")
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise WebhookParseError("missing_type")
    envelope: dict[str, object] = {
        "type": event_type.strip(),
        "location_id": _optional_text(body, "locationId"),
        "webhook_id": _optional_text(body, "webhookId"),
        "timestamp": _timestamp(body, tz),
    }
    type_key = event_type.strip().lower()
    if type_key in _APPOINTMENT_TYPES:
        return _appointment_event(body, envelope, _APPOINTMENT_TYPES[type_key], tz)
    if type_key in _CONTACT_TYPES:
        return GhlContactEvent.model_validate(
            {**envelope, "action": _CONTACT_TYPES[type_key], "contact": _contact(body)}
        )
    return IgnoredEvent.model_validate(envelope)


def _appointment_event(
    body: Mapping[str, object], envelope: dict[str, object], action: Action, tz: str | tzinfo
) -> GhlAppointmentEvent:
    obj = body.get("appointment")
    if obj is None:
        obj = body.get("data")
    if not isinstance(obj, dict):
        raise WebhookParseError("missing_appointment")
    try:
        appointment = parse_ghl_appointment(obj, tz=tz)
    except GhlShapeError as exc:
        raise WebhookParseError(exc.reason) from None
    if action != "delete":
        for name, key in _REQUIRED_FOR_UPSERT:
            if getattr(appointment, name) is None:
                raise WebhookParseError(f"missing_field:{key}")
    if envelope["location_id"] is None:
        envelope = {**envelope, "location_id": appointment.location_id}
    return GhlAppointmentEvent.model_validate({**envelope, "action": action, "appointment": appointment})


def _contact(body: Mapping[str, object]) -> GhlContact:
    contact_id = _optional_text(body, "id")
    if contact_id is None:
        raise WebhookParseError("missing_contact_id")
    return GhlContact(
        id=contact_id,
        first_name=_optional_text(body, "firstName"),
        last_name=_optional_text(body, "lastName"),
        name=_optional_text(body, "name"),
        email=_optional_text(body, "email"),
        phone=_optional_text(body, "phone"),
    )


def _optional_text(body: Mapping[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise WebhookParseError(f"invalid_field:{key}")
    return value.strip() or None


def _timestamp(body: Mapping[str, object], tz: str | tzinfo) -> datetime | None:
    value = body.get("timestamp")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise WebhookParseError("invalid_timestamp")
    try:
        return parse_ghl_time(value, tz)
    except ValueError:
        raise WebhookParseError("invalid_timestamp") from None


def is_stale_timestamp(ts: datetime | None, now: datetime, max_age: timedelta = DEFAULT_MAX_AGE) -> bool:
    """True when a delivery's `timestamp` is outside the replay window (GHL recommends 5 minutes).

    A timestamp as far in the future is rejected too (it cannot be honest). A MISSING timestamp is
    accepted: GHL's per-event docs and RV3's older shape carry none, GHL does not retry a rejected
    delivery, and replays are still stopped by the signature plus the dedupe key.
    """
    if ts is None:
        return False
    return abs(now - ts) > max_age


def dedupe_key(event: WebhookEvent, raw: bytes) -> str:
    """The idempotency key of a delivery: GHL's `webhookId`, else the hash of the canonical payload."""
    if event.webhook_id:
        return f"webhook:{event.webhook_id}"
    return f"payload:{payload_hash(read_body(raw))}"
