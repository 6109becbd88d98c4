"""The one GHL API client: auth, Version headers, the rate budget, safe retries and errors callers can act on."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from shared import telemetry
from shared.calls import CallRecord
from shared.ghl.errors import (
    AuthExpired,
    Forbidden,
    GhlError,
    Invalid,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Unavailable,
)
from shared.ghl.models import Calendar, Contact, Event, Location
from shared.ghl.rate_budget import RateBudget
from shared.rate_budget import wait_for_slot
from sync_core.rate_budget import RateLimitHeaders, parse_retry_after

# Retries happen only where they cannot duplicate a change: reads, and writes that provably never reached
# GHL. Errors are by meaning (shared.ghl.errors), not raw status codes.

log = telemetry.get_logger("ghl")
# httpx logs every request URL at INFO; duplicate-contact lookups carry a phone or email in the query.
logging.getLogger("httpx").setLevel(logging.WARNING)

CALENDARS_VERSION = "2021-04-15"
CONTACTS_VERSION = "2021-07-28"
LOCATIONS_VERSION = "2021-07-28"

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)
DEFAULT_MAX_WAIT_S = 10.0
HEADROOM_ALERT = 10  # alert when GHL says fewer requests than this are left in its window
# Attempts of a call that is safe to repeat: a read, or a write that provably never reached GHL.
ATTEMPTS = 3
RATE_LIMIT_RETRIES = 2
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 2.0
# GHL puts `traceId` in error bodies; a header carries it on every answer (the sandbox's, proxies').
TRACE_HEADER = "x-trace-id"

_ERRORS: dict[int, type[GhlError]] = {
    400: Invalid,
    401: AuthExpired,
    403: Forbidden,
    404: NotFound,
    409: Invalid,
    422: Invalid,
}

# Failures where the request provably never reached GHL: retrying cannot apply a change twice.
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)

M = TypeVar("M", bound=BaseModel)


class TokenProvider(Protocol):
    """Bearer tokens per location: a private-integration token, or OAuth tokens with refresh."""

    def access_token(self, location_id: str) -> str:
        """A token believed valid now (an OAuth provider refreshes one close to expiry first)."""
        ...

    def refresh(self, location_id: str, rejected_token: str) -> str:
        """GHL answered 401 to `rejected_token`: a new token, or AuthExpired when there is none."""
        ...


@dataclass(frozen=True)
class _Call:
    operation: str
    method: str
    path_template: str
    path: str
    version: str
    location_id: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None

    @property
    def write(self) -> bool:
        return self.method != "GET"


class GhlClient:
    """Synchronous, thread-safe client of GHL API v2 for the endpoints the sync uses."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        budget: RateBudget,
        *,
        on_call: Callable[[CallRecord], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        attempts: int = ATTEMPTS,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        telemetry.warm()  # not inside the first call, after its slot
        self._tokens = tokens
        self._budget = budget
        self._on_call = on_call
        self._timeout = timeout
        self._max_wait_s = max_wait_s
        self._attempts = max(1, attempts)
        self._rate_limit_retries = rate_limit_retries
        self._sleep = sleep
        self._clock = clock
        self._last_limits: dict[str, RateLimitHeaders] = {}
        self._row = threading.local()  # this thread's calls in a row (`calls_in_a_row`)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GhlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def calls_in_a_row(self, location_id: str, calls: int) -> Iterator[None]:
        """This thread's next `calls` calls to the location (a contact upsert, then the create it is for) take
        their rate slots in one reservation: one Table write instead of one each. A slot left unused when the
        block ends (the second call did not come) is given up. A row of one call changes nothing."""
        if calls < 2:
            yield
            return
        self._row.location_id, self._row.following = location_id, calls - 1
        try:
            yield
        finally:
            self._row.following = 0
            self._budget.drop_kept(location_id)

    def last_rate_limit(self, location_id: str) -> RateLimitHeaders | None:
        """The `X-RateLimit-*` headers of the latest response for the location (None before any)."""
        return self._last_limits.get(location_id)

    # Calendars (Version 2021-04-15)

    def list_calendars(self, location_id: str) -> list[Calendar]:
        call = _Call(
            "list_calendars",
            "GET",
            "/calendars/",
            "/calendars/",
            CALENDARS_VERSION,
            location_id,
            params={"locationId": location_id},
        )
        return _items(call, self._send(call), "calendars", Calendar)

    def get_calendar(self, location_id: str, calendar_id: str) -> Calendar:
        call = _Call(
            "get_calendar",
            "GET",
            "/calendars/{calendarId}",
            f"/calendars/{_seg(calendar_id)}",
            CALENDARS_VERSION,
            location_id,
        )
        calendar = _item(call, self._send(call), "calendar", Calendar)
        if calendar.locationId != location_id:
            raise NotFound("calendar belongs to another location")
        return calendar

    def list_events(self, location_id: str, *, calendar_id: str, start: datetime, end: datetime) -> list[Event]:
        """Events of one calendar overlapping [start, end) (GHL has no paging here: keep windows small)."""
        params = {
            "locationId": location_id,
            "calendarId": calendar_id,
            "startTime": str(_epoch_ms(start)),
            "endTime": str(_epoch_ms(end)),
        }
        call = _Call(
            "list_events",
            "GET",
            "/calendars/events",
            "/calendars/events",
            CALENDARS_VERSION,
            location_id,
            params=params,
        )
        return _items(call, self._send(call), "events", Event)

    def get_event(self, location_id: str, event_id: str) -> Event:
        call = _Call(
            "get_event",
            "GET",
            "/calendars/events/appointments/{eventId}",
            f"/calendars/events/appointments/{_seg(event_id)}",
            CALENDARS_VERSION,
            location_id,
        )
        event = _item(call, self._send(call), "event", Event)
        if event.locationId != location_id:
            raise NotFound("event belongs to another location")
        return event

    def create_appointment(self, location_id: str, body: Mapping[str, Any]) -> Event:
        """POST an AppointmentCreateSchema body; never retried once it may have reached GHL (OutcomeUnknown)."""
        call = _Call(
            "create_appointment",
            "POST",
            "/calendars/events/appointments",
            "/calendars/events/appointments",
            CALENDARS_VERSION,
            location_id,
            body=_with_location(body, location_id),
        )
        return _model(call, self._send(call), Event)

    def update_appointment(self, location_id: str, event_id: str, body: Mapping[str, Any]) -> Event:
        """PUT an AppointmentEditSchema body (no locationId/contactId in it)."""
        call = _Call(
            "update_appointment",
            "PUT",
            "/calendars/events/appointments/{eventId}",
            f"/calendars/events/appointments/{_seg(event_id)}",
            CALENDARS_VERSION,
            location_id,
            body=dict(body),
        )
        return _model(call, self._send(call), Event)

    def cancel_appointment(self, location_id: str, event_id: str) -> Event:
        """Cancel keeping the appointment's history in GHL (a PUT, not a DELETE)."""
        return self.update_appointment(location_id, event_id, {"appointmentStatus": "cancelled"})

    def delete_event(self, location_id: str, event_id: str) -> None:
        call = _Call(
            "delete_event",
            "DELETE",
            "/calendars/events/{eventId}",
            f"/calendars/events/{_seg(event_id)}",
            CALENDARS_VERSION,
            location_id,
            body={},
        )
        self._send(call)

    # Contacts (Version 2021-07-28)

    def upsert_contact(self, location_id: str, body: Mapping[str, Any]) -> tuple[Contact, bool]:
        """Create or update by the location's duplicate rules (email/phone); True when a contact was created."""
        call = _Call(
            "upsert_contact",
            "POST",
            "/contacts/upsert",
            "/contacts/upsert",
            CONTACTS_VERSION,
            location_id,
            body=_with_location(body, location_id),
        )
        data = self._send(call)
        contact = _item(call, data, "contact", Contact)
        return contact, data.get("new") is True

    def update_contact(self, location_id: str, contact_id: str, body: Mapping[str, Any]) -> Contact:
        """PUT an UpdateContactDto body (no locationId in it): the fields sent replace GHL's."""
        call = _Call(
            "update_contact",
            "PUT",
            "/contacts/{contactId}",
            f"/contacts/{_seg(contact_id)}",
            CONTACTS_VERSION,
            location_id,
            body=dict(body),
        )
        return _item(call, self._send(call), "contact", Contact)

    def get_contact(self, location_id: str, contact_id: str) -> Contact:
        call = _Call(
            "get_contact",
            "GET",
            "/contacts/{contactId}",
            f"/contacts/{_seg(contact_id)}",
            CONTACTS_VERSION,
            location_id,
        )
        contact = _item(call, self._send(call), "contact", Contact)
        if contact.locationId not in (None, location_id):
            raise NotFound("contact belongs to another location")
        return contact

    def find_duplicate_contact(
        self, location_id: str, *, phone: str | None = None, email: str | None = None
    ) -> Contact | None:
        """The contact GHL would treat as the same person (by its duplicate rules), or None."""
        if not (phone or email):
            raise ValueError("give a phone or an email to look a contact up")
        params = {"locationId": location_id}
        if phone:
            params["number"] = phone
        if email:
            params["email"] = email
        call = _Call(
            "find_duplicate_contact",
            "GET",
            "/contacts/search/duplicate",
            "/contacts/search/duplicate",
            CONTACTS_VERSION,
            location_id,
            params=params,
        )
        data = self._send(call)
        if not data.get("contact"):
            return None
        return _item(call, data, "contact", Contact)

    # Locations (Version 2021-07-28)

    def get_location(self, location_id: str) -> Location:
        call = _Call(
            "get_location",
            "GET",
            "/locations/{locationId}",
            f"/locations/{_seg(location_id)}",
            LOCATIONS_VERSION,
            location_id,
        )
        return _item(call, self._send(call), "location", Location)

    # The request loop

    def _send(self, call: _Call) -> dict[str, Any]:
        """Send `call` until it succeeds or fails for good; the JSON object it answered."""
        if not call.location_id:
            raise ValueError("location_id is required")
        failures = rate_waits = 0
        refreshed = False
        while True:
            self._take_slot(call.location_id)
            token = self._tokens.access_token(call.location_id)
            try:
                return self._attempt(call, token)
            except AuthExpired:
                if refreshed:
                    raise
                refreshed = True
                self._tokens.refresh(call.location_id, token)
            except RateLimited as error:
                self._budget.rate_limited(call.location_id, error.retry_after)
                if error.retry_after > self._max_wait_s or rate_waits >= self._rate_limit_retries:
                    raise
                rate_waits += 1  # the next slot comes after Retry-After, for every worker of the location
            except Unavailable:
                failures += 1
                if failures >= self._attempts:
                    raise
                self._backoff(failures)

    def _attempt(self, call: _Call, token: str) -> dict[str, Any]:
        """One exchange with GHL. Unavailable means nothing was changed (safe to retry); a write that may have
        reached GHL and got no clear answer is OutcomeUnknown."""
        started = time.perf_counter()
        try:
            with telemetry.span(
                f"GHL {call.method} {call.path_template}",
                kind="client",
                attributes={
                    "http.method": call.method,
                    "ghl.operation": call.operation,
                    "location_id": call.location_id,
                },
            ):
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.body,
                    headers={"Authorization": f"Bearer {token}", "Version": call.version},
                    timeout=self._timeout,
                )
        except NOT_SENT as exc:
            error: GhlError = Unavailable(f"{call.operation}: GHL unreachable ({type(exc).__name__})")
            self._record(call, started, None, error)
            raise error from exc
        except httpx.TransportError as exc:
            kind = OutcomeUnknown if call.write else Unavailable
            error = kind(f"{call.operation}: no answer from GHL ({type(exc).__name__})")
            self._record(call, started, None, error)
            raise error from exc
        self._observe(call.location_id, response)
        if not response.is_success:
            error = _error_of(call, response, self._clock())
            self._record(call, started, response.status_code, error)
            raise error
        trace_id = response.headers.get(TRACE_HEADER)
        self._record(call, started, response.status_code, None, trace_id)
        return _json_object(call, response, trace_id)

    def _take_slot(self, location_id: str) -> None:
        following = 0
        if getattr(self._row, "location_id", None) == location_id:
            following, self._row.following = self._row.following, 0  # asked once; the next calls find theirs kept
        wait_for_slot(
            self._budget,
            location_id,
            self._max_wait_s,
            clock=self._clock,
            sleep=self._sleep,
            refused=RateLimited,
            following=following,
        )

    def _observe(self, location_id: str, response: httpx.Response) -> None:
        limits = RateLimitHeaders.parse(response.headers)
        if not limits.present:
            return
        previous = self._last_limits.get(location_id)
        self._last_limits[location_id] = limits
        low = limits.remaining is not None and limits.remaining < HEADROOM_ALERT
        if low and (previous is None or previous.remaining is None or previous.remaining >= HEADROOM_ALERT):
            telemetry.alert(
                "rate_headroom_low",
                f"GHL reports {limits.remaining} requests left in the window of location {location_id}",
                location_id=location_id,
                headroom=limits.remaining,
            )
        try:
            self._budget.observe(location_id, limits)
        except GhlError as error:
            # The answer matters more: a write GHL applied must not look "not applied" to the caller.
            log.warning("rate budget of location %s not adapted to GHL's headers: %s", location_id, error.code)

    def _backoff(self, failures: int) -> None:
        """Full jitter: spreads the retries of many workers instead of synchronising them."""
        self._sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (failures - 1))))

    def _record(
        self,
        call: _Call,
        started: float,
        status: int | None,
        error: GhlError | None,
        trace_id: str | None = None,
    ) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        code = error.code if error else None
        trace_id = trace_id or (error.trace_id if error else None)
        if error is None:
            log.debug("ghl %s %s -> %s in %.0f ms", call.operation, call.location_id, status, duration_ms)
        else:
            log.warning(
                "ghl %s failed: location=%s status=%s error=%s trace_id=%s",
                call.operation,
                call.location_id,
                status,
                code,
                trace_id,
                extra={
                    "event": "ghl.call_failed",
                    "operation": call.operation,
                    "location_id": call.location_id,
                    "status_code": status,
                    "error_code": code,
                    "trace_id": trace_id,
                },
            )
        if self._on_call is None:
            return
        record = CallRecord(
            operation=call.operation,
            location_id=call.location_id,
            method=call.method,
            path_template=call.path_template,
            status_code=status,
            duration_ms=duration_ms,
            success=error is None,
            error_code=code,
            trace_id=trace_id,
        )
        try:
            self._on_call(record)
        except Exception:  # metrics must never break a call to GHL
            log.exception("recording a GHL call failed")


