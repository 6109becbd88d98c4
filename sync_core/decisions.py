"""Sync decisions: what a GHL event does locally, what a local change sends, what a lost create adopts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import SyncedFields, sync_hash, synced_fields_from_appointment, synced_fields_from_ghl
from sync_core.models import Appointment, AppointmentStatus, ConflictPolicy, Source, SyncState, UtcDatetime
from sync_core.webhooks import GhlAppointmentEvent

DEFAULT_TITLE = "Cita"


DELETED_IN_GHL = "deleted_in_ghl"  # flag of an appointment whose GHL event was deleted


class EffectKind(StrEnum):
    create = "create"
    update = "update"
    cancel = "cancel"
    delete = "delete"
    conflict = "conflict"
    ignore_echo = "ignore_echo"
    ignore_stale = "ignore_stale"
    ignore_unknown = "ignore_unknown"
    ignore_noop = "ignore_noop"


class AppointmentChanges(BaseModel):
    """The local appointment's new values after taking GHL's state. `None` text fields mean "keep"."""

    model_config = ConfigDict(frozen=True)

    ghl_event_id: str
    calendar_id: str
    contact_id: str | None
    title: str | None
    notes: str | None
    assigned_user_id: str | None
    start: UtcDatetime
    end: UtcDatetime
    status: AppointmentStatus
    ghl_updated_at: UtcDatetime | None
    synced_hash: str
    flags: list[str] = Field(default_factory=list)

    def apply_to(self, current: Appointment) -> Appointment:
        """`current` with these values, marked synced, its version bumped (so stale API edits get 412)."""
        return current.model_copy(
            update={
                "ghl_event_id": self.ghl_event_id,
                "calendar_id": self.calendar_id,
                "contact_id": self.contact_id or current.contact_id,
                "title": self.title if self.title is not None else current.title,
                "notes": self.notes if self.notes is not None else current.notes,
                "assigned_user_id": self.assigned_user_id,
                "start": self.start,
                "end": self.end,
                "status": self.status,
                "ghl_updated_at": self.ghl_updated_at or current.ghl_updated_at,
                "last_synced_hash": self.synced_hash,
                "sync_state": SyncState.synced,
                "last_error": None,
                "version": current.version + 1,
                "flags": _merge_flags(current.flags, self.flags),
            }
        )

    def new_appointment(self, *, appointment_id: str, location_id: str) -> Appointment:
        """A local appointment for an event first seen in GHL (the caller chooses the id)."""
        return Appointment(
            id=appointment_id,
            location_id=location_id,
            calendar_id=self.calendar_id,
            contact_id=self.contact_id,
            title=self.title or DEFAULT_TITLE,
            notes=self.notes,
            assigned_user_id=self.assigned_user_id,
            start=self.start,
            end=self.end,
            status=self.status,
            ghl_event_id=self.ghl_event_id,
            sync_state=SyncState.synced,
            last_synced_hash=self.synced_hash,
            ghl_updated_at=self.ghl_updated_at,
            source=Source.ghl,
            flags=list(self.flags),
        )


class Effect(BaseModel):
    """The decision on one GHL appointment event.

    `changes` is set for create, update, cancel, delete and a conflict GHL won; apply it with
    `changes.apply_to(current)` or `changes.new_appointment(...)`. For a conflict, `winner` says which
    side's version stands, and the caller records the conflict either way.
    """

    model_config = ConfigDict(frozen=True)

    kind: EffectKind
    reason: str
    changes: AppointmentChanges | None = None
    winner: Source | None = None


def decide_webhook_effect(
    current: Appointment | None,
    event: GhlAppointmentEvent,
    *,
    policy: ConflictPolicy,
    has_pending_local_change: bool,
) -> Effect:
    """Decide what a GHL appointment event does to the local appointment it refers to (if any)."""
    ghl = event.appointment
    if event.action == "delete":
        return _decide_delete(current, ghl, has_pending_local_change=has_pending_local_change)
    fields = synced_fields_from_ghl(ghl)
    event_hash = sync_hash(fields)
    changes = _changes_from_ghl(ghl, fields, event_hash, current)
    if current is None:
        return Effect(kind=EffectKind.create, reason="new_in_ghl", changes=changes)
    echo = echo_of(current, ghl)
    if echo is not None:
        return Effect(kind=EffectKind.ignore_echo, reason=echo)
    stale = _stale(current, ghl)
    if stale is not None:
        return Effect(kind=EffectKind.ignore_stale, reason=stale)
    if has_pending_local_change:
        return _resolve_conflict(current, ghl, changes, policy)
    if changes.status == AppointmentStatus.cancelled and current.status != AppointmentStatus.cancelled:
        kind, reason = EffectKind.cancel, "cancelled_in_ghl"
    else:
        kind, reason = EffectKind.update, "changed_in_ghl"
    return Effect(kind=kind, reason=reason, changes=changes)


def _stale(current: Appointment, ghl: GhlAppointment) -> str | None:
    """Why GHL's event is older than what the appointment already took from GHL, else None."""
    if DELETED_IN_GHL in current.flags:
        # GHL never brings a deleted event back: this change was made before the delete and arrived after it.
        return "deleted_in_ghl_already"
    if _older(ghl.date_updated, current.ghl_updated_at):
        return "older_than_last_ghl_change"
    return None


