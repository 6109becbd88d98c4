"""The `ghl-to-rv3` worker on a real database: applied once, in order, without echoes, conflicts recorded."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from blueprints import webhooks
from shared import runtime
from shared.ghl.errors import NotFound, RateLimited, Unavailable
from shared.queues import GHL_TO_RV3, QueueUnavailable
from shared.services import inbound
from shared.store.schema import appointments, conflicts, contacts, outbox, webhook_inbox
from tests.fixtures.app import App

from .conftest import FakeGhl
from .helpers import (
    CONTACT,
    EVENT,
    appointment_body,
    contact_body,
    deliver,
    message,
    open_change,
    queued,
    raw,
    rows,
    store_appointment,
)

SYNCED = "2030-03-01T11:00:00.000Z"  # when the stored appointments were pushed (helpers.SYNCED_AT)
LATER = "2030-03-02T09:00:00.000Z"
EVEN_LATER = "2030-03-02T10:00:00.000Z"


def the_appointment(app: App) -> Any:
    [row] = rows(app.db, appointments)
    return row


def test_an_appointment_booked_in_ghl_is_created_locally_with_its_patient(webhook_app: App, ghl: FakeGhl) -> None:
    body = appointment_body()
    outcome = deliver(body)
    assert (outcome.result, outcome.detail) == ("applied", "created")
    row = the_appointment(webhook_app)
    assert (row.source, row.sync_state, row.status, row.version) == ("ghl", "synced", "confirmed", 1)
    assert (row.ghl_event_id, row.calendar_id, row.contact_id) == (EVENT, body["appointment"]["calendarId"], CONTACT)
    assert row.start_at == datetime(2030, 3, 12, 15, tzinfo=UTC)
    assert row.end_at == datetime(2030, 3, 12, 16, tzinfo=UTC)
    assert (row.title, row.notes, row.assigned_user_id) == ("Terapia - Rosa Flores", "Primera sesión", "usr_demo_ana")
    [patient] = rows(webhook_app.db, contacts)
    assert (patient.patient_key, patient.ghl_contact_id) == (f"ghl:{CONTACT}", CONTACT)
    assert (patient.full_name, patient.phone, patient.email) == ("Rosa Flores", "+51987000111", "Rosa@example.pe")
    assert row.patient_contact_id == patient.id
    assert ghl.calls == [CONTACT]
    assert rows(webhook_app.db, outbox) == []  # nothing to send back to GHL


@pytest.mark.parametrize(
    ("ghl_status", "status"),
    [("new", "scheduled"), ("confirmed", "confirmed"), ("showed", "attended"), ("noshow", "no_show")],
)
def test_the_ghl_status_is_mapped_to_rv3s(webhook_app: App, ghl_status: str, status: str) -> None:
    deliver(appointment_body(appointmentStatus=ghl_status))
    row = the_appointment(webhook_app)
    assert (row.status, row.status_raw, row.flags) == (status, ghl_status, [])


def test_an_unknown_ghl_status_is_kept_and_flagged(webhook_app: App) -> None:
    deliver(appointment_body(appointmentStatus="rescheduled"))
    row = the_appointment(webhook_app)
    assert (row.status, row.status_raw, row.flags) == ("scheduled", "rescheduled", ["unknown_status:rescheduled"])


def test_the_older_rv3_shape_is_applied_too(webhook_app: App) -> None:
    deliver(appointment_body(shape="data", webhook_id=None))
    assert the_appointment(webhook_app).ghl_event_id == EVENT


def test_duplicate_webhook_is_applied_once(webhook_app: App) -> None:
    delivery = message(appointment_body())
    outcomes = [inbound.process(delivery).result for _ in range(3)]
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert the_appointment(webhook_app).version == 1
    assert len(rows(webhook_app.db, webhook_inbox)) == 1


def test_a_redelivery_without_webhook_id_is_applied_once(webhook_app: App) -> None:
    data = raw(appointment_body("AppointmentUpdate", webhook_id=None, timestamp=None))
    assert [deliver(data).result, deliver(data).result] == ["applied", "duplicate"]
    assert len(rows(webhook_app.db, appointments)) == 1


def test_concurrent_deliveries_of_one_webhook_apply_it_once(webhook_app: App) -> None:
    delivery = message(appointment_body())
    results: list[str] = []
    workers = [threading.Thread(target=lambda: results.append(inbound.process(delivery).result)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(results) == ["applied", "duplicate", "duplicate"]
    assert len(rows(webhook_app.db, appointments)) == 1


def test_a_rescheduling_in_ghl_moves_the_local_appointment(webhook_app: App) -> None:
    deliver(appointment_body())
    created = the_appointment(webhook_app)
    moved = appointment_body(
        "AppointmentUpdate",
        startTime="2030-03-13T16:00:00-05:00",
        endTime="2030-03-13T17:00:00-05:00",
        dateUpdated=LATER,
    )
    assert deliver(moved).detail == "ghl_won"
    row = the_appointment(webhook_app)
    assert row.start_at == datetime(2030, 3, 13, 21, tzinfo=UTC)
    assert (row.version, row.sync_state) == (2, "synced")
    assert rows(webhook_app.db, outbox) == []  # nothing to send back to GHL
    assert row.updated_at > created.updated_at


def test_an_older_update_arriving_after_a_newer_one_changes_nothing(webhook_app: App) -> None:
    deliver(appointment_body())
    deliver(appointment_body("AppointmentUpdate", startTime="2030-03-13T16:00:00-05:00",
                             endTime="2030-03-13T17:00:00-05:00", dateUpdated=EVEN_LATER))  # fmt: skip
    newest = the_appointment(webhook_app)
    late = appointment_body("AppointmentUpdate", startTime="2030-03-14T09:00:00-05:00",
                            endTime="2030-03-14T10:00:00-05:00", dateUpdated=LATER)  # fmt: skip
    assert deliver(late).detail == "stale"
    row = the_appointment(webhook_app)
    assert (row.start_at, row.version, row.updated_at) == (newest.start_at, newest.version, newest.updated_at)


def test_a_cancellation_in_ghl_cancels_locally(webhook_app: App) -> None:
    deliver(appointment_body())
    cancelled = appointment_body("AppointmentUpdate", appointmentStatus="cancelled", dateUpdated=LATER)
    assert deliver(cancelled).detail == "ghl_won"
    assert the_appointment(webhook_app).status == "cancelled"


def test_a_deletion_in_ghl_cancels_locally_and_says_so(webhook_app: App) -> None:
    deliver(appointment_body())
    assert deliver(appointment_body("AppointmentDelete", dateUpdated=LATER)).detail == "deleted"
    row = the_appointment(webhook_app)
    assert (row.status, row.version, row.flags) == ("cancelled", 2, ["deleted_in_ghl"])


def test_a_deletion_applied_before_its_booking_is_not_undone_by_the_booking(webhook_app: App) -> None:
    # Seen in the chaos run: the booking's webhook was requeued (GHL busy) and its deletion overtook it.
    assert deliver(appointment_body("AppointmentDelete", dateUpdated=LATER)).detail == "deleted"
    assert deliver(appointment_body()).detail == "already_deleted"
    row = the_appointment(webhook_app)
    assert (row.status, row.version, row.flags) == ("cancelled", 1, ["deleted_in_ghl"])
    outcomes = [(entry.success, entry.outcome) for entry in rows(webhook_app.db, webhook_inbox)]
    assert outcomes == [(True, "deleted"), (True, "already_deleted")]


def test_the_echo_of_our_own_write_changes_nothing(webhook_app: App, ghl: FakeGhl) -> None:
    appointment_id = store_appointment(webhook_app.db, webhook_app.location_pk)
    before = the_appointment(webhook_app)
    assert deliver(appointment_body("AppointmentUpdate", dateUpdated=SYNCED)).detail in ("echo", "known")
    after = the_appointment(webhook_app)
    assert (after.id, after.version, after.updated_at) == (appointment_id, before.version, before.updated_at)
    assert rows(webhook_app.db, outbox) == []
    assert ghl.calls == []


def test_the_assignee_ghl_gives_our_unassigned_booking_does_not_bounce_back(webhook_app: App) -> None:
    store_appointment(webhook_app.db, webhook_app.location_pk, assigned_user_id=None)
    before = the_appointment(webhook_app)
    assert deliver(appointment_body(assignedUserId="usr_demo_ana", dateUpdated=SYNCED)).detail in ("echo", "known")
    after = the_appointment(webhook_app)
    assert (after.version, after.updated_at, after.assigned_user_id) == (before.version, before.updated_at, None)


def test_the_echo_of_our_create_before_its_event_id_is_stored_is_linked_not_duplicated(
    webhook_app: App, ghl: FakeGhl
) -> None:
    appointment_id = store_appointment(webhook_app.db, webhook_app.location_pk, ghl_event_id=None)  # being created
    open_change(webhook_app.db, appointment_id, operation="create", rename=False)
    before = the_appointment(webhook_app)
    body = appointment_body(dateAdded=SYNCED, dateUpdated=SYNCED)
    assert deliver(body).detail == "echo"
    after = the_appointment(webhook_app)
    assert (after.id, after.ghl_event_id, after.sync_state) == (appointment_id, EVENT, "synced")
    assert (after.version, after.updated_at, after.source) == (before.version, before.updated_at, "rv3")
    assert len(rows(webhook_app.db, appointments)) == 1
    assert ghl.calls == []


def test_a_concurrent_edit_is_settled_for_rv3_under_rv3_wins_and_ghl_is_corrected(
    webhook_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFLICT_POLICY", "rv3_wins")
    runtime.reset()
    appointment_id = store_appointment(webhook_app.db, webhook_app.location_pk)
    open_change(webhook_app.db, appointment_id)  # e.g. the front desk just renamed it
    before = the_appointment(webhook_app)
    edit = appointment_body(
        "AppointmentUpdate", startTime="2030-03-12T12:00:00-05:00", endTime="2030-03-12T13:00:00-05:00",
        dateUpdated=LATER,
    )  # fmt: skip
    assert deliver(edit).detail == "local_won"
    after = the_appointment(webhook_app)
    assert (after.start_at, after.version, after.sync_state) == (before.start_at, before.version, "pending")
    [conflict] = rows(webhook_app.db, conflicts)
    assert (conflict.appointment_id, conflict.policy, conflict.winner) == (appointment_id, "rv3_wins", "rv3")
    assert conflict.ghl_values["start"] == "2030-03-12T17:00:00Z"
    assert conflict.rv3_values["start"] == "2030-03-12T15:00:00Z"
    [correction] = rows(webhook_app.db, outbox)  # the edit's own entry sends RV3's state over GHL's
    assert correction.status == "dispatched"


def test_a_concurrent_edit_goes_to_the_newer_ghl_edit_under_latest_wins(webhook_app: App) -> None:
    appointment_id = store_appointment(webhook_app.db, webhook_app.location_pk)
    open_change(webhook_app.db, appointment_id)
    edit = appointment_body(
        "AppointmentUpdate", startTime="2030-03-12T12:00:00-05:00", endTime="2030-03-12T13:00:00-05:00",
        dateUpdated=LATER,
    )  # fmt: skip
    assert deliver(edit).detail == "ghl_won"
    assert the_appointment(webhook_app).start_at == datetime(2030, 3, 12, 17, tzinfo=UTC)
    [conflict] = rows(webhook_app.db, conflicts)
    assert (conflict.policy, conflict.winner) == ("latest_wins", "ghl")


def test_a_webhook_of_an_unconfigured_location_is_recorded_and_ignored(webhook_app: App, ghl: FakeGhl) -> None:
    body = appointment_body(locationId="loc_other")
    body["locationId"] = "loc_other"
    assert deliver(body).detail == "unknown_location"
    assert rows(webhook_app.db, appointments) == []
    assert [e.outcome for e in rows(webhook_app.db, webhook_inbox)] == ["unknown_location"]
    assert ghl.calls == []


def test_a_contact_is_read_from_ghl_only_the_first_time(webhook_app: App, ghl: FakeGhl) -> None:
    deliver(appointment_body())
    deliver(appointment_body(id="ev_2", startTime="2030-03-19T10:00:00-05:00", endTime="2030-03-19T11:00:00-05:00"))
    first, second = rows(webhook_app.db, appointments)
    assert first.patient_contact_id == second.patient_contact_id
    assert ghl.calls == [CONTACT]


def test_an_appointment_whose_contact_ghl_cannot_give_is_still_taken(webhook_app: App, ghl: FakeGhl) -> None:
    ghl.error = NotFound("gone", status=400)
    assert deliver(appointment_body()).detail == "created"
    [patient] = rows(webhook_app.db, contacts)
    assert (patient.ghl_contact_id, patient.full_name, patient.flags) == (CONTACT, None, ["contact_details_missing"])
    deliver(contact_body())  # the details arrive with the next contact change
    [patient] = rows(webhook_app.db, contacts)
    assert (patient.full_name, patient.phone, patient.flags) == ("Rosa Flores", "+51987000111", [])


def test_a_ghl_rate_limit_while_reading_the_contact_retries_the_webhook_later(webhook_app: App, ghl: FakeGhl) -> None:
    ghl.error = RateLimited(0.0)
    assert deliver(appointment_body()).result == "requeued"
    assert rows(webhook_app.db, appointments) == []
    assert rows(webhook_app.db, webhook_inbox) == []
    [retry] = queued()
    assert retry["requeues"] == 1
    ghl.error = None
    assert inbound.process(retry).detail == "created"


def test_after_a_long_ghl_outage_the_appointment_is_taken_without_contact_details(
    webhook_app: App, ghl: FakeGhl
) -> None:
    ghl.error = Unavailable("down", status=503)
    exhausted = {**message(appointment_body()), "attempt": inbound.CONTACT_TRIES}
    assert inbound.process(exhausted).detail == "created"
    [patient] = rows(webhook_app.db, contacts)
    assert patient.flags == ["contact_details_missing"]


def test_a_database_outage_requeues_the_webhook_without_failing_it(
    webhook_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQL_URL", "postgresql+psycopg://postgres@127.0.0.1:9/paused")
    runtime.reset()
    outcome = deliver(appointment_body())
    assert (outcome.result, outcome.detail.split(";")[0]) == ("requeued", "database unavailable")
    assert runtime.queues().depth(GHL_TO_RV3) == 1


def test_a_malformed_message_goes_straight_to_the_poison_queue(webhook_app: App) -> None:
    bad = {"dedupe_key": "webhook:1", "event": {"kind": "appointment"}}
    assert inbound.process(bad).result == "malformed"
    assert queued(GHL_TO_RV3 + "-poison") == [bad]
    assert queued() == []


def test_a_group_from_the_intake_is_applied_webhook_by_webhook_and_a_bad_one_is_set_aside_alone(
    webhook_app: App,
) -> None:
    first = appointment_body(id="evGroupA")
    second = appointment_body(id="evGroupB", startTime="2030-03-13T10:00:00-05:00", endTime="2030-03-13T11:00:00-05:00")
    bad = {"dedupe_key": "webhook:bad", "event": {"kind": "appointment"}}
    group = {"group": [message(first), bad, message(second)]}
    msg = func.QueueMessage(id="m1", body=json.dumps(group).encode())
    webhooks.ghl_to_rv3(msg)  # does not raise: the good ones are done, the bad one is in the poison queue alone
    assert sorted(row.ghl_event_id for row in rows(webhook_app.db, appointments)) == ["evGroupA", "evGroupB"]
    assert queued(GHL_TO_RV3 + "-poison") == [bad]
    webhooks.ghl_to_rv3(msg)  # the group delivered again (at least once): nothing applied twice
    assert len(rows(webhook_app.db, appointments)) == 2
    assert queued(GHL_TO_RV3 + "-poison") == [bad, bad]  # each delivery's copy, for inspection and replay


def test_a_group_whose_bad_message_cannot_be_set_aside_fails_whole_and_its_redelivery_applies_nothing_twice(
    webhook_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = appointment_body(id="evGroupC")
    bad = {"dedupe_key": "webhook:bad", "event": {"kind": "appointment"}}
    msg = func.QueueMessage(id="m2", body=json.dumps({"group": [message(good), bad]}).encode())
    queues = runtime.queues()
    send = queues.send

    def storage_down(*args: Any, **kwargs: Any) -> None:
        raise QueueUnavailable("storage down")

    monkeypatch.setattr(queues, "send", storage_down)
    with pytest.raises(QueueUnavailable):
        webhooks.ghl_to_rv3(msg)  # the host will deliver the group again
    monkeypatch.setattr(queues, "send", send)
    webhooks.ghl_to_rv3(msg)
    assert [row.ghl_event_id for row in rows(webhook_app.db, appointments)] == ["evGroupC"]
    assert queued(GHL_TO_RV3 + "-poison") == [bad]


def test_a_failing_webhook_is_counted_as_failed_until_a_retry_applies_it(
    webhook_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = message(appointment_body())
    with monkeypatch.context() as patch:
        patch.setattr(inbound.protocol, "observe_new", _broken)
        with pytest.raises(RuntimeError):
            inbound.process(delivery)
    [entry] = rows(webhook_app.db, webhook_inbox)
    assert (entry.success, entry.outcome, entry.error) == (False, "failed", "RuntimeError")
    assert rows(webhook_app.db, appointments) == []
    assert inbound.process(delivery).detail == "created"
    [entry] = rows(webhook_app.db, webhook_inbox)
    assert (entry.success, entry.outcome, entry.error) == (True, "created", None)


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("bug")


def test_a_contact_edited_in_ghl_updates_the_patient_data(webhook_app: App) -> None:
    deliver(appointment_body())
    edit = contact_body(firstName="Rosa María", lastName="Flores Quispe", phone="+51 912 345 678", email=None)
    assert deliver(edit).detail == "contact_updated"
    [patient] = rows(webhook_app.db, contacts)
    assert (patient.full_name, patient.phone, patient.email) == ("Rosa María Flores Quispe", "+51912345678",
                                                                 "Rosa@example.pe")  # fmt: skip


def test_a_shared_contact_edited_in_ghl_keeps_each_patients_own_name(webhook_app: App) -> None:
    now = datetime.now(UTC)
    with webhook_app.db.transaction() as conn:
        for key, name in (("rv3:1", "Rosa Flores"), ("rv3:2", "Lucía Flores")):
            conn.execute(
                contacts.insert().values(
                    location_id=webhook_app.location_pk, patient_key=key, ghl_contact_id=CONTACT, full_name=name,
                    phone="+51987000111", flags=[], created_at=now, updated_at=now,
                )
            )  # fmt: skip
    deliver(contact_body(phone="+51912345678"))
    patients = rows(webhook_app.db, contacts)
    assert [(p.full_name, p.phone) for p in patients] == [
        ("Rosa Flores", "+51912345678"),
        ("Lucía Flores", "+51912345678"),
    ]


def test_a_contact_rv3_does_not_know_is_ignored(webhook_app: App) -> None:
    assert deliver(contact_body(id="ct_stranger")).detail == "contact_unmapped"
    assert rows(webhook_app.db, contacts) == []