def _error_of(call: _Call, response: httpx.Response, now: float) -> GhlError:
    """The error a non-2xx answer means, by what the caller can do about it."""
    status = response.status_code
    body = _json_body(response)
    messages = _messages(body)
    trace_id = response.headers.get(TRACE_HEADER) or (str(body["traceId"]) if body.get("traceId") else None)
    where = f"{call.operation}: {'; '.join(messages) or response.reason_phrase or status}"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        if retry_after is None:
            interval_ms = RateLimitHeaders.parse(response.headers).interval_ms
            retry_after = interval_ms / 1000 if interval_ms else DEFAULT_MAX_WAIT_S
        return RateLimited(retry_after, where, status=status, trace_id=trace_id)
    kind: type[GhlError] = _ERRORS.get(status, GhlError)
    if status >= 500:
        kind = OutcomeUnknown if call.write else Unavailable
    elif status == 400 and any("not found" in m.lower() for m in messages):
        kind = NotFound  # GHL documents only 400 for unknown ids, with a "... not found" message
    elif kind is Invalid:
        return Invalid(messages or [where], where, status=status, trace_id=trace_id)
    return kind(where, status=status, trace_id=trace_id)


def _json_body(response: httpx.Response) -> dict[str, Any]:
    """An error answer's JSON object; empty for anything else (a gateway's HTML page, say)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _messages(body: dict[str, Any]) -> list[str]:
    """GHL's error `message`: a string, or a list of strings for 422."""
    message = body.get("message")
    if isinstance(message, str):
        return [message]
    if isinstance(message, list):
        return [str(m) for m in message]
    return []


