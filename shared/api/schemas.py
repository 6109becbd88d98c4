"""Request and response bodies of the HTTP API (pydantic); the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sync_core.miasalud.events import RULE_CODES, SPANISH_CODES
from sync_core.models import AppointmentStatus
from sync_core.times import EARLIEST_YEAR, LATEST_YEAR, OutOfRange, parse_iso_date, parse_iso_datetime

_HOURS = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$")
GHL_ID = r"^[A-Za-z0-9_\-]{1,64}$"

# Errors of rules the OpenAPI document cannot express (a blank text, a time zone name, which of two fields):
# the request matches the document and is refused with 422, where one that does not match it gets 400.
# MiaSalud's: a placeholder ManyChat left unfilled where a value is needed, an id or a date neither form reads.
UNPROCESSABLE = frozenset({"blank_text", "unknown_timezone", "invalid_hours", "one_contact_required"}) | RULE_CODES
# Our own error types, whose message is already the Spanish one for staff.
SPANISH_ERRORS = UNPROCESSABLE | SPANISH_CODES | {"date_out_of_range", "datetime_out_of_range"}

_YEARS = f"el año debe estar entre {EARLIEST_YEAR} y {LATEST_YEAR}"
# The years the product handles, as a pattern the document carries (2000-2099 and 2100).
_YEAR_PATTERN = "(20[0-9]{2}|2100)"


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        raise PydanticCustomError("date_parsing", "Fecha inválida (use AAAA-MM-DD).")
    try:
        return parse_iso_date(text)
    except OutOfRange:
        raise PydanticCustomError("date_out_of_range", f"Fecha fuera de rango: {_YEARS}.") from None
    except ValueError:
        raise PydanticCustomError("date_parsing", "Fecha inválida (use AAAA-MM-DD).") from None


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        raise PydanticCustomError("datetime_parsing", "Fecha y hora inválidas (use ISO-8601).")
    try:
        return parse_iso_datetime(text)
    except OutOfRange:
        raise PydanticCustomError("datetime_out_of_range", f"Fecha y hora fuera de rango: {_YEARS}.") from None
    except ValueError:
        raise PydanticCustomError("datetime_parsing", "Fecha y hora inválidas (use ISO-8601).") from None


# Dates and date-times from clients: strings only (no epoch numbers), read by the one parser of sync_core.times.
ApiDate = Annotated[
    date,
    BeforeValidator(_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": f"^{_YEAR_PATTERN}-"}),
]
ApiDatetime = Annotated[
    datetime,
    BeforeValidator(_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_YEAR_PATTERN}-",
            "description": "ISO-8601; without an offset it is read in the location's time zone",
        }
    ),
]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_text", "El texto no puede estar en blanco.")
    return value


# Query filters: an unknown one is refused, so a misspelt filter (`?desd=`) cannot silently list everything.
# (`parse_query` drops `code`, where Azure carries the function key.)
QUERY = ConfigDict(extra="forbid")


def _query_bool(value: Any) -> Any:
    """Query strings carry text: exactly `true` or `false`, as the document's boolean is written in a URL."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise PydanticCustomError("bool_parsing", "Debe ser true o false.")
        return value == "true"
    return value


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 205.0 as an integer; strict pydantic alone would refuse it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer in a JSON body (strict models: "5" and true are not integers), after its bounds in `Annotated[...]`
# (before them, pydantic would write `ge`/`le` into the document instead of `minimum`/`maximum`).
WHOLE_NUMBER = BeforeValidator(_whole_number)


# Free text a person reads (titles, names): blank is refused, as GHL would replace it with something else.
Text = Annotated[str, AfterValidator(_not_blank)]


class ErrorDetail(BaseModel):
    field: str | None = None
    code: str | None = None
    message: str


class ErrorBody(BaseModel):
    code: str = Field(examples=["schedule_conflict"])
    message: str = Field(examples=["Conflicto de horario con: Consulta (14:00 - 15:00)"])
    details: list[ErrorDetail | str | dict[str, object]] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "unknown_timezone", "Zona horaria desconocida (use un nombre IANA, p. ej. America/Lima)."
        ) from None
    return value


