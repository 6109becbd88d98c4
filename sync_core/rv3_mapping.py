"""RV3's own rows mapped to the sync's appointment and GHL contact, and GHL's changes mapped back to RV3's columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sync_core.contacts import ContactDraft, Patient, build_contact, normalize_email, normalize_phone
from sync_core.errors import DomainError
from sync_core.hashing import payload_hash
from sync_core.models import AppointmentStatus, UtcDatetime
from sync_core.rv3_statuses import LABELS, Rv3StatusMap, needs_row
from sync_core.text import collapse_spaces, fold
from sync_core.times import combine_local, zone

DEFAULT_TITLE = "Cita"
PLACEHOLDER_NAME = "Paciente"
_PERU = "+51"


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = collapse_spaces(str(value))
    return cleaned or None


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)


# --- RV3's rows, as the rv3-db adapter reads them (clinical and billing columns are never even selected) ---


class Rv3Appointment(_Row):
    """One row of RV3's `appointments`: date and hour in Lima wall time, no end time, status by name."""

    id: int
    patient_id: int
    therapist_id: int | None = None
    appointment_date: date
    hour: time | None = None
    status_id: int | None = None
    status_name: str | None = None
    appointment_type: str | None = None
    room: str | None = None
    updated_at: datetime | None = None  # RV3's own stamp: naive, in its server's clock and convention
    deleted: bool = False

    @field_validator("hour")
    @classmethod
    def _whole_seconds(cls, value: time | None) -> time | None:
        return value.replace(microsecond=0) if value is not None else None

    @property
    def cursor(self) -> Cursor | None:
        return Cursor(updated_at=self.updated_at, id=self.id) if self.updated_at is not None else None


# Why a row RV3 accepted cannot be synced, as the front desk reads it in `GET /api/rv3/status`.
UNREADABLE_REASONS = {
    "no_date": "La cita no tiene fecha (appointment_date vacío): no se sincroniza con GoHighLevel hasta que "
    "se le ponga una en Reflexo V3.",
    "invalid_row": "La cita tiene datos que no se pueden leer (fecha, hora o paciente inválidos): no se "
    "sincroniza con GoHighLevel hasta que se corrija en Reflexo V3.",
}


class Rv3Unreadable(_Row):
    """A row of RV3's `appointments` RV3 accepts but the sync cannot map (RV3's API takes a null
    `appointment_date`): it is reported and skipped, and the rows after it and the cursor go on."""

    id: int
    updated_at: datetime | None = None
    reason: str  # a key of UNREADABLE_REASONS

    @property
    def cursor(self) -> Cursor | None:
        return Cursor(updated_at=self.updated_at, id=self.id) if self.updated_at is not None else None

    @property
    def message(self) -> str:
        return UNREADABLE_REASONS.get(self.reason, UNREADABLE_REASONS["invalid_row"])


class Rv3Patient(_Row):
    """One row of RV3's `patients` (contact data only)."""

    id: int
    name: str | None = None
    last_name_paternal: str | None = None
    last_name_maternal: str | None = None
    phone1: str | None = None
    phone2: str | None = None
    email: str | None = None
    document_number: str | None = None
    updated_at: datetime | None = None
    deleted: bool = False

    @property
    def cursor(self) -> Cursor | None:
        return Cursor(updated_at=self.updated_at, id=self.id) if self.updated_at is not None else None

    def patient(self) -> Patient:
        """The patient as the sync's contact rules know it: RV3's split surnames, both phones, its id."""
        return Patient(
            name=_text(self.name) or PLACEHOLDER_NAME,
            last_name_paternal=_text(self.last_name_paternal),
            last_name_maternal=_text(self.last_name_maternal),
            phone=self.phone1,
            phone2=self.phone2,
            email=self.email,
            rv3_patient_id=str(self.id),
        )


class Rv3Therapist(_Row):
    id: int
    first_name: str | None = None
    last_name_paternal: str | None = None
    last_name_maternal: str | None = None
    is_active: bool = True

    @property
    def full_name(self) -> str:
        parts = (self.first_name, self.last_name_paternal, self.last_name_maternal)
        return " ".join(part for part in (_text(p) for p in parts) if part) or f"Terapeuta {self.id}"


class Cursor(BaseModel):
    """A position in RV3's change order: (`updated_at`, `id`), so rows sharing one second are not skipped."""

    model_config = ConfigDict(frozen=True)

    updated_at: datetime
    id: int


# --- RV3 → sync ---------------------------------------------------------------------------------------------


