"""Sync decisions: webhook effects (echo, stale, conflict per policy, delete), outbound actions, adoption."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sync_core.decisions import (
    EffectKind,
    OutboundKind,
    decide_outbound,
    decide_webhook_effect,
    find_adoptable_event,
    record_push,
)
from sync_core.ghl_appointments import GhlAppointment, parse_ghl_appointment
from sync_core.ghl_payloads import create_body
from sync_core.hashing import sync_hash, synced_fields_from_appointment
from sync_core.models import Appointment, AppointmentStatus, ConflictPolicy, Source, SyncState
from sync_core.webhooks import Action, GhlAppointmentEvent

from .conftest import LIMA, AppointmentFactory

SYNCED_AT = datetime(2025, 12, 20, 12, tzinfo=UTC)


def ghl_event(action: Action = "update", **fields: Any) -> GhlAppointmentEvent:
    appointment: dict[str, Any] = {
        "id": "ev1",
        "calendarId": "cal1",
        "contactId": "con1",
        "locationId": "loc1",
        "title": "Terapia - Ana",
        "appointmentStatus": "new",
        "startTime": "2025-12-22T10:00:00-05:00",
        "endTime": "2025-12-22T11:00:00-05:00",
        "dateUpdated": "2025-12-20T12:00:00Z",
    }
    appointment.update(fields)
    return GhlAppointmentEvent(
        type="Appointment" + action.capitalize(),
        action=action,
        location_id="loc1",
        appointment=parse_ghl_appointment(appointment, tz=LIMA),
    )


@pytest.fixture
def synced(make_appointment: AppointmentFactory) -> Appointment:
    """An appointment RV3 created and pushed to GHL as event ev1 (its echo would hash the same)."""
    appointment = make_appointment(ghl_event_id="ev1", ghl_updated_at=SYNCED_AT, sync_state=SyncState.synced)
    return appointment.model_copy(update={"last_synced_hash": sync_hash(synced_fields_from_appointment(appointment))})


def decide(current: Appointment | None, event: GhlAppointmentEvent, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"policy": ConflictPolicy.latest_wins, "has_pending_local_change": False}
    options.update(kwargs)
    return decide_webhook_effect(current, event, **options)


def test_appointment_first_seen_in_ghl_is_created_locally() -> None:
    effect = decide(None, ghl_event("create", appointmentStatus="confirmed", description="Primera vez"))
    assert effect.kind == EffectKind.create
    created = effect.changes.new_appointment(appointment_id="new1", location_id="loc1")
    assert (created.ghl_event_id, created.source, created.sync_state) == ("ev1", Source.ghl, SyncState.synced)
    assert created.status == AppointmentStatus.confirmed
    assert created.start == datetime(2025, 12, 22, 15, tzinfo=UTC)
    assert created.notes == "Primera vez"


def test_duplicate_webhook_is_applied_once() -> None:
    event = ghl_event("create")
    created = decide(None, event).changes.new_appointment(appointment_id="new1", location_id="loc1")
    assert decide(created, event).kind == EffectKind.ignore_echo


def test_our_own_write_coming_back_changes_nothing(synced: Appointment) -> None:
    sent = create_body(synced, timezone="America/Lima")
    echo = ghl_event("create", startTime=sent["startTime"], endTime=sent["endTime"], dateUpdated="2025-12-20T12:00:05Z")
    assert decide(synced, echo).kind == EffectKind.ignore_echo


def test_echo_is_ignored_even_while_a_local_change_is_pending(synced: Appointment) -> None:
    effect = decide(synced, ghl_event(), has_pending_local_change=True, policy=ConflictPolicy.ghl_wins)
    assert effect.kind == EffectKind.ignore_echo


def test_echo_of_a_pending_write_is_ignored_before_the_worker_records_it(synced: Appointment) -> None:
    edited = synced.model_copy(update={"title": "Terapia - Ana (control)", "rv3_updated_at": SYNCED_AT})
    echo = ghl_event(title="Terapia - Ana (control)", dateUpdated="2025-12-20T12:00:05Z")
    effect = decide(edited, echo, has_pending_local_change=True)
    assert (effect.kind, effect.reason) == (EffectKind.ignore_echo, "matches_local_state")


def test_an_assignee_ghl_filled_in_is_no_change_while_rv3_has_none(synced: Appointment) -> None:
    assert synced.assigned_user_id is None
    echo = ghl_event("create", assignedUserId="usr_ana", dateUpdated="2025-12-20T12:00:05Z")
    assert decide(synced, echo).kind == EffectKind.ignore_echo


def test_a_reassignment_in_ghl_is_a_change_when_rv3_has_an_assignee(make_appointment: AppointmentFactory) -> None:
    local = make_appointment(ghl_event_id="ev1", assigned_user_id="usr_ana", ghl_updated_at=SYNCED_AT)
    local = local.model_copy(update={"last_synced_hash": sync_hash(synced_fields_from_appointment(local))})
    effect = decide(local, ghl_event(assignedUserId="usr_luis", dateUpdated="2025-12-21T09:00:00Z"))
    assert effect.kind == EffectKind.update
    assert effect.changes.apply_to(local).assigned_user_id == "usr_luis"


def test_a_rescheduling_in_ghl_updates_the_local_appointment(synced: Appointment) -> None:
    event = ghl_event(startTime="2025-12-22T15:00:00-05:00", endTime="2025-12-22T16:00:00-05:00",
                      dateUpdated="2025-12-21T09:00:00Z")  # fmt: skip
    effect = decide(synced, event)
    assert effect.kind == EffectKind.update
    updated = effect.changes.apply_to(synced)
    assert updated.start == datetime(2025, 12, 22, 20, tzinfo=UTC)
    assert updated.version == synced.version + 1
    assert updated.ghl_updated_at == datetime(2025, 12, 21, 9, tzinfo=UTC)
    assert (updated.id, updated.source, updated.title) == (synced.id, synced.source, synced.title)
    assert decide(updated, event).kind == EffectKind.ignore_echo


def test_an_older_change_never_overwrites_a_newer_one(synced: Appointment) -> None:
    newer = ghl_event(startTime="2025-12-22T15:00:00-05:00", endTime="2025-12-22T16:00:00-05:00",
                      dateUpdated="2025-12-21T10:00:00Z")  # fmt: skip
    older = ghl_event(startTime="2025-12-22T12:00:00-05:00", endTime="2025-12-22T13:00:00-05:00",
                      dateUpdated="2025-12-21T09:00:00Z")  # fmt: skip
    after_newer = decide(synced, newer).changes.apply_to(synced)
    effect = decide(after_newer, older)
    assert effect.kind == EffectKind.ignore_stale
    assert effect.changes is None


def test_cancellation_in_ghl_cancels_locally(synced: Appointment) -> None:
    effect = decide(synced, ghl_event(appointmentStatus="cancelled", dateUpdated="2025-12-21T09:00:00Z"))
    assert effect.kind == EffectKind.cancel
    assert effect.changes.apply_to(synced).status == AppointmentStatus.cancelled


def test_a_deleted_ghl_appointment_is_cancelled_locally_keeping_its_history(synced: Appointment) -> None:
    effect = decide(synced, ghl_event("delete"))
    assert effect.kind == EffectKind.delete
    cancelled = effect.changes.apply_to(synced)
    assert cancelled.status == AppointmentStatus.cancelled
    assert (cancelled.id, cancelled.ghl_event_id, cancelled.start) == (synced.id, "ev1", synced.start)
    assert decide_outbound(cancelled) == OutboundKind.skip


def test_delete_arriving_before_its_create_keeps_a_cancelled_record_the_create_cannot_revive(
    synced: Appointment,
) -> None:
    effect = decide(None, ghl_event("delete"))
    assert (effect.kind, effect.reason) == (EffectKind.create, "deleted_in_ghl")
    assert effect.changes is not None and effect.changes.status == AppointmentStatus.cancelled
    tombstone = effect.changes.apply_to(synced).model_copy(update={"flags": ["deleted_in_ghl"]})
    late_create = decide(tombstone, ghl_event("create"))
    assert late_create.kind == EffectKind.ignore_stale


def test_delete_of_an_already_cancelled_appointment_changes_nothing(synced: Appointment) -> None:
    cancelled = synced.model_copy(update={"status": AppointmentStatus.cancelled})
    assert decide(cancelled, ghl_event("delete")).kind == EffectKind.ignore_noop


def test_delete_wins_over_a_pending_local_change_and_is_recorded_as_conflict(synced: Appointment) -> None:
    effect = decide(synced, ghl_event("delete"), has_pending_local_change=True, policy=ConflictPolicy.rv3_wins)
    assert (effect.kind, effect.winner) == (EffectKind.conflict, Source.ghl)
    assert effect.changes.apply_to(synced).status == AppointmentStatus.cancelled


def concurrent(synced: Appointment, *, rv3_at: datetime | None, ghl_at: str | None) -> tuple[Appointment, Any]:
    local = synced.model_copy(update={"title": "Editado en RV3", "rv3_updated_at": rv3_at})
    event = ghl_event(title="Editado en GHL", dateUpdated=ghl_at)
    return local, event


def test_rv3_wins_policy_keeps_the_local_edit(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 8, tzinfo=UTC), ghl_at="2025-12-21T09:00:00Z")
    effect = decide(local, event, has_pending_local_change=True, policy=ConflictPolicy.rv3_wins)
    assert (effect.kind, effect.winner, effect.changes) == (EffectKind.conflict, Source.rv3, None)


def test_ghl_wins_policy_applies_the_ghl_edit(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 10, tzinfo=UTC), ghl_at="2025-12-21T09:00:00Z")
    effect = decide(local, event, has_pending_local_change=True, policy=ConflictPolicy.ghl_wins)
    assert (effect.kind, effect.winner) == (EffectKind.conflict, Source.ghl)
    resolved = effect.changes.apply_to(local)
    assert resolved.title == "Editado en GHL"
    assert decide_outbound(resolved) == OutboundKind.skip


def test_latest_wins_picks_the_newer_ghl_edit(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 8, tzinfo=UTC), ghl_at="2025-12-21T09:00:00Z")
    effect = decide(local, event, has_pending_local_change=True)
    assert (effect.kind, effect.winner, effect.reason) == (
        EffectKind.conflict,
        Source.ghl,
        "ghl_change_is_newer",
    )
    assert effect.changes.title == "Editado en GHL"


def test_latest_wins_picks_the_newer_rv3_edit(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 10, tzinfo=UTC), ghl_at="2025-12-21T09:00:00Z")
    effect = decide(local, event, has_pending_local_change=True)
    assert (effect.kind, effect.winner, effect.changes) == (EffectKind.conflict, Source.rv3, None)


def test_latest_wins_gives_a_tie_to_the_clinic(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 9, tzinfo=UTC), ghl_at="2025-12-21T09:00:00Z")
    assert decide(local, event, has_pending_local_change=True).winner == Source.rv3


def test_latest_wins_with_an_undated_ghl_change_keeps_the_local_edit(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 9, tzinfo=UTC), ghl_at=None)
    assert decide(local, event, has_pending_local_change=True).winner == Source.rv3


def test_latest_wins_with_an_undated_local_change_takes_the_ghl_edit(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=None, ghl_at="2025-12-21T09:00:00Z")
    assert decide(local, event, has_pending_local_change=True).winner == Source.ghl


def test_a_stale_ghl_change_is_not_a_conflict(synced: Appointment) -> None:
    local, event = concurrent(synced, rv3_at=datetime(2025, 12, 21, 9, tzinfo=UTC), ghl_at="2025-12-19T09:00:00Z")
    assert decide(local, event, has_pending_local_change=True).kind == EffectKind.ignore_stale


def test_unknown_ghl_status_keeps_the_local_status_and_flags_it(synced: Appointment) -> None:
    effect = decide(synced, ghl_event(appointmentStatus="rescheduled", dateUpdated="2025-12-21T09:00:00Z"))
    assert effect.kind == EffectKind.update
    updated = effect.changes.apply_to(synced)
    assert updated.status == synced.status
    assert updated.flags == ["unknown_status:rescheduled"]
    assert decide(updated, ghl_event(appointmentStatus="rescheduled")).kind == EffectKind.ignore_echo


def test_unknown_status_on_a_new_appointment_starts_as_scheduled_and_flagged() -> None:
    effect = decide(None, ghl_event("create", appointmentStatus="rescheduled"))
    created = effect.changes.new_appointment(appointment_id="n1", location_id="loc1")
    assert (created.status, created.flags) == (AppointmentStatus.scheduled, ["unknown_status:rescheduled"])


def test_ghl_without_notes_keeps_the_local_notes(synced: Appointment) -> None:
    local = synced.model_copy(update={"notes": "Traer exámenes"})
    effect = decide(local, ghl_event(title="Nuevo", dateUpdated="2025-12-21T09:00:00Z"))
    assert effect.changes.apply_to(local).notes == "Traer exámenes"


def test_new_local_appointment_is_created_in_ghl(make_appointment: AppointmentFactory) -> None:
    assert decide_outbound(make_appointment()) == OutboundKind.create


def test_appointment_cancelled_before_reaching_ghl_sends_nothing(
    make_appointment: AppointmentFactory,
) -> None:
    assert decide_outbound(make_appointment(status=AppointmentStatus.cancelled)) == OutboundKind.skip


def test_unchanged_synced_appointment_sends_nothing(synced: Appointment) -> None:
    assert decide_outbound(synced) == OutboundKind.skip


def test_local_edit_of_a_synced_appointment_sends_an_update(synced: Appointment) -> None:
    assert decide_outbound(synced.model_copy(update={"title": "Otro"})) == OutboundKind.update


def test_notes_only_edit_is_not_a_synced_change(synced: Appointment) -> None:
    assert decide_outbound(synced.model_copy(update={"notes": "solo local"})) == OutboundKind.skip


def test_local_cancellation_of_a_synced_appointment_sends_a_cancel(synced: Appointment) -> None:
    assert decide_outbound(synced.model_copy(update={"status": AppointmentStatus.cancelled})) == OutboundKind.cancel


def test_after_a_push_the_echo_of_that_write_is_ignored(make_appointment: AppointmentFactory) -> None:
    pushed = record_push(make_appointment(), ghl_event_id="ev1", sent_at=SYNCED_AT)
    assert (pushed.ghl_event_id, pushed.sync_state, pushed.ghl_updated_at) == (
        "ev1",
        SyncState.synced,
        SYNCED_AT,
    )
    assert decide_outbound(pushed) == OutboundKind.skip
    assert decide(pushed, ghl_event("create", dateUpdated="2025-12-20T12:00:01Z")).kind == EffectKind.ignore_echo


def test_a_late_echo_of_an_earlier_write_does_not_undo_a_later_one(
    make_appointment: AppointmentFactory,
) -> None:
    first = record_push(make_appointment(), ghl_event_id="ev1", sent_at=datetime(2025, 12, 20, 12, tzinfo=UTC))
    moved = first.model_copy(update={"start": datetime(2025, 12, 22, 12, tzinfo=LIMA),
                                     "end": datetime(2025, 12, 22, 13, tzinfo=LIMA)})  # fmt: skip
    second = record_push(moved, ghl_event_id="ev1", sent_at=datetime(2025, 12, 20, 12, 5, tzinfo=UTC))
    late_echo_of_first = ghl_event(dateUpdated="2025-12-20T12:00:01Z")
    assert decide(second, late_echo_of_first).kind == EffectKind.ignore_stale


def test_a_ghl_edit_made_after_our_push_still_applies(make_appointment: AppointmentFactory) -> None:
    pushed = record_push(make_appointment(), ghl_event_id="ev1", sent_at=SYNCED_AT)
    edit = ghl_event(title="Cambiado en GHL", dateUpdated="2025-12-20T12:00:03Z")
    assert decide(pushed, edit).kind == EffectKind.update


def found(event_id: str, **fields: Any) -> GhlAppointment:
    values: dict[str, Any] = {
        "id": event_id,
        "calendarId": "cal1",
        "contactId": "con1",
        "startTime": "2025-12-22T10:00:00-05:00",
        "endTime": "2025-12-22T11:00:00-05:00",
        "appointmentStatus": "new",
    }
    values.update(fields)
    return parse_ghl_appointment(values, tz=LIMA)


START = datetime(2025, 12, 22, 15, tzinfo=UTC)


def test_a_lost_create_is_adopted_when_ghl_has_it() -> None:
    events = [found("other", contactId="con2"), found("ours", startTime="2025-12-22T15:00:00.000Z")]
    match = find_adoptable_event(events, calendar_id="cal1", contact_id="con1", start=START)
    assert match is not None and match.id == "ours"


def test_nothing_is_adopted_when_ghl_has_no_matching_event() -> None:
    events = [
        found("a", calendarId="cal2"),
        found("b", contactId="con2"),
        found("c", startTime="2025-12-22T10:30:00-05:00"),
    ]
    assert find_adoptable_event(events, calendar_id="cal1", contact_id="con1", start=START) is None


def test_a_live_match_is_preferred_over_a_cancelled_one() -> None:
    events = [found("old", appointmentStatus="cancelled", dateAdded="2025-12-21T00:00:00Z"),
              found("live", dateAdded="2025-12-20T00:00:00Z")]  # fmt: skip
    match = find_adoptable_event(events, calendar_id="cal1", contact_id="con1", start=START)
    assert match is not None and match.id == "live"