def echo_of(current: Appointment, ghl: GhlAppointment) -> str | None:
    """Why a GHL appointment only reflects the local one (`matches_last_sync`, `matches_local_state`), else None.

    Matching the local state, not only the last sync, is an echo too: of a write of ours whose webhook overtook
    the worker recording it, or the same edit made on both sides. An assignee GHL filled in where RV3 has none
    is not compared: GHL assigns a calendar member to a booking sent without one, and neither side changed
    anything (RV3 never tracked who attends that appointment).
    """
    fields = synced_fields_from_ghl(ghl)
    if current.assigned_user_id is None:
        fields = fields.model_copy(update={"assigned_user_id": None})
    seen = sync_hash(fields)
    if seen == current.last_synced_hash:
        return "matches_last_sync"
    if seen == sync_hash(synced_fields_from_appointment(current)):
        return "matches_local_state"
    return None


def _decide_delete(current: Appointment | None, ghl: GhlAppointment, *, has_pending_local_change: bool) -> Effect:
    # A deleted GHL event cannot take a local change any more, so the delete stands whatever the
    # policy; a pending local change is reported as a conflict GHL won.
    if current is None:
        # Its create may still be on its way (webhooks are applied in parallel and requeued when GHL or the
        # database is busy): keep the event as a cancelled, deleted appointment, so that create changes nothing.
        fields = synced_fields_from_ghl(ghl).model_copy(update={"status": AppointmentStatus.cancelled.value})
        changes = _changes_from_ghl(ghl, fields, sync_hash(fields), None)
        changes = changes.model_copy(update={"status": AppointmentStatus.cancelled})
        return Effect(kind=EffectKind.create, reason="deleted_in_ghl", changes=changes)
    if current.status == AppointmentStatus.cancelled and not has_pending_local_change:
        return Effect(kind=EffectKind.ignore_noop, reason="already_cancelled")
    fields = synced_fields_from_appointment(current).model_copy(update={"status": AppointmentStatus.cancelled.value})
    changes = AppointmentChanges(
        ghl_event_id=ghl.id,
        calendar_id=current.calendar_id,
        contact_id=current.contact_id,
        title=None,
        notes=None,
        assigned_user_id=current.assigned_user_id,
        start=current.start,
        end=current.end,
        status=AppointmentStatus.cancelled,
        ghl_updated_at=ghl.date_updated,
        synced_hash=sync_hash(fields),
    )
    if has_pending_local_change:
        return Effect(kind=EffectKind.conflict, reason="deleted_in_ghl", changes=changes, winner=Source.ghl)
    return Effect(kind=EffectKind.delete, reason="deleted_in_ghl", changes=changes)