class Rv3Snapshot(BaseModel):
    """RV3's own values of the synced columns of one appointment, as the sync last saw (or wrote) them.

    Comparing a row with its snapshot tells an RV3-side change from a re-read, and from the echo of the
    sync's own write-back.
    """

    model_config = ConfigDict(frozen=True)

    patient_id: int
    therapist_id: int | None
    day: date
    hour: time | None
    status: str | None
    type: str | None
    room: str | None
    deleted: bool

    @classmethod
    def of(cls, row: Rv3Appointment) -> Rv3Snapshot:
        return cls(
            patient_id=row.patient_id,
            therapist_id=row.therapist_id,
            day=row.appointment_date,
            hour=row.hour,
            status=_text(row.status_name),
            type=_text(row.appointment_type),
            room=_text(row.room),
            deleted=row.deleted,
        )


class TherapistLink(BaseModel):
    """Where an RV3 therapist's appointments go in GHL: their GHL user and, optionally, their own calendar."""

    model_config = ConfigDict(frozen=True)

    ghl_user_id: str
    ghl_calendar_id: str | None = None


class MappingRules(BaseModel):
    """What the mapping of one location needs besides the row itself."""

    model_config = ConfigDict(frozen=True)

    timezone: str
    duration_min: int = Field(ge=1)
    default_calendar_id: str | None = None
    not_before: date | None = None  # appointments before this day are history: not brought to GHL
    therapists: Mapping[int, TherapistLink] = Field(default_factory=dict)
    statuses: Rv3StatusMap = Field(default_factory=Rv3StatusMap)  # RV3's statuses and the location's mapping


class SyncedAppointment(BaseModel):
    """The content of the sync store's appointment that RV3's columns decide."""

    model_config = ConfigDict(frozen=True)

    calendar_id: str
    start: UtcDatetime
    end: UtcDatetime
    status: AppointmentStatus
    title: str
    assigned_user_id: str | None = None


class PlanKind(StrEnum):
    create = "create"
    update = "update"
    cancel = "cancel"
    rebook = "rebook"  # another patient: GHL cannot give an appointment to another contact
    unchanged = "unchanged"
    skip = "skip"


class Rv3Plan(BaseModel):
    """What an RV3 row does to the sync store: `values` to store (and push to GHL) for create/update/cancel."""

    model_config = ConfigDict(frozen=True)

    kind: PlanKind
    values: SyncedAppointment | None = None
    reason: str = ""
    flags: list[str] = Field(default_factory=list)


def title_for(snapshot: Rv3Snapshot) -> str:
    """GHL's title: RV3's appointment type and consulting room (never a clinical field)."""
    base = snapshot.type or DEFAULT_TITLE
    return f"{base} - Consultorio {snapshot.room}" if snapshot.room else base


def rv3_start(snapshot: Rv3Snapshot, timezone: str) -> datetime | None:
    """The UTC start of an RV3 appointment (its date and hour in the location's zone); None without an hour."""
    if snapshot.hour is None:
        return None
    try:
        return combine_local(snapshot.day, snapshot.hour, timezone)
    except DomainError:
        return None


def _status(name: str | None, fallback: AppointmentStatus, rules: MappingRules) -> tuple[AppointmentStatus, list[str]]:
    status = rules.statuses.status_of(name)
    if status is None:
        return fallback, [f"unknown_rv3_status:{(name or '')[:40]}"]
    return status, []


def plan_change(
    previous: Rv3Snapshot | None,
    current: Rv3Snapshot,
    stored: SyncedAppointment | None,
    rules: MappingRules,
) -> Rv3Plan:
    """Decide what an RV3 row means for the sync store's appointment (`stored`, None when it has none yet).

    Only the columns that changed since `previous` are taken, so a change made in GHL to another field (a
    longer duration, a new title) is not undone by an unrelated RV3 edit. A moved appointment keeps its length.
    """
    if stored is None:
        return _plan_new(current, rules)
    if previous is not None and current.patient_id != previous.patient_id:
        return Rv3Plan(kind=PlanKind.rebook, reason="patient_changed_in_rv3")
    if current == previous:
        return Rv3Plan(kind=PlanKind.unchanged, reason="same_as_last_seen")
    values, flags = stored, []
    if previous is None or (current.day, current.hour) != (previous.day, previous.hour):
        start = rv3_start(current, rules.timezone)
        if start is None:
            flags.append("rv3_without_hour")
        else:
            values = values.model_copy(update={"start": start, "end": start + (stored.end - stored.start)})
    if previous is None or (current.status, current.deleted) != (previous.status, previous.deleted):
        status, unknown = (
            (AppointmentStatus.cancelled, []) if current.deleted else _status(current.status, stored.status, rules)
        )
        values, flags = values.model_copy(update={"status": status}), flags + unknown
    if previous is None or current.therapist_id != previous.therapist_id:
        values = assign(values, _therapist(current, rules))
    if previous is None or (current.type, current.room) != (previous.type, previous.room):
        values = values.model_copy(update={"title": title_for(current)})
    if values == stored:
        return Rv3Plan(kind=PlanKind.unchanged, reason="same_content", flags=flags)
    cancelled = values.status is AppointmentStatus.cancelled and stored.status is not AppointmentStatus.cancelled
    kind = PlanKind.cancel if cancelled else PlanKind.update
    return Rv3Plan(kind=kind, values=values, reason="changed_in_rv3", flags=flags)


