"""The sync protocol's transitions, one behaviour at a time (the model-based test covers their interleavings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_core import protocol as p
from sync_core.decisions import DELETED_IN_GHL
from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import synced_fields_from_appointment
from sync_core.models import Appointment, AppointmentStatus, ConflictPolicy, Source, SyncState
from sync_core.status import to_ghl
from tests.unit.conftest import AppointmentFactory

T0 = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)
LATEST = ConflictPolicy.latest_wins


def _event(appointment: Appointment, *, at: datetime, **changes: object) -> GhlAppointment:
    """GHL's event holding `appointment`'s state (with `changes`), last updated at `at`."""
    values: dict[str, object] = {
        "id": appointment.ghl_event_id or "evt_1",
        "location_id": appointment.location_id,
        "calendar_id": appointment.calendar_id,
        "contact_id": appointment.contact_id,
        "title": appointment.title,
        "appointment_status": to_ghl(appointment.status),
        "assigned_user_id": appointment.assigned_user_id,
        "start": appointment.start,
        "end": appointment.end,
        "date_added": at,
        "date_updated": at,
    }
    values.update(changes)
    return GhlAppointment.model_validate(values)


def _seen(event: GhlAppointment, **kwargs: object) -> p.GhlObservation:
    return p.observation_of(event, **kwargs)  # type: ignore[arg-type]


def _synced(appointment: Appointment, *, at: datetime = T0) -> p.SyncRecord:
    """An appointment made at the front desk, pushed and echoed: GHL holds it since `at`."""
    record = p.new_local(appointment.model_copy(update={"ghl_event_id": None}), at=at - timedelta(minutes=1))
    plan = p.plan_push(record, now=at - timedelta(seconds=1))
    assert plan.write is not None
    answered = p.push_answered(plan.record, plan.write.id, p.Answer.accepted, now=at, event_id="evt_1")
    echo = p.observe(answered, _seen(_event(answered.appointment, at=at)), policy=LATEST)
    assert echo.decision in (p.Decision.echo, p.Decision.known)
    return echo.record


@pytest.fixture
def synced(make_appointment: AppointmentFactory) -> p.SyncRecord:
    return _synced(make_appointment())


def _moved(record: p.SyncRecord, hours: int) -> Appointment:
    a = record.appointment
    return a.model_copy(update={"start": a.start + timedelta(hours=hours), "end": a.end + timedelta(hours=hours)})


def _edited(record: p.SyncRecord, hours: int, *, at: datetime) -> p.SyncRecord:
    return p.local_edit(record, _moved(record, hours), at=at)


# --- pushing -------------------------------------------------------------------------------------------------


def test_a_new_local_appointment_is_created_in_ghl_and_recorded_before_it_is_sent(
    make_appointment: AppointmentFactory,
) -> None:
    record = p.new_local(make_appointment(), at=T0)
    plan = p.plan_push(record, now=T0)
    assert plan.kind is p.PushKind.create
    assert plan.record.facts.writes == (plan.write,)
    assert plan.record.appointment.sync_state is SyncState.pending


def test_an_appointment_cancelled_before_reaching_ghl_sends_nothing_and_says_so(
    make_appointment: AppointmentFactory,
) -> None:
    record = p.new_local(make_appointment(status=AppointmentStatus.cancelled), at=T0)
    plan = p.plan_push(record, now=T0)
    assert (plan.kind, plan.reason) == (p.PushKind.skip, "never_sent")
    assert plan.record.appointment.sync_state is SyncState.local_only


def test_an_appointment_ghl_holds_sends_nothing(synced: p.SyncRecord) -> None:
    plan = p.plan_push(synced, now=T0 + timedelta(minutes=1))
    assert (plan.kind, plan.record.appointment.sync_state) == (p.PushKind.skip, SyncState.synced)


def test_a_notes_only_edit_is_no_change_for_ghl(synced: p.SyncRecord) -> None:
    edited = p.local_edit(synced, synced.appointment.model_copy(update={"notes": "trae RX"}), at=T0)
    assert p.plan_push(edited, now=T0).kind is p.PushKind.skip


def test_a_cancel_after_two_reschedules_sends_the_full_final_state(synced: p.SyncRecord) -> None:
    moved = _edited(_edited(synced, 1, at=T0 + timedelta(minutes=1)), 2, at=T0 + timedelta(minutes=2))
    cancelled = p.local_edit(
        moved, moved.appointment.model_copy(update={"status": AppointmentStatus.cancelled}), at=T0 + timedelta(3)
    )
    plan = p.plan_push(cancelled, now=T0 + timedelta(minutes=4))
    assert plan.kind is p.PushKind.update
    assert plan.write is not None
    assert plan.write.fields == synced_fields_from_appointment(cancelled.appointment)  # the new time, cancelled


def test_a_refused_state_is_not_sent_again_until_it_changes(synced: p.SyncRecord) -> None:
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=1))
    plan = p.plan_push(edited, now=T0 + timedelta(minutes=2))
    assert plan.write is not None
    refused = p.push_answered(
        plan.record, plan.write.id, p.Answer.refused, now=T0 + timedelta(minutes=2), reason="GoHighLevel rechazó"
    )
    assert (refused.appointment.sync_state, refused.appointment.last_error) == (SyncState.error, "GoHighLevel rechazó")
    assert p.plan_push(refused, now=T0 + timedelta(minutes=3)).kind is p.PushKind.skip
    again = _edited(refused, 1, at=T0 + timedelta(minutes=4))
    assert p.plan_push(again, now=T0 + timedelta(minutes=5)).kind is p.PushKind.update
    assert p.plan_push(p.retry(refused), now=T0 + timedelta(minutes=5)).kind is p.PushKind.update


def test_a_create_of_unknown_outcome_is_looked_for_only_once_it_can_no_longer_land(
    make_appointment: AppointmentFactory,
) -> None:
    plan = p.plan_push(p.new_local(make_appointment(), at=T0), now=T0)
    assert plan.write is not None
    unknown = p.push_answered(plan.record, plan.write.id, p.Answer.unknown, now=T0 + timedelta(seconds=15))
    waiting = p.plan_push(unknown, now=T0 + timedelta(seconds=20))
    assert waiting.kind is p.PushKind.wait and waiting.wait_s == pytest.approx(20.0)
    looking = p.plan_push(unknown, now=T0 + p.MAX_REQUEST)
    assert looking.kind is p.PushKind.lookup


def test_a_lost_create_is_adopted_when_ghl_has_it_and_created_again_when_not(
    make_appointment: AppointmentFactory,
) -> None:
    plan = p.plan_push(p.new_local(make_appointment(), at=T0), now=T0)
    assert plan.write is not None
    unknown = p.push_answered(plan.record, plan.write.id, p.Answer.unknown, now=T0 + timedelta(seconds=5))
    lookup = p.plan_push(unknown, now=T0 + timedelta(minutes=1))
    made = _event(plan.record.appointment, at=T0 + timedelta(seconds=1), id="evt_9", assigned_user_id="usr_x")
    other = _event(plan.record.appointment, at=T0 - timedelta(days=1), id="evt_old")
    found = p.adoptable(lookup.creates, [other, made])
    assert found is not None and found.id == "evt_9"
    linked, seen = p.lookup_answered(lookup.record, lookup.creates, found, now=T0 + timedelta(minutes=1))
    assert linked.appointment.ghl_event_id == "evt_9"
    assert seen is not None and seen.decision is p.Decision.echo
    assert p.plan_push(seen.record, now=T0 + timedelta(minutes=2)).kind is p.PushKind.skip
    absent, _ = p.lookup_answered(lookup.record, lookup.creates, None, now=T0 + timedelta(minutes=1))
    assert p.plan_push(absent, now=T0 + timedelta(minutes=2)).kind is p.PushKind.create


def test_a_write_left_in_flight_by_a_dead_worker_counts_as_of_unknown_outcome(synced: p.SyncRecord) -> None:
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=1))
    first = p.plan_push(edited, now=T0 + timedelta(minutes=2))  # its worker dies before hearing back
    second = p.plan_push(first.record, now=T0 + timedelta(minutes=3))
    assert second.kind is p.PushKind.update
    assert [w.outcome for w in second.record.facts.writes][-2:] == [p.WriteOutcome.unknown, p.WriteOutcome.in_flight]


# --- what GHL holds ------------------------------------------------------------------------------------------


def test_an_appointment_first_seen_in_ghl_is_created_locally(make_appointment: AppointmentFactory) -> None:
    event = _event(make_appointment(ghl_event_id="evt_5"), at=T0)
    appointment, facts, decision = p.observe_new(_seen(event), location_id="loc1")
    assert decision is p.Decision.created
    assert (appointment.ghl_event_id, appointment.source, appointment.sync_state) == ("evt_5", Source.ghl, "synced")
    assert facts.edited_by is Source.ghl


def test_a_delete_arriving_before_its_create_keeps_a_tombstone(make_appointment: AppointmentFactory) -> None:
    event = _event(make_appointment(ghl_event_id="evt_5"), at=T0)
    appointment, _facts, decision = p.observe_new(_seen(event, deleted=True), location_id="loc1")
    assert decision is p.Decision.deleted
    assert appointment.status is AppointmentStatus.cancelled and DELETED_IN_GHL in appointment.flags


def test_a_repeated_webhook_changes_nothing(synced: p.SyncRecord) -> None:
    moved = _event(_moved(synced, 2), at=T0 + timedelta(minutes=5))
    first = p.observe(synced, _seen(moved), policy=LATEST)
    assert first.decision is p.Decision.ghl_won
    again = p.observe(first.record, _seen(moved), policy=LATEST)
    assert (again.decision, again.record) == (p.Decision.known, first.record)


def test_the_echo_of_our_write_is_ours_before_and_after_the_worker_records_it(synced: p.SyncRecord) -> None:
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=1))
    plan = p.plan_push(edited, now=T0 + timedelta(minutes=2))
    echo = _seen(_event(plan.record.appointment, at=T0 + timedelta(minutes=2, seconds=1)))
    early = p.observe(plan.record, echo, policy=LATEST)  # before the worker hears back
    assert early.decision is p.Decision.echo
    assert plan.write is not None
    answered = p.push_answered(early.record, plan.write.id, p.Answer.accepted, now=T0 + timedelta(minutes=2, seconds=2))
    assert answered.appointment.sync_state is SyncState.synced
    assert p.observe(answered, echo, policy=LATEST).decision in (p.Decision.known, p.Decision.echo)


def test_an_echo_with_the_member_ghl_assigned_before_the_answer_leaves_nothing_to_send(
    make_appointment: AppointmentFactory,
) -> None:
    # Sent without an assignee, GHL assigns a calendar member; the echo says so, and came before the answer
    # (the intake applies it at once): the answer must not make GHL's state unknown and send the write again.
    synced = _synced(make_appointment(assigned_user_id=None))
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=1))
    plan = p.plan_push(edited, now=T0 + timedelta(minutes=2))
    assert plan.write is not None and plan.write.fields.assigned_user_id is None
    sent_at = T0 + timedelta(minutes=2, seconds=1)
    echo = _seen(_event(plan.record.appointment, at=sent_at, assigned_user_id="usr_member"))
    early = p.observe(plan.record, echo, policy=LATEST)
    assert early.decision is p.Decision.echo
    for ghl_at in (None, sent_at):  # GHL's answer with or without the event's dateUpdated
        answered = p.push_answered(
            early.record, plan.write.id, p.Answer.accepted, now=sent_at + timedelta(seconds=1), ghl_at=ghl_at
        )
        assert answered.facts.ghl is not None and answered.facts.ghl.fields is not None
        assert answered.facts.ghl.fields.assigned_user_id == "usr_member"  # the fuller of the two is kept
        assert not answered.needs_push
        assert answered.appointment.sync_state is SyncState.synced


def test_the_echo_of_an_update_does_not_undo_a_newer_front_desk_edit(synced: p.SyncRecord) -> None:
    # The front desk moves the appointment again while our update is on its way; GHL's echo of that update
    # comes after the newer edit (and before the worker records its write): it is ours, not a GHL change.
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=1))
    plan = p.plan_push(edited, now=T0 + timedelta(minutes=2))
    again = _edited(plan.record, 3, at=T0 + timedelta(minutes=2, seconds=1))
    echo = _seen(_event(plan.record.appointment, at=T0 + timedelta(minutes=2, seconds=2)))
    outcome = p.observe(again, echo, policy=LATEST)
    assert outcome.decision is p.Decision.echo and outcome.changes is None
    assert outcome.push and p.plan_push(outcome.record, now=T0 + timedelta(minutes=3)).kind is p.PushKind.update


def test_a_ghl_edit_taken_for_the_echo_of_a_write_that_then_failed_is_read_and_decided_before_any_write(
    synced: p.SyncRecord,
) -> None:
    # Our update (+1 h) is on its way; the front desk moves the appointment back; a GHL user then moves it to
    # exactly +1 h, and reconciliation reads that while the update may be landing: it looks like our echo. The
    # update is then refused: the +1 h GHL holds was the user's change, the newest edit, and must not be
    # overwritten by the front desk's older one.
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=1))
    plan = p.plan_push(edited, now=T0 + timedelta(minutes=2))
    assert plan.write is not None
    back = p.local_edit(plan.record, synced.appointment, at=T0 + timedelta(minutes=2, seconds=5))
    users_move = _event(edited.appointment, at=T0 + timedelta(minutes=2, seconds=10))
    read = _seen(users_move, seen_at=T0 + timedelta(minutes=2, seconds=11))
    assert p.observe(back, read, policy=LATEST).decision is p.Decision.echo  # indistinguishable, for now
    taken = p.observe(back, read, policy=LATEST).record
    refused = p.push_answered(taken, plan.write.id, p.Answer.refused, now=T0 + timedelta(minutes=2, seconds=12))
    replan = p.plan_push(refused, now=T0 + timedelta(minutes=3))
    assert replan.kind is p.PushKind.read  # not an update that would overwrite the user's move
    again = _seen(users_move, seen_at=T0 + timedelta(minutes=3))
    decided = p.observe(replan.record, again, policy=LATEST)
    assert decided.decision is p.Decision.ghl_won and not decided.push
    assert decided.record.appointment.start == edited.appointment.start


def test_an_assignee_ghl_filled_in_is_no_change_while_the_clinic_has_none(synced: p.SyncRecord) -> None:
    assigned = _seen(_event(synced.appointment, at=T0 + timedelta(minutes=5), assigned_user_id="usr_9"))
    assert p.observe(synced, assigned, policy=LATEST).decision is p.Decision.same


def test_a_reschedule_in_ghl_is_taken_locally(synced: p.SyncRecord) -> None:
    outcome = p.observe(synced, _seen(_event(_moved(synced, 2), at=T0 + timedelta(minutes=5))), policy=LATEST)
    assert outcome.decision is p.Decision.ghl_won and outcome.conflict is None
    assert outcome.record.appointment.start == synced.appointment.start + timedelta(hours=2)
    assert outcome.record.appointment.version == synced.appointment.version + 1
    assert not outcome.push


def test_an_older_ghl_change_never_overwrites_a_newer_one(synced: p.SyncRecord) -> None:
    newer = p.observe(synced, _seen(_event(_moved(synced, 2), at=T0 + timedelta(minutes=9))), policy=LATEST)
    older = p.observe(newer.record, _seen(_event(_moved(synced, 1), at=T0 + timedelta(minutes=5))), policy=LATEST)
    assert older.decision is p.Decision.stale and older.conflict is None
    assert older.record.appointment.start == newer.record.appointment.start


def test_ghl_cancelling_cancels_locally(synced: p.SyncRecord) -> None:
    cancelled = _event(synced.appointment, at=T0 + timedelta(minutes=5), appointment_status="cancelled")
    outcome = p.observe(synced, _seen(cancelled), policy=LATEST)
    assert outcome.record.appointment.status is AppointmentStatus.cancelled


def test_a_deleted_ghl_event_cancels_the_appointment_whatever_the_policy(synced: p.SyncRecord) -> None:
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=6))  # not in GHL yet
    gone = _seen(_event(synced.appointment, at=T0 + timedelta(minutes=5)), deleted=True)
    outcome = p.observe(edited, gone, policy=ConflictPolicy.rv3_wins)
    assert outcome.decision is p.Decision.deleted
    assert outcome.record.appointment.status is AppointmentStatus.cancelled
    assert DELETED_IN_GHL in outcome.record.appointment.flags
    assert outcome.conflict is not None and outcome.conflict.winner is Source.ghl
    assert p.plan_push(outcome.record, now=T0 + timedelta(minutes=7)).kind is p.PushKind.skip


@pytest.mark.parametrize(
    ("policy", "ghl_minutes", "winner"),
    [
        (ConflictPolicy.latest_wins, 9, Source.ghl),  # GHL's change is the newer
        (ConflictPolicy.latest_wins, 3, Source.rv3),  # the front desk's is
        (ConflictPolicy.latest_wins, 5, Source.rv3),  # a tie goes to the clinic
        (ConflictPolicy.rv3_wins, 9, Source.rv3),
        (ConflictPolicy.ghl_wins, 3, Source.ghl),
    ],
)
def test_a_true_conflict_is_decided_by_the_policy_and_recorded(
    synced: p.SyncRecord, policy: ConflictPolicy, ghl_minutes: int, winner: Source
) -> None:
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=5))  # GHL has not got it
    change = _seen(_event(_moved(synced, 3), at=T0 + timedelta(minutes=ghl_minutes)))
    outcome = p.observe(edited, change, policy=policy)
    assert outcome.conflict is not None and outcome.conflict.winner is winner
    expected = synced.appointment.start + timedelta(hours=3 if winner is Source.ghl else 1)
    assert outcome.record.appointment.start == expected
    assert outcome.push is (winner is Source.rv3)


def test_a_ghl_change_made_after_ghl_got_the_front_desk_edit_wins_whatever_the_clocks(
    synced: p.SyncRecord,
) -> None:
    edited = _edited(synced, 1, at=T0 + timedelta(minutes=5))
    plan = p.plan_push(edited, now=T0 + timedelta(minutes=5, seconds=1))
    echo = _seen(_event(plan.record.appointment, at=T0 + timedelta(minutes=5, seconds=2)))
    landed = p.observe(plan.record, echo, policy=ConflictPolicy.rv3_wins).record
    later = _seen(_event(_moved(synced, 4), at=T0 + timedelta(minutes=5, seconds=3)))
    outcome = p.observe(landed, later, policy=ConflictPolicy.rv3_wins)
    assert outcome.decision is p.Decision.ghl_won and outcome.conflict is None


def test_an_unknown_ghl_status_keeps_the_local_status_and_flags_it(synced: p.SyncRecord) -> None:
    odd = _seen(_event(_moved(synced, 2), at=T0 + timedelta(minutes=5), appointment_status="tentative"))
    outcome = p.observe(synced, odd, policy=LATEST)
    assert outcome.record.appointment.status is synced.appointment.status
    assert any(flag.startswith("unknown") or "status" in flag for flag in outcome.record.appointment.flags)


def test_ghl_without_notes_keeps_the_local_notes(make_appointment: AppointmentFactory) -> None:
    record = _synced(make_appointment(notes="trae RX"))
    outcome = p.observe(record, _seen(_event(_moved(record, 2), at=T0 + timedelta(minutes=5))), policy=LATEST)
    assert outcome.record.appointment.notes == "trae RX"


def test_our_create_is_known_by_its_event_before_its_answer(make_appointment: AppointmentFactory) -> None:
    plan = p.plan_push(p.new_local(make_appointment(), at=T0), now=T0)
    made = _seen(_event(plan.record.appointment, at=T0 + timedelta(seconds=1), id="evt_7"))
    assert p.is_our_create(plan.record, made)
    linked = p.link_our_create(plan.record, made, policy=LATEST)
    assert linked.decision is p.Decision.echo and linked.record.appointment.ghl_event_id == "evt_7"


def test_a_second_event_of_our_own_create_is_removed(make_appointment: AppointmentFactory) -> None:
    plan = p.plan_push(p.new_local(make_appointment(), at=T0), now=T0)
    assert plan.write is not None
    answered = p.push_answered(plan.record, plan.write.id, p.Answer.accepted, now=T0, event_id="evt_1")
    stray = _seen(_event(plan.record.appointment, at=T0 + timedelta(seconds=1), id="evt_2"))
    assert p.is_our_create(answered, stray)
    outcome = p.link_our_create(answered, stray, policy=LATEST)
    assert (outcome.decision, outcome.remove_event) == (p.Decision.duplicate, "evt_2")