def _resolve_conflict(
    current: Appointment, ghl: GhlAppointment, changes: AppointmentChanges, policy: ConflictPolicy
) -> Effect:
    if policy == ConflictPolicy.rv3_wins:
        winner, reason = Source.rv3, "policy_rv3_wins"
    elif policy == ConflictPolicy.ghl_wins:
        winner, reason = Source.ghl, "policy_ghl_wins"
    elif ghl.date_updated is not None and (current.rv3_updated_at is None or ghl.date_updated > current.rv3_updated_at):
        winner, reason = Source.ghl, "ghl_change_is_newer"
    else:
        # Ties and an undated GHL change go to the clinic's own edit: RV3 is where staff work.
        winner, reason = Source.rv3, "rv3_change_is_newer"
    return Effect(
        kind=EffectKind.conflict,
        reason=reason,
        changes=changes if winner == Source.ghl else None,
        winner=winner,
    )


def _changes_from_ghl(
    ghl: GhlAppointment, fields: SyncedFields, event_hash: str, current: Appointment | None
) -> AppointmentChanges:
    mapping = ghl.status
    flags: list[str] = []
    status = mapping.status
    if status is None:
        # An unknown GHL status is kept as a flag; the appointment keeps the status it had.
        flags.append(mapping.flag or "unknown_status")
        status = current.status if current is not None else AppointmentStatus.scheduled
    calendar_id = fields.calendar_id or (current.calendar_id if current is not None else None)
    if calendar_id is None:
        raise ValueError("GHL appointment without calendarId")
    return AppointmentChanges(
        ghl_event_id=ghl.id,
        calendar_id=calendar_id,
        contact_id=fields.contact_id,
        title=ghl.title,
        notes=ghl.description or ghl.notes,
        assigned_user_id=fields.assigned_user_id,
        start=fields.start,
        end=fields.end,
        status=status,
        ghl_updated_at=ghl.date_updated,
        synced_hash=event_hash,
        flags=flags,
    )


def _older(candidate: datetime | None, reference: datetime | None) -> bool:
    return candidate is not None and reference is not None and candidate < reference


def _merge_flags(existing: list[str], new: list[str]) -> list[str]:
    return existing + [flag for flag in new if flag not in existing]


class OutboundKind(StrEnum):
    create = "create"
    update = "update"
    cancel = "cancel"
    skip = "skip"


def decide_outbound(appointment: Appointment) -> OutboundKind:
    """What the `rv3-to-ghl` worker sends for the appointment's current local state.

    Nothing is sent when GHL already holds this state (its sync hash is the last synced one), nor
    for an appointment cancelled before it ever reached GHL.
    """
    if appointment.ghl_event_id is None:
        if appointment.status == AppointmentStatus.cancelled:
            return OutboundKind.skip
        return OutboundKind.create
    if sync_hash(synced_fields_from_appointment(appointment)) == appointment.last_synced_hash:
        return OutboundKind.skip
    if appointment.status == AppointmentStatus.cancelled:
        return OutboundKind.cancel
    return OutboundKind.update


def record_push(appointment: Appointment, *, ghl_event_id: str, sent_at: datetime) -> Appointment:
    """The appointment after GHL accepted our write of its current state (create, update or cancel).

    Pass as `sent_at` the moment the request was SENT: a late echo of an earlier write of ours then
    carries an older `dateUpdated` and is ignored as stale instead of undoing this one, while a real
    edit made in GHL after this request is still newer.
    """
    previous = appointment.ghl_updated_at
    return appointment.model_copy(
        update={
            "ghl_event_id": ghl_event_id,
            "last_synced_hash": sync_hash(synced_fields_from_appointment(appointment)),
            "sync_state": SyncState.synced,
            "last_error": None,
            "ghl_updated_at": max(previous, sent_at) if previous is not None else sent_at,
        }
    )


def find_adoptable_event(
    events: Iterable[GhlAppointment], *, calendar_id: str, contact_id: str, start: datetime
) -> GhlAppointment | None:
    """After a create whose outcome is unknown: the GHL event that create produced, if it exists.

    It is the one on the same calendar, for the same contact, starting at the same second. A live
    match is preferred over a cancelled one, then the most recently added.
    """
    wanted = start.replace(microsecond=0)
    matches = [
        event
        for event in events
        if event.calendar_id == calendar_id
        and event.contact_id == contact_id
        and event.start is not None
        and event.start.replace(microsecond=0) == wanted
    ]
    if not matches:
        return None
    return max(
        matches,
        key=lambda event: (
            event.status.status != AppointmentStatus.cancelled,
            event.date_added or datetime.min.replace(tzinfo=UTC),
        ),
    )