def check_hours(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.replace(" ", "")
    if not _HOURS.match(value) or value[:5] >= value[6:]:
        raise PydanticCustomError("invalid_hours", "Horario inválido: use HH:MM-HH:MM, p. ej. 08:00-20:00.")
    return value


class LocationSettingsIn(BaseModel):
    """A clinic branch linked to a GHL sub-account (location)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ghl_location_id: str = Field(pattern=GHL_ID, examples=["CRlTCqv7ASS9xOpPQ59O"])
    name: Text = Field(min_length=1, max_length=200, examples=["Reflexo Perú - Principal"])
    timezone: str = Field("America/Lima", min_length=1, max_length=64, description="IANA time zone name")
    is_active: bool = True
    default_calendar_id: str | None = Field(None, pattern=GHL_ID)
    working_hours: str | None = Field(None, examples=["08:00-20:00"], description="Local time; default 08:00-20:00")
    validation_mode: Literal["strict", "flexible"] | None = None
    default_duration_min: Annotated[int, Field(ge=5, le=480), WHOLE_NUMBER] | None = Field(
        None, description="Duration of RV3 appointments"
    )
    create_patients_from_ghl: bool = Field(
        False, description="Create RV3 patients for GHL bookings of unknown contacts"
    )
    send_document_id: bool = Field(False, description="Send the patient's DNI to GHL (opt-in)")

    _tz = field_validator("timezone")(check_timezone)
    _hours = field_validator("working_hours")(check_hours)


class LocationSettings(LocationSettingsIn):
    name: str  # as stored (a location installed from GHL is named by GHL)
    id: int
    created_at: datetime
    updated_at: datetime


class LocationList(BaseModel):
    count: int
    results: list[LocationSettings]


class DefaultCalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    calendar_id: str = Field(pattern=GHL_ID)


class CalendarOut(BaseModel):
    """A GHL calendar as the original RV3 integration listed it (GHL's camelCase names kept)."""

    id: str
    name: str
    description: str | None = None
    timezone: str | None = None
    isActive: bool  # GHL's camelCase name, kept for RV3's front end
    locationId: str


class CalendarList(BaseModel):
    calendars: list[CalendarOut]
    total: int
    success: bool = True


class CalendarsQuery(BaseModel):
    model_config = QUERY

    location_id: str | None = Field(None, pattern=GHL_ID)
    refresh: QueryBool = False


class PatientIn(BaseModel):
    """Patient data as the clinic has it: phone without country code, maybe no email, maybe nothing at all."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Text = Field(min_length=1, max_length=200, examples=["María Quispe Huamán"])
    phone: str | None = Field(None, max_length=40, examples=["987654321"])
    email: str | None = Field(None, max_length=254)
    document_id: str | None = Field(None, max_length=20, description="DNI")
    rv3_patient_id: str | None = Field(None, max_length=64)


class CitaIn(BaseModel):
    """An appointment from RV3. Naive times mean the location's time zone (America/Lima by default)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "title": "Consulta Fisioterapia",
                    "patient": {"name": "María Quispe Huamán", "phone": "987654321", "document_id": "45678912"},
                    "ghl_calendar_id": "cal_demo_terapia",
                    "start_time": "2030-03-12T10:00:00-05:00",
                    "end_time": "2030-03-12T11:00:00-05:00",
                    "notes": "Primera consulta",
                }
            ]
        },
    )

    title: Text = Field(min_length=1, max_length=255, examples=["Consulta Fisioterapia"])
    contact_id: str | None = Field(None, pattern=GHL_ID, description="An existing GHL contact of the location")
    patient: PatientIn | None = Field(None, description="Or the patient: the GHL contact is found or created")
    ghl_calendar_id: str | None = Field(
        None,
        pattern=GHL_ID,
        description="Default: the location's default calendar; required (422 calendar_required) when it has none",
    )
    location_id: str | None = Field(None, pattern=GHL_ID, description="GHL location id; default: the only one")
    start_time: ApiDatetime = Field(examples=["2030-12-25T14:00:00-05:00"])
    end_time: ApiDatetime = Field(examples=["2030-12-25T15:00:00-05:00"])
    notes: str | None = Field(None, max_length=5000)
    assigned_user_id: str | None = Field(None, pattern=GHL_ID)
    validation_mode: Literal["strict", "flexible"] | None = Field(
        None, description="Override the location's validation mode for this request"
    )

    @model_validator(mode="after")
    def _one_contact(self) -> CitaIn:
        if (self.contact_id is None) == (self.patient is None):
            raise PydanticCustomError("one_contact_required", "Indique contact_id o patient (uno de los dos).")
        return self


