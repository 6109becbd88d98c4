"""Races between the front desk, the `rv3-to-ghl` worker and GHL's echoes, replayed in-process against the GHL
sandbox over HTTP: the edit lands exactly while the worker's write is on its way to GHL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from blueprints import citas as api
from shared import runtime
from shared.ghl.errors import Invalid
from shared.services import inbound, outbound
from shared.store import outbox as outbox_repo
from shared.store.schema import appointments, outbox
from shared.work import Work
from sync_core import protocol
from tests.fixtures.app import App
from tests.integration.webhooks.helpers import message

DAY = "2030-03-12"


def _cita(hour: int) -> dict[str, Any]:
    return {
        "title": "Consulta Fisioterapia",
        "patient": {"name": "María Quispe Huamán", "phone": "987 654 321"},
        "start_time": f"{DAY}T{hour:02d}:00:00-05:00",
        "end_time": f"{DAY}T{hour + 1:02d}:00:00-05:00",
    }


def _outbox_messages(app: App) -> list[dict[str, Any]]:
    with app.db.transaction() as conn:
        op_ids = conn.execute(sa.select(outbox.c.op_id).order_by(outbox.c.id)).scalars().all()
        entries = [outbox_repo.get(conn, op_id) for op_id in op_ids]
    return [entry.message() for entry in entries if entry is not None]


def test_the_echo_of_a_create_overtaken_by_an_edit_does_not_undo_the_edit(
    app_with_ghl: tuple[App, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the chaos run: the echo was taken for a newer GHL change (conflict, GHL won) and the edit was lost.
    app, sandbox = app_with_ghl
    created = app.call(api.citas_create, "POST", "ghl/citas", body=_cita(10))
    assert created.status == 201
    cita_id = str(created.body["id"])
    client = runtime.ghl()
    send = client.create_appointment

    def create_while_the_front_desk_moves_it(location_id: str, body: dict[str, Any]) -> Any:
        # The worker read the appointment and built its request; the move is committed before GHL applies it.
        moved = app.call(api.citas_update, "PUT", f"ghl/citas/{cita_id}", body=_cita(15), route={"id": cita_id})
        assert moved.status == 200, moved.body
        return send(location_id, body)

    monkeypatch.setattr(client, "create_appointment", create_while_the_front_desk_moves_it)
    # One delivery: the create, then the move made while it was on its way (GHL did not hold it yet).
    assert outbound.process(_outbox_messages(app)[0]).detail == "update"
    for kind in ("AppointmentCreate", "AppointmentUpdate"):  # GHL's echoes, the create's first
        for delivery in [d for d in sandbox.admin.webhooks() if d["type"] == kind]:
            assert inbound.process(message(delivery["body"])).detail in ("echo", "known")
    with app.db.transaction() as conn:
        row = conn.execute(sa.select(appointments)).one()
    assert (row.start_at.hour, row.version, row.sync_state) == (20, 2, "synced")  # 15:00 Lima, in GHL
    assert outbound.process(_outbox_messages(app)[1]).result == "skipped"
    [event] = sandbox.admin.state()["appointments"]
    assert datetime.fromisoformat(event["startTime"]).hour == 15


def test_a_message_whose_appointment_was_synced_while_it_waited_for_the_lease_sends_nothing(
    app_with_ghl: tuple[App, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two deliveries of one change: the second read the appointment, then another worker synced it before the
    # second took the lease. Working from its stale read, it created the event a second time.
    app, sandbox = app_with_ghl
    contact = sandbox.admin.simulate_contact_create(locationId="loc_demo", firstName="Rosa", phone="+51987000111")
    body = {**{k: v for k, v in _cita(10).items() if k != "patient"}, "contact_id": contact["id"]}
    assert app.call(api.citas_create, "POST", "ghl/citas", body=body).status == 201
    [create_message] = _outbox_messages(app)
    overtaken: list[str] = []

    def the_other_delivery_runs_first() -> datetime:
        """Runs before this delivery reads the outbox entry and takes the lease (its first look at the clock)."""
        if not overtaken:
            overtaken.append("running")
            overtaken[0] = outbound.process(create_message).result
        return datetime.now(UTC)

    outcome = outbound.process(create_message, replace(Work.current(), clock=the_other_delivery_runs_first))
    assert outcome.result == "duplicate", (outcome, overtaken)
    assert overtaken == ["applied"]
    assert len(sandbox.admin.state()["appointments"]) == 1


def test_the_echo_of_an_update_applied_before_the_worker_records_it_does_not_undo_a_newer_edit(
    app_with_ghl: tuple[App, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The front desk moves the appointment again while the worker's update is on its way, and GHL's echo of that
    # update is applied before the worker has recorded what it sent: the echo is newer than the edit, so without
    # knowing it for ours, latest_wins would let it win and the front desk's last move would be lost.
    app, sandbox = app_with_ghl
    created = app.call(api.citas_create, "POST", "ghl/citas", body=_cita(10))
    cita_id = str(created.body["id"])
    assert outbound.process(_outbox_messages(app)[0]).result == "applied"
    moved = app.call(api.citas_update, "PUT", f"ghl/citas/{cita_id}", body=_cita(12), route={"id": cita_id})
    assert moved.status == 200, moved.body
    client = runtime.ghl()
    send = client.update_appointment
    echoes: list[str] = []

    def update_while_the_front_desk_moves_it_again(*args: Any, **kwargs: Any) -> Any:
        if echoes:  # the move to 15:00, sent next by the same delivery
            return send(*args, **kwargs)
        again = app.call(api.citas_update, "PUT", f"ghl/citas/{cita_id}", body=_cita(15), route={"id": cita_id})
        assert again.status == 200, again.body
        answer = send(*args, **kwargs)  # GHL applies 12:00 after the 15:00 edit was made
        [echo] = [d for d in sandbox.admin.webhooks() if d["type"] == "AppointmentUpdate"]
        echoes.append(inbound.process(message(echo["body"])).detail)  # before the worker records its write
        return answer

    monkeypatch.setattr(client, "update_appointment", update_while_the_front_desk_moves_it_again)
    assert outbound.process(_outbox_messages(app)[1]).result == "applied"
    assert echoes == ["echo"]  # the 12:00 echo, newer than the 15:00 edit, known as ours
    for delivery in [d for d in sandbox.admin.webhooks() if d["type"] == "AppointmentUpdate"][1:]:
        assert inbound.process(message(delivery["body"])).detail in ("echo", "known")
    with app.db.transaction() as conn:
        row = conn.execute(sa.select(appointments)).one()
    assert (row.start_at.hour, row.version, row.sync_state) == (20, 3, "synced")  # 15:00 Lima, in GHL
    assert outbound.process(_outbox_messages(app)[2]).result == "skipped"
    [event] = sandbox.admin.state()["appointments"]
    assert datetime.fromisoformat(event["startTime"]).hour == 15


def test_a_ghl_move_taken_for_the_echo_of_an_update_that_ghl_then_refused_is_not_overwritten(
    app_with_ghl: tuple[App, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the protocol soak. The worker's update (12:00) is on its way; the front desk moves the cita back
    # to 10:00; a GHL user moves the event to exactly 12:00, and that webhook, arriving while the update may be
    # landing, looks like its echo. GHL then refuses the update: the 12:00 was the user's, the newest edit, and
    # the worker must read it and take it instead of sending the front desk's older 10:00 over it.
    app, sandbox = app_with_ghl
    # The steps follow each other within milliseconds, on one machine's clock: order them at that resolution
    # (edits closer than the clocks' skew are beyond what latest_wins can order, a known limit).
    monkeypatch.setattr(protocol, "SKEW", timedelta(milliseconds=1))
    created = app.call(api.citas_create, "POST", "ghl/citas", body=_cita(10))
    cita_id = str(created.body["id"])
    assert outbound.process(_outbox_messages(app)[0]).result == "applied"
    moved = app.call(api.citas_update, "PUT", f"ghl/citas/{cita_id}", body=_cita(12), route={"id": cita_id})
    assert moved.status == 200, moved.body
    [event] = sandbox.admin.state()["appointments"]
    client = runtime.ghl()
    send = client.update_appointment
    echoes: list[str] = []

    def refused_while_a_ghl_user_moves_it(*args: Any, **kwargs: Any) -> Any:
        back = app.call(api.citas_update, "PUT", f"ghl/citas/{cita_id}", body=_cita(10), route={"id": cita_id})
        assert back.status == 200, back.body
        sandbox.admin.simulate_appointment_edit(
            event["id"], startTime=f"{DAY}T12:00:00-05:00", endTime=f"{DAY}T13:00:00-05:00"
        )
        [users] = [d for d in sandbox.admin.webhooks() if d["type"] == "AppointmentUpdate"]
        echoes.append(inbound.process(message(users["body"])).detail)
        raise Invalid(["slot no longer available"], status=422)

    monkeypatch.setattr(client, "update_appointment", refused_while_a_ghl_user_moves_it)
    assert outbound.process(_outbox_messages(app)[1]).result == "failed"  # the 12:00 the front desk no longer wants
    assert echoes == ["echo"]  # indistinguishable while the update could land
    monkeypatch.setattr(client, "update_appointment", send)
    updates_before = sandbox.admin.counts()["by_endpoint"].get("PUT /calendars/events/appointments/{eventId}", 0)
    assert outbound.process(_outbox_messages(app)[2]).result == "skipped"  # read GHL, took the user's move
    with app.db.transaction() as conn:
        row = conn.execute(sa.select(appointments)).one()
    assert (row.start_at.hour, row.sync_state) == (17, "synced")  # 12:00 Lima, as the GHL user left it
    assert (
        sandbox.admin.counts()["by_endpoint"].get("PUT /calendars/events/appointments/{eventId}", 0) == updates_before
    )
    [event] = sandbox.admin.state()["appointments"]
    assert datetime.fromisoformat(event["startTime"]).hour == 12