def assign(values: SyncedAppointment, link: TherapistLink | None) -> SyncedAppointment:
    """The appointment given to a therapist's GHL user, and moved to their own calendar when they have one."""
    update: dict[str, object] = {"assigned_user_id": link.ghl_user_id if link else None}
    if link is not None and link.ghl_calendar_id:
        update["calendar_id"] = link.ghl_calendar_id
    return values.model_copy(update=update)


def _therapist(snapshot: Rv3Snapshot, rules: MappingRules) -> TherapistLink | None:
    return rules.therapists.get(snapshot.therapist_id) if snapshot.therapist_id is not None else None


def _plan_new(current: Rv3Snapshot, rules: MappingRules) -> Rv3Plan:
    if current.deleted:
        return Rv3Plan(kind=PlanKind.skip, reason="deleted_in_rv3")
    if rules.not_before is not None and current.day < rules.not_before:
        return Rv3Plan(kind=PlanKind.skip, reason="in_the_past")
    start = rv3_start(current, rules.timezone)
    if start is None:
        return Rv3Plan(kind=PlanKind.skip, reason="rv3_without_hour")
    link = _therapist(current, rules)
    calendar_id = (link.ghl_calendar_id if link else None) or rules.default_calendar_id
    if calendar_id is None:
        return Rv3Plan(kind=PlanKind.skip, reason="no_calendar")
    status, flags = _status(current.status, AppointmentStatus.scheduled, rules)
    if status is AppointmentStatus.cancelled:
        # Never reached GHL and never will: there is nothing to cancel there.
        return Rv3Plan(kind=PlanKind.skip, reason="cancelled_before_sync")
    values = SyncedAppointment(
        calendar_id=calendar_id,
        start=start,
        end=start + timedelta(minutes=rules.duration_min),
        status=status,
        title=title_for(current),
        assigned_user_id=link.ghl_user_id if link else None,
    )
    return Rv3Plan(kind=PlanKind.create, values=values, reason="new_in_rv3", flags=flags)


def rv3_wall_clock(now: datetime, timezone: str) -> datetime:
    """`now` as RV3 stamps its rows (Django `USE_TZ=False`, `TIME_ZONE` America/Lima): naive local wall time,
    microseconds kept. The sync's own writes into RV3 carry it, so they sort among the front desk's saves."""
    return now.astimezone(zone(timezone)).replace(tzinfo=None)


def advance_cursor(current: Cursor | None, seen: Iterable[Cursor], *, not_after: datetime) -> Cursor | None:
    """The furthest position read, never past `not_after` (RV3's now): a stamp from a wrong clock, or one the sync
    wrote with the database's UTC clock before, must not skip real changes. A cursor already past it comes back."""
    best = current if current is None or current.updated_at <= not_after else Cursor(updated_at=not_after, id=0)
    for cursor in seen:
        if cursor.updated_at <= not_after and (
            best is None or (cursor.updated_at, cursor.id) > (best.updated_at, best.id)
        ):
            best = cursor
    return best


# --- GHL → RV3 ----------------------------------------------------------------------------------------------


class Rv3Write(BaseModel):
    """The RV3 columns a GHL change sets: date and hour in Lima, and the status row (None keeps RV3's status).

    `missing_status`: the sync status RV3 has no status row for (a no-show never is: RV3 needs none)."""

    model_config = ConfigDict(frozen=True)

    day: date
    hour: time
    status_id: int | None = None
    status_name: str | None = None
    missing_status: AppointmentStatus | None = None