class CitaUpdateIn(CitaIn):
    status: Literal["scheduled", "confirmed", "attended", "no_show"] | None = Field(
        None, description="Use POST .../cancel to cancel"
    )


class PatientOut(BaseModel):
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class ValidationWarning(BaseModel):
    code: str
    message: str


class Cita(BaseModel):
    id: int
    title: str
    location_id: str
    ghl_calendar_id: str
    contact_id: str | None
    patient: PatientOut | None = None
    start_time: datetime = Field(description="ISO-8601 with the location's offset")
    end_time: datetime
    status: str
    notes: str | None = None
    assigned_user_id: str | None = None
    ghl_event_id: str | None = None
    sync_state: Literal["pending", "synced", "error", "local_only"] = Field(
        description="pending: on its way to GHL; synced: GHL holds it; error: GHL refused it (last_error says "
        "why); local_only: cancelled before it ever reached GHL"
    )
    last_error: str | None = None
    version: int
    flags: list[str] = []
    source: str
    warnings: list[ValidationWarning] = []
    created_at: datetime
    updated_at: datetime


class CitaChange(BaseModel):
    """One change of an appointment on its way to GHL (its outbox entry): what, when, and how it ended."""

    operation: str = Field(examples=["create", "update", "cancel", "retry"])
    status: Literal["pending", "dispatched", "done", "failed"] = Field(
        description="pending: not yet queued; dispatched: queued for the worker; done: handled; failed: see last_error"
    )
    version: int = Field(description="The appointment's version the change carries")
    attempts: int
    last_error: str | None = None
    created_at: datetime
    done_at: datetime | None = None


class CitaGhlChange(BaseModel):
    """One GHL webhook about the appointment's event, and what the sync made of it."""

    event_type: str = Field(examples=["AppointmentUpdate"])
    received_at: datetime
    outcome: str | None = Field(
        None,
        description="echo (our own write coming back), ghl_won (taken), local_won (the clinic's newer change was "
        "sent back), stale, same, known, deleted, created, duplicate; failed; null while not applied",
    )
    success: bool | None = None


class CitaConflict(BaseModel):
    """Both sides changed the appointment without seeing each other's change: who won, under which policy."""

    detected_at: datetime
    policy: str = Field(examples=["latest_wins", "rv3_row_changed"])
    winner: str = Field(examples=["rv3", "ghl"])
    rv3_values: dict[str, Any]
    ghl_values: dict[str, Any]


class CitaHistory(BaseModel):
    id: int
    sync_state: Literal["pending", "synced", "error", "local_only"]
    last_error: str | None = None
    changes: list[CitaChange] = Field(description="Changes sent to GHL, newest first (at most 50)")
    ghl_changes: list[CitaGhlChange] = Field(
        default_factory=list, description="GHL's webhooks about its event, newest first (at most 50)"
    )
    conflicts: list[CitaConflict] = Field(default_factory=list, description="Newest first (at most 50)")


class CitaList(BaseModel):
    count: int
    page: int
    page_size: int
    results: list[Cita]


_STATUS = "(" + "|".join(AppointmentStatus.__members__) + ")"
_STATUS_LIST = f"^{_STATUS}(,{_STATUS})*$"