def _unexpected(call: _Call, detail: str, status: int, trace_id: str | None) -> GhlError:
    """A 2xx answer we cannot read: a write was applied all the same, so its outcome is unknown to us."""
    message = f"{call.operation}: unexpected answer from GHL ({detail})"
    if call.write:
        return OutcomeUnknown(message, status=status, trace_id=trace_id)
    return GhlError(message, status=status, trace_id=trace_id)


def _json_object(call: _Call, response: httpx.Response, trace_id: str | None) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise _unexpected(call, "not JSON", response.status_code, trace_id) from None
    if not isinstance(body, dict):
        raise _unexpected(call, "not a JSON object", response.status_code, trace_id)
    return body


def _model(call: _Call, data: Any, model: type[M]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise _unexpected(call, f"{model.__name__} fields {fields}", 200, None) from None


def _item(call: _Call, data: dict[str, Any], key: str, model: type[M]) -> M:
    return _model(call, data.get(key), model)


def _items(call: _Call, data: dict[str, Any], key: str, model: type[M]) -> list[M]:
    items = data.get(key)
    if not isinstance(items, list):
        raise _unexpected(call, f"no {key} list", 200, None)
    return [_model(call, item, model) for item in items]


def _seg(value: str) -> str:
    """An id as one path segment (an id with a slash must not reach another endpoint)."""
    if not value:
        raise ValueError("an id is required")
    return quote(value, safe="")


def _with_location(body: Mapping[str, Any], location_id: str) -> dict[str, Any]:
    given = body.get("locationId")
    if given not in (None, location_id):
        raise ValueError("the body's locationId differs from the location called")
    return {**body, "locationId": location_id}


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("list_events needs timezone-aware datetimes")
    return int(moment.timestamp() * 1000)