def writeback_target(values: SyncedAppointment, timezone: str, statuses: Rv3StatusMap) -> Rv3Write:
    """The RV3 columns for the appointment as the sync now holds it (after a GHL change)."""
    local = values.start.astimezone(zone(timezone))
    row = statuses.row_for(values.status)
    return Rv3Write(
        day=local.date(),
        hour=local.time().replace(microsecond=0, tzinfo=None),
        status_id=row.id if row else None,
        status_name=row.name if row else None,
        missing_status=values.status if row is None and needs_row(values.status) else None,
    )


def unwritable_status(current: Rv3Snapshot, target: Rv3Write, statuses: Rv3StatusMap) -> AppointmentStatus | None:
    """The status a GHL change set that RV3 cannot take (it has no status row for it), unless RV3's row already
    means it: the write-back of the date and hour goes on, and this is reported as a refused write."""
    wanted = target.missing_status
    if wanted is None:
        return None
    held = statuses.status_of(current.status)
    same = {held, wanted} <= {AppointmentStatus.scheduled, AppointmentStatus.confirmed} or held is wanted
    return None if same else wanted


# Why a write-back failed for good, as stored in the link's `last_error` ("code: detail", at most 200 characters).
REFUSED = "rv3_refused"  # RV3 refused the write: detail is RV3's own message
STATUS_MISSING = "rv3_status_missing"  # RV3 has no status row for the GHL status: detail is the sync status


def refusal(code: str, detail: str) -> str:
    return f"{code}: {detail}"


def describe_refusal(last_error: str | None) -> str:
    """A failed write-back's reason, as the front desk reads it (status, reconciliation)."""
    code, _, detail = (last_error or "").partition(": ")
    if code == STATUS_MISSING and detail in AppointmentStatus.__members__:
        return (
            f"Reflexo V3 no tiene un estado para «{LABELS[AppointmentStatus(detail)]}»: se escribieron la fecha y "
            "la hora, el estado no. Cree el estado en Reflexo V3 y asígnelo en PUT /api/rv3/statuses; la "
            "conciliación con «heal» lo escribe después."
        )
    detail = detail if code == REFUSED else (last_error or "")
    return f"Reflexo V3 rechazó el cambio y no se reintentará: {detail or 'motivo desconocido'}."


class WritebackKind(StrEnum):
    write = "write"
    already = "already"  # RV3 holds it (e.g. written before a crash): nothing to do
    conflict = "conflict"  # the front desk changed the same columns since the sync last saw them: theirs stands
    missing = "missing"  # deleted in RV3: the deletion reaches GHL through the capture instead


def _written(snapshot: Rv3Snapshot) -> tuple[date, time | None, str | None]:
    return snapshot.day, snapshot.hour, snapshot.status


def status_holds(current: Rv3Snapshot, target: Rv3Write) -> bool:
    """Whether RV3's row has the written status (a status RV3 has no row for, such as no-show, is not compared)."""
    return target.status_name is None or current.status == _text(target.status_name)


def holds(current: Rv3Snapshot, target: Rv3Write) -> bool:
    """Whether RV3's row already has the written columns: date, hour and status."""
    return (current.day, current.hour) == (target.day, target.hour) and status_holds(current, target)


def decide_writeback(seen: Rv3Snapshot | None, current: Rv3Snapshot | None, target: Rv3Write) -> WritebackKind:
    """Whether a GHL change may be written over RV3's row `current`, last seen by the sync as `seen`."""
    if current is None or current.deleted:
        return WritebackKind.missing
    if holds(current, target):
        return WritebackKind.already
    if seen is not None and _written(current) != _written(seen):
        return WritebackKind.conflict
    return WritebackKind.write


def after_write(base: Rv3Snapshot, target: Rv3Write) -> Rv3Snapshot:
    """`base` with the written columns: what the sync expects RV3 to hold once the write-back is done.

    Other columns keep the value the sync last saw, so a concurrent front-desk edit of one of them still
    reads as an RV3 change afterwards.
    """
    update: dict[str, object] = {"day": target.day, "hour": target.hour}
    if target.status_name is not None:
        update["status"] = _text(target.status_name)
    return base.model_copy(update=update)


class NewRv3Appointment(BaseModel):
    """An RV3 appointment for a booking made in GHL; only scheduling columns (RV3 fills in the clinical ones)."""

    model_config = ConfigDict(frozen=True)

    patient_id: int
    therapist_id: int | None
    day: date
    hour: time
    status_id: int | None
    status_name: str | None

    def snapshot(self) -> Rv3Snapshot:
        return Rv3Snapshot(
            patient_id=self.patient_id,
            therapist_id=self.therapist_id,
            day=self.day,
            hour=self.hour,
            status=_text(self.status_name),
            type=None,
            room=None,
            deleted=False,
        )


