"""The sandbox's own control API under /_sandbox/ (not GHL's): seed, inspect, configure, simulate GHL."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .calendars import create_appointment, delete_appointment, find_appointment, update_appointment
from .config import SeedSpec
from .contacts import create_contact, find_contact, update_contact
from .errors import bad_request
from .render import calendar_dto, calendar_event_dto, contact_dto, location_dto
from .sandbox import Outage, sandbox_of

PREFIX = "/_sandbox"


class ResetRequest(BaseModel):
    empty: bool = False
    seed: SeedSpec | None = None


class OutageRequest(BaseModel):
    mode: Literal["503", "reset"] = "503"
    seconds: float = Field(gt=0)


class ClockAdvance(BaseModel):
    seconds: float = Field(ge=0)


class ExpireTokens(BaseModel):
    location_id: str | None = None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _ok(data: Any = None, status: int = 200) -> JSONResponse:
    return JSONResponse({"ok": True} if data is None else data, status_code=status)


async def reset(request: Request) -> Response:
    body = ResetRequest.model_validate(await _body(request))
    seed = SeedSpec() if body.empty else body.seed
    return _ok(sandbox_of(request).reset(seed))


async def seed(request: Request) -> Response:
    spec = SeedSpec.model_validate(await _body(request))
    return _ok(sandbox_of(request).state.load(spec), 201)


async def state(request: Request) -> Response:
    sandbox = sandbox_of(request)
    st = sandbox.state
    return _ok(
        {
            "locations": [location_dto(loc) for loc in st.locations.values()],
            "calendars": [calendar_dto(c) for c in st.calendars.values()],
            "users": [vars(u) for u in st.users.values()],
            "contacts": [contact_dto(c) for c in st.contacts.values()],
            "appointments": [{**calendar_event_dto(st, a), "source": a.source} for a in st.appointments.values()],
            "deleted_appointments": [calendar_event_dto(st, a) for a in st.deleted_appointments.values()],
            "oauth": {
                "clients": list(st.oauth_clients),
                "consent_location_id": st.consent_location_id,
                "access_tokens": len(st.access_tokens),
                "refresh_tokens_unused": sum(not t.used for t in st.refresh_tokens.values()),
            },
            "counts": st.counters.snapshot(),
            "webhooks": _webhook_summary(request),
            "clock_offset_seconds": sandbox.clock.offset,
            "outage": sandbox.outage_mode(),
        }
    )


async def counts(request: Request) -> Response:
    return _ok(sandbox_of(request).state.counters.snapshot())


async def get_config(request: Request) -> Response:
    return _ok(sandbox_of(request).config.model_dump(mode="json", exclude={"seed"}))


async def put_config_section(request: Request) -> Response:
    sandbox = sandbox_of(request)
    try:
        return _ok(sandbox.set_section(request.path_params["section"], await _body(request)))
    except KeyError:
        return JSONResponse({"error": "unknown_section"}, status_code=404)


async def start_outage(request: Request) -> Response:
    sandbox = sandbox_of(request)
    body = OutageRequest.model_validate(await _body(request))
    sandbox.outage = Outage(body.mode, sandbox.clock.monotonic() + body.seconds)
    return _ok()


async def end_outage(request: Request) -> Response:
    sandbox_of(request).outage = None
    return _ok()


async def advance_clock(request: Request) -> Response:
    sandbox = sandbox_of(request)
    sandbox.clock.offset += ClockAdvance.model_validate(await _body(request)).seconds
    sandbox.outbox.wake()
    return _ok({"clock_offset_seconds": sandbox.clock.offset})


async def expire_tokens(request: Request) -> Response:
    """Expire the OAuth access tokens (of one location, or all) now; private-integration tokens stay."""
    sandbox = sandbox_of(request)
    location_id = ExpireTokens.model_validate(await _body(request)).location_id
    expired = 0
    for token in sandbox.state.access_tokens.values():
        if token.expires_at is not None and location_id in (None, token.grant.location_id):
            token.expires_at = sandbox.clock.time()
            expired += 1
    return _ok({"expired": expired})


def _webhook_summary(request: Request) -> dict[str, int]:
    summary = {"pending": 0, "delivered": 0, "failed": 0}
    for delivery in sandbox_of(request).outbox.deliveries:
        summary[delivery.state] += 1
    return summary


async def list_webhooks(request: Request) -> Response:
    wanted = request.query_params.get("state")
    deliveries = sandbox_of(request).outbox.deliveries
    return _ok([d.snapshot() for d in deliveries if wanted in (None, d.state)])


async def pause_webhooks(request: Request) -> Response:
    sandbox = sandbox_of(request)
    sandbox.config.webhooks.paused = True
    return _ok()


async def resume_webhooks(request: Request) -> Response:
    sandbox = sandbox_of(request)
    sandbox.config.webhooks.paused = False
    sandbox.outbox.wake()
    return _ok()


async def flush_webhooks(request: Request) -> Response:
    tried = await sandbox_of(request).outbox.flush()
    return _ok([d.snapshot() for d in tried])


async def keys(request: Request) -> Response:
    store = sandbox_of(request).keys
    public = store.signing.public_keys()
    return _ok({"ed25519": public.ed25519_pem, "rsa": public.rsa_pem, "key_dir": str(store.key_dir)})


async def simulate_booking(request: Request) -> Response:
    """A booking made inside GHL (booking widget by default): no slot checks, AppointmentCreate sent."""
    sandbox = sandbox_of(request)
    data = await _body(request)
    appt = create_appointment(sandbox, data, source=str(data.get("source", "booking_widget")), check_slots=False)
    return _ok(calendar_event_dto(sandbox.state, appt), 201)


async def simulate_appointment_edit(request: Request) -> Response:
    """A change made in GHL's UI (reschedule, status, notes): AppointmentUpdate sent."""
    sandbox = sandbox_of(request)
    changes = await _body(request)
    appt = find_appointment(sandbox, request.path_params["eventId"])
    update_appointment(sandbox, appt, changes, check_slots=False)
    return _ok(calendar_event_dto(sandbox.state, appt))