class CitasQuery(BaseModel):
    model_config = QUERY

    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(20, ge=1, le=100)
    status: str | None = Field(
        None,
        pattern=_STATUS_LIST,
        description="One or several, comma-separated: " + ", ".join(AppointmentStatus.__members__),
        examples=["scheduled,confirmed"],
    )
    desde: ApiDate | None = Field(None, description="From this date (location time zone)")
    hasta: ApiDate | None = Field(None, description="Up to and including this date (location time zone)")
    location_id: str | None = Field(None, pattern=GHL_ID)
    sync_state: Literal["pending", "synced", "error", "local_only"] | None = None


class UpcomingQuery(BaseModel):
    model_config = QUERY

    location_id: str | None = Field(None, pattern=GHL_ID)
    limit: int = Field(20, ge=1, le=100)


class GhlWebhookAppointment(BaseModel):
    """GHL's appointment object in a webhook (camelCase as GHL sends it); times ISO-8601 with offset."""

    model_config = ConfigDict(extra="allow")

    id: str
    calendarId: str | None = None
    contactId: str | None = None
    locationId: str | None = None
    groupId: str | None = None
    title: str | None = None
    appointmentStatus: str | None = Field(None, examples=["confirmed"])
    assignedUserId: str | None = None
    users: list[str] = []
    notes: str | None = None
    address: str | None = None
    source: str | None = None
    startTime: str | None = Field(None, examples=["2025-12-22T10:00:00-05:00"])
    endTime: str | None = None
    dateAdded: str | None = None
    dateUpdated: str | None = None


class GhlWebhookIn(BaseModel):
    """A signed GHL webhook (`X-GHL-Signature` Ed25519, else `x-wh-signature` RSA-SHA256, over the raw body).

    Appointment events carry `appointment` (RV3's older integration: `data`); ContactUpdate carries the
    contact's fields at the top level. Other event types are acknowledged and ignored.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["AppointmentUpdate"])
    locationId: str | None = None
    webhookId: str | None = None
    timestamp: str | None = Field(None, examples=["2025-12-22T14:35:00Z"])
    appointment: GhlWebhookAppointment | None = None
    data: GhlWebhookAppointment | None = None


class WebhookAck(BaseModel):
    status: Literal["accepted", "ignored"]
    event_type: str


class MetricsQuery(BaseModel):
    model_config = QUERY

    hours: int = Field(24, ge=1, le=24 * 31, description="Window: the last N hours")


class OperationStats(BaseModel):
    success_count: int
    failed_count: int
    total_count: int
    success_rate: float = Field(description="Percentage of successes, 0-100 (100 when nothing ran)")
    avg_duration_ms: float
    p95_duration_ms: float


class CallsInHour(BaseModel):
    """The calls of one hour of the window (every attempt), for charts of success and latency over time."""

    start: datetime
    total_count: int
    failed_count: int
    success_rate: float = Field(description="Percentage of successes, 0-100 (100 when nothing ran)")
    p95_duration_ms: float


class MetricsWindow(BaseModel):
    hours: int
    desde: datetime
    hasta: datetime


class WebhookMetrics(BaseModel):
    """Processed GHL webhooks per event type over the window; each delivery counts once, by its latest attempt."""

    window: MetricsWindow
    webhooks: dict[str, OperationStats]
    totals: OperationStats
    webhook_health_percentage: float


class HealthCheck(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, HealthCheck]


class RateBudgetOut(BaseModel):
    """A location's shared GHL budget now, and the last `X-RateLimit-*` headers this instance saw."""

    max_requests: int
    interval_s: float
    daily_limit: int
    used_today: int
    daily_remaining: int
    next_slot_in_s: float = Field(description="Wait before the next request may go (0: free now)")
    held_for_s: float = Field(description="Hold after a 429 or a spent day (0: none)")
    reported_remaining: int | None = None
    reported_daily_remaining: int | None = None