def new_rv3_appointment(
    values: SyncedAppointment, *, patient_id: int, timezone: str, statuses: Rv3StatusMap
) -> NewRv3Appointment:
    """The RV3 row of a GHL booking. It has no therapist: in RV3 a therapist is given to an appointment when the
    patient is attended (RV3 then shows it as Completado), so a booking's GHL assignee is not written as one; the
    front desk's assignment later reaches GHL as the appointment's user."""
    target = writeback_target(values, timezone, statuses)
    return NewRv3Appointment(
        patient_id=patient_id,
        therapist_id=None,
        day=target.day,
        hour=target.hour,
        status_id=target.status_id,
        status_name=target.status_name,
    )


class GhlPerson(BaseModel):
    """A GHL contact as the sync stores it (one full name, E.164 phone, email)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    phone: str | None = None
    email: str | None = None


class NewRv3Patient(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    last_name_paternal: str | None
    last_name_maternal: str | None
    phone1: str | None
    email: str | None


def rv3_phone(e164: str | None) -> str | None:
    """A phone the way RV3's staff type it: Peruvian numbers without +51, others in E.164."""
    if e164 is None:
        return None
    return e164.removeprefix(_PERU) if e164.startswith(_PERU) else e164


def new_rv3_patient(person: GhlPerson) -> NewRv3Patient | None:
    """An RV3 patient for a GHL contact (None without a name): surnames split the Peruvian way."""
    name = _text(person.name)
    if name is None:
        return None
    first, last = Patient(name=name).name_parts()
    surnames = (last or "").split()
    paternal = " ".join(surnames[:-1]) if len(surnames) > 1 else (surnames[0] if surnames else None)
    maternal = surnames[-1] if len(surnames) > 1 else None
    return NewRv3Patient(
        name=first,
        last_name_paternal=paternal or None,
        last_name_maternal=maternal,
        phone1=rv3_phone(normalize_phone(person.phone)),
        email=normalize_email(person.email),
    )


def _email_key(raw: str | None) -> str | None:
    email = normalize_email(raw)
    return email.lower() if email else None


def match_patient(person: GhlPerson, candidates: Sequence[Rv3Patient]) -> Rv3Patient | None:
    """The one RV3 patient a GHL contact is: same email (unique in RV3), else same phone AND first name.

    A phone alone is not enough: families share one.
    """
    live = [c for c in candidates if not c.deleted]
    email = _email_key(person.email)
    if email is not None:
        by_email = [c for c in live if _email_key(c.email) == email]
        if len(by_email) == 1:
            return by_email[0]
    phone = normalize_phone(person.phone)
    first = fold((_text(person.name) or "").split(" ")[0]) if person.name else ""
    if phone is None or not first:
        return None
    by_phone = [
        c
        for c in live
        if phone in (normalize_phone(c.phone1), normalize_phone(c.phone2))
        and fold((_text(c.name) or "").split(" ")[0]) == first
    ]
    return by_phone[0] if len(by_phone) == 1 else None


# --- patients → GHL contacts --------------------------------------------------------------------------------


def contact_digest(draft: ContactDraft) -> str:
    """The hash of what a GHL contact holds of a patient (names, phone, email)."""
    return payload_hash(
        {"first": draft.first_name, "last": draft.last_name, "phone": draft.phone, "email": draft.email}
    )


def contact_for(patient: Rv3Patient, location_id: str) -> ContactDraft:
    """The GHL contact of an RV3 patient: firstName = name, lastName = paternal + maternal, E.164 phone."""
    return build_contact(patient.patient(), location_id)


def contact_from_link(full_name: str | None, phone: str | None, email: str | None, location_id: str) -> ContactDraft:
    """The contact the `rv3-to-ghl` worker creates from a patient link (one full name, split by convention)."""
    return build_contact(Patient(name=full_name or PLACEHOLDER_NAME, phone=phone, email=email), location_id)


def contact_update_body(draft: ContactDraft, *, shared: bool) -> dict[str, object]:
    """The `PUT /contacts/{id}` body; a contact shared by several patients (a family) keeps its name."""
    body: dict[str, object] = {}
    if not shared:
        body.update(firstName=draft.first_name, name=draft.name)
        if draft.last_name:
            body["lastName"] = draft.last_name
    if draft.phone:
        body["phone"] = draft.phone
    if draft.email:
        body["email"] = draft.email
    return body