async def simulate_appointment_delete(request: Request) -> Response:
    sandbox = sandbox_of(request)
    delete_appointment(sandbox, find_appointment(sandbox, request.path_params["eventId"]))
    return _ok()


async def simulate_contact_create(request: Request) -> Response:
    sandbox = sandbox_of(request)
    data = await _body(request)
    location = sandbox.state.locations.get(str(data.pop("locationId", "")))
    if location is None:
        raise bad_request("Location not found")
    return _ok(contact_dto(create_contact(sandbox, location, data)), 201)


async def simulate_contact_edit(request: Request) -> Response:
    sandbox = sandbox_of(request)
    changes = await _body(request)
    contact = find_contact(sandbox, request.path_params["contactId"])
    update_contact(sandbox, contact, changes)
    return _ok(contact_dto(contact))


async def invalid_request(request: Request, exc: Exception) -> Response:
    details = exc.errors(include_url=False) if isinstance(exc, ValidationError) else str(exc)
    return JSONResponse({"error": "invalid_request", "details": details}, status_code=422)


ROUTES = [
    Route(f"{PREFIX}/reset", reset, methods=["POST"]),
    Route(f"{PREFIX}/seed", seed, methods=["POST"]),
    Route(f"{PREFIX}/state", state, methods=["GET"]),
    Route(f"{PREFIX}/counts", counts, methods=["GET"]),
    Route(f"{PREFIX}/config", get_config, methods=["GET"]),
    Route(f"{PREFIX}/config/{{section}}", put_config_section, methods=["PUT"]),
    Route(f"{PREFIX}/outage", start_outage, methods=["POST"]),
    Route(f"{PREFIX}/outage", end_outage, methods=["DELETE"]),
    Route(f"{PREFIX}/clock/advance", advance_clock, methods=["POST"]),
    Route(f"{PREFIX}/tokens/expire", expire_tokens, methods=["POST"]),
    Route(f"{PREFIX}/webhooks", list_webhooks, methods=["GET"]),
    Route(f"{PREFIX}/webhooks/pause", pause_webhooks, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/resume", resume_webhooks, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/flush", flush_webhooks, methods=["POST"]),
    Route(f"{PREFIX}/keys", keys, methods=["GET"]),
    Route(f"{PREFIX}/simulate/appointments", simulate_booking, methods=["POST"]),
    Route(f"{PREFIX}/simulate/appointments/{{eventId}}", simulate_appointment_edit, methods=["PATCH"]),
    Route(f"{PREFIX}/simulate/appointments/{{eventId}}", simulate_appointment_delete, methods=["DELETE"]),
    Route(f"{PREFIX}/simulate/contacts", simulate_contact_create, methods=["POST"]),
    Route(f"{PREFIX}/simulate/contacts/{{contactId}}", simulate_contact_edit, methods=["PATCH"]),
]