class GhlMetrics(BaseModel):
    """Calls to GHL over the window, per operation, by response, and each location's rate budget."""

    window: MetricsWindow
    ghl_operations: dict[str, OperationStats]
    totals: OperationStats
    responses: dict[str, int] = Field(description="Count per HTTP status, or error code when GHL did not answer")
    ghl_health_percentage: float
    rate_budget: dict[str, RateBudgetOut]
    timeline: list[CallsInHour] = Field(default_factory=list, description="The window hour by hour, oldest first")


class OdooMetrics(BaseModel):
    """Calls to Odoo (MiaSalud's CRM) over the window, per model and method (`odoo.res.partner.create`), by
    response; every attempt the client made, retries included."""

    window: MetricsWindow
    odoo_operations: dict[str, OperationStats]
    totals: OperationStats
    responses: dict[str, int] = Field(description="Count per HTTP status, or error code when Odoo answered none")
    odoo_health_percentage: float


class QueueDepth(BaseModel):
    depth: int
    poison: int


class SystemHealth(BaseModel):
    ghl_health_percentage: float
    webhook_health_percentage: float
    overall_health: float


class SystemMetrics(BaseModel):
    window: MetricsWindow
    reconciliation: ReconciliationMetrics
    ghl_operations: dict[str, OperationStats]
    odoo_operations: dict[str, OperationStats] = Field(description="Odoo calls per model and method")
    webhooks: dict[str, OperationStats]
    system_health: SystemHealth
    queues: dict[str, QueueDepth]
    sync_states: dict[str, int] = Field(description="Appointments per sync_state")
    rate_budget: dict[str, RateBudgetOut]
    ghl_timeline: list[CallsInHour] = Field(
        default_factory=list, description="GHL calls hour by hour over the window, oldest first"
    )


# --- RV3's own tables: therapist mapping, GHL bookings waiting for a patient, sync status ---


class Rv3TherapistIn(BaseModel):
    """Who an RV3 therapist is in GHL: their appointments are assigned to this user."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ghl_user_id: str = Field(pattern=GHL_ID, examples=["usr_demo_ana"])
    ghl_calendar_id: str | None = Field(
        None, pattern=GHL_ID, description="The therapist's own GHL calendar; default: the location's default calendar"
    )


class Rv3Therapist(BaseModel):
    id: int = Field(description="The therapist's id in RV3")
    name: str
    is_active: bool
    ghl_user_id: str | None = None
    ghl_calendar_id: str | None = None


class Rv3TherapistList(BaseModel):
    count: int
    results: list[Rv3Therapist]


class Rv3StatusChoiceIn(BaseModel):
    """What one of RV3's statuses means to the sync."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rv3_status_id: Annotated[int, Field(ge=1, le=2**63 - 1), WHOLE_NUMBER] = Field(
        description="The status's id in RV3's `appointment_statuses`"
    )
    status: AppointmentStatus = Field(
        strict=False, description="What it means: " + ", ".join(AppointmentStatus.__members__)
    )
    write: bool = Field(
        False, description="Write this one when a GHL change sets that status (only when several mean the same)"
    )


class Rv3StatusMapIn(BaseModel):
    """The location's whole mapping of RV3 statuses (replaces the previous one; an empty list forgets it, and
    every status is read by its name again)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    statuses: list[Rv3StatusChoiceIn] = Field(max_length=200)


class Rv3StatusOut(BaseModel):
    id: int = Field(description="The status's id in RV3")
    name: str
    status: AppointmentStatus | None = Field(description="What it means to the sync; null: nothing (not synced)")
    source: Literal["mapping", "name"] | None = Field(
        description="`mapping`: set through this API; `name`: read by its name; null: not understood"
    )
    write: bool = Field(description="Written into RV3 when a GHL change sets `status`")


class Rv3StatusList(BaseModel):
    count: int
    results: list[Rv3StatusOut]
    missing: list[AppointmentStatus] = Field(
        description="Statuses a GHL change may need to write that RV3 has no status for"
    )
    problems: list[str] = Field(description="What to fix, in Spanish (empty when every status is understood)")


class Rv3ReviewContact(BaseModel):
    ghl_contact_id: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class Rv3Review(BaseModel):
    """A GHL booking (e.g. the online widget) for a contact no RV3 patient is known for."""

    id: int
    cita_id: int
    ghl_event_id: str | None = None
    title: str
    start_time: datetime
    end_time: datetime
    contact: Rv3ReviewContact
    reason: str = Field(examples=["unknown_contact"])
    status: Literal["open", "resolved"]
    rv3_patient_id: int | None = None
    rv3_appointment_id: int | None = None
    created_at: datetime


class Rv3ReviewList(BaseModel):
    count: int
    results: list[Rv3Review]


class Rv3ResolveIn(BaseModel):
    """The RV3 patient the booking is for; the appointment is then created in RV3 for them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rv3_patient_id: Annotated[int, Field(ge=1, le=2**63 - 1), WHOLE_NUMBER]


class Rv3RejectedRow(BaseModel):
    """An RV3 row the sync skips because it cannot map it (RV3 accepted it: a null `appointment_date`...)."""

    table: str = Field(description="RV3's table, e.g. appointments")
    rv3_id: int
    reason: str = Field(description="Why, in Spanish, for the front desk")
    rv3_updated_at: str | None = None
    seen_at: datetime


class Rv3FailedWrite(BaseModel):
    """A GHL change RV3 refused to take (a required column, a duplicate...): not retried until asked again."""

    cita_id: int = Field(description="The sync's appointment id")
    rv3_appointment_id: int | None = Field(None, description="RV3's appointment; null when creating it was refused")
    operation: Literal["update", "create"]
    reason: str = Field(description="Why, in Spanish, with RV3's own message")
    failed_at: datetime


class Rv3SyncStatus(BaseModel):
    """Where the sync with RV3's own tables stands."""

    configured: bool
    location_id: str | None = None
    last_run_at: datetime | None = None
    last_error: str | None = None
    appointments_read_to: str | None = Field(None, description="RV3's updated_at of the last change read")
    patients_read_to: str | None = None
    swept_at: datetime | None = None
    pending_writebacks: int = 0
    failed_writebacks: int = 0
    pending_contact_updates: int = 0
    open_reviews: int = 0
    failed_writes: list[Rv3FailedWrite] = Field(
        default_factory=list, description="Write-backs RV3 refused (newest first, up to 100)"
    )
    rejected_rows: list[Rv3RejectedRow] = Field(
        default_factory=list, description="RV3 rows skipped until they are fixed in RV3 (newest first, up to 100)"
    )
    status_problems: list[str] = Field(
        default_factory=list,
        description="RV3 statuses the sync does not understand, statuses RV3 lacks (see GET /api/rv3/statuses)",
    )


# --- reconciliation --------------------------------------------------------------------------------------------

RunStatus = Literal["queued", "running", "completed", "failed"]


def _day_or_instant(value: Any) -> date | datetime:
    # A plain date is a whole day; read as a date-time it would be midnight.
    if isinstance(value, date) and not isinstance(value, datetime):
        return _date(value)
    if isinstance(value, str) and len(value.strip()) == 10:
        return _date(value)
    return _datetime(value)


ReportBound = Annotated[
    datetime | date,
    BeforeValidator(_day_or_instant),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "pattern": f"^{_YEAR_PATTERN}-"},
                {"type": "string", "format": "date-time", "pattern": f"^{_YEAR_PATTERN}-"},
            ]
        }
    ),
]


class ReconciliationRunIn(BaseModel):
    """An on-demand run. Dates (YYYY-MM-DD) are whole days in the location's time zone, `hasta` included;
    date-times without offset are read in that zone. Default window: the last RECONCILE_WINDOW_HOURS."""

    model_config = ConfigDict(extra="forbid", strict=True)

    location_id: str | None = Field(None, pattern=GHL_ID, description="Default: every active location")
    desde: ReportBound | None = Field(None, examples=["2030-12-22", "2030-12-22T08:00:00-05:00"])
    hasta: ReportBound | None = Field(None, examples=["2030-12-22"])
    heal: bool | None = Field(None, description="Fix the drift found (default: RECONCILE_AUTOHEAL)")
    max_events_per_slice: Annotated[int, Field(ge=2, le=5000), WHOLE_NUMBER] | None = Field(
        None, description="Narrow a GHL time slice in which this many events start (default 200)"
    )


class ReconciliationRunQuery(ReconciliationRunIn):
    """The same run requested with query parameters (the function key may travel as `code`)."""

    model_config = ConfigDict(extra="ignore", strict=False)

    heal: QueryBool | None = Field(None, description="Fix the drift found (default: RECONCILE_AUTOHEAL)")


class ReportWindowOut(BaseModel):
    desde: datetime
    hasta: datetime


class ReconciliationRunReport(BaseModel):
    id: int = Field(description="Report id: GET /api/reconciliation/reports/{id}")
    location_id: str
    window: ReportWindowOut
    status: RunStatus


class ReconciliationRun(BaseModel):
    run_id: str
    heal: bool
    reports: list[ReconciliationRunReport]


class ReconciliationReportSummary(BaseModel):
    id: int
    run_id: str
    location_id: str
    status: RunStatus
    heal: bool
    fecha: datetime = Field(description="When the run finished (or was requested, while unfinished)")
    window: ReportWindowOut
    drift: int
    totales: dict[str, int]
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class ReconciliationReportOut(ReconciliationReportSummary):
    """SPEC §8's report; lists name at most 1000 appointments each (`totales` counts all of them). With
    RV3_SQL_URL, a difference between RV3's own tables and the sync has `origen: "rv3"` and `rv3_id`."""

    faltantes_local: list[dict[str, Any]] = Field(description="In GHL, not in RV3")
    faltantes_ghl: list[dict[str, Any]] = Field(description="In RV3 (to be synced), not in GHL")
    canceladas_no_actualizadas: list[dict[str, Any]] = Field(description="Cancelled (or deleted) on one side only")
    desincronizadas: list[dict[str, Any]] = Field(description='{"id", "ghl_event_id", "campos": {f: {rv3, ghl}}}')
    acciones: list[dict[str, Any]] = Field(description="Fixes sent through the normal sync path (auto-heal)")
    checkpoint: datetime | None = Field(None, description="How far an unfinished run has walked")


class ReconciliationReportList(BaseModel):
    count: int
    page: int
    page_size: int
    results: list[ReconciliationReportSummary]


class ReportsQuery(BaseModel):
    model_config = QUERY

    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(20, ge=1, le=100)
    location_id: str | None = Field(None, pattern=GHL_ID)
    run_id: str | None = Field(None, max_length=36)
    status: RunStatus | None = None


class ReconciliationRunState(BaseModel):
    run_id: str
    report_id: int
    status: RunStatus
    created_at: datetime
    finished_at: datetime | None = None
    drift: int
    error: str | None = None


class ReconciliationLocationState(BaseModel):
    location_id: str
    last_run: ReconciliationRunState | None
    last_success: ReconciliationRunState | None
    hours_since_success: float | None
    stale: bool = Field(description="No successful run in the last `stale_after_hours` (a missed or failed run)")


class ReconciliationMetrics(BaseModel):
    """Last run and last successful run per active location; timers are not retried, so a gap shows here."""

    stale_after_hours: float
    healthy: bool
    locations: list[ReconciliationLocationState]


class OAuthCallbackQuery(BaseModel):
    """What GHL appends to the callback URL: the authorization `code` and our signed `state`, or an `error`."""

    model_config = ConfigDict(extra="ignore")

    code: str | None = Field(None, max_length=2048, description="GHL's authorization code (single use)")
    state: str | None = Field(
        None, max_length=1024, description="The signed state of GET /api/ghl/oauth/authorize (10 minutes, once)"
    )
    error: str | None = Field(None, max_length=200, description="Set by GHL when the install was denied")
