"""Reconciliation end to end on the local Functions host: drift of every kind between SQL and the GHL sandbox
(missed webhooks included), a run through the real `reconcile` queue, its report over HTTP, and auto-heal
through the normal sync path leaving nothing for the next run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from azure.storage.queue import QueueServiceClient

from shared.queues import GHL_TO_RV3, RECONCILE, RV3_TO_GHL
from shared.store import appointments as appointment_repo
from shared.store.schema import appointments, outbox
from sync_core import protocol
from tests.fixtures.stack import Stack, call_json

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

LOCATION = "loc_demo"
CALENDAR = "cal_demo_terapia"
DAY = "2030-03-04"  # a Monday; the window of every run below


def at(hour: int) -> str:
    return f"{DAY}T{hour:02d}:00:00-05:00"


def book(api: httpx.Client, name: str, hour: int) -> int:
    """An appointment the front desk books through the citas API (pushed to GHL by the queue worker)."""
    created = api.post(
        "/ghl/citas",
        json={
            "title": name,
            "ghl_calendar_id": CALENDAR,
            "patient": {"name": "Rosa Flores", "phone": "987000111"},
            "start_time": at(hour),
            "end_time": at(hour + 1),
        },
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def settled(stack: Stack) -> bool:
    """Every change handed over: no open outbox entry, no webhook waiting in GHL (unless paused) or our queues."""
    with stack.db.transaction() as conn:
        open_entries = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status.in_(["pending", "dispatched"]))
        ).scalar_one()
    service = QueueServiceClient.from_connection_string(stack.azurite.connection_string)
    waiting = sum(
        service.get_queue_client(name).get_queue_properties().approximate_message_count or 0
        for name in (RV3_TO_GHL, GHL_TO_RV3, RECONCILE)
    )
    sending = 0 if stack.sandbox.sandbox.config.webhooks.paused else stack.sandbox.admin.state()["webhooks"]["pending"]
    return open_entries == 0 and waiting == 0 and sending == 0


def reconcile(stack: Stack, **request: Any) -> dict[str, Any]:
    """POST /api/reconciliation/run for the day and wait for the report the queue worker writes."""
    api = stack.api()
    started = api.post("/reconciliation/run", json={"location_id": LOCATION, "desde": DAY, "hasta": DAY, **request})
    assert started.status_code == 202, started.text
    (ref,) = call_json(started)["reports"]

    def finished() -> dict[str, Any] | None:
        report = call_json(api.get(f"/reconciliation/reports/{ref['id']}"))
        return report if report["status"] in ("completed", "failed") else None

    report = stack.wait_until(finished, timeout=60, what="the reconciliation report")
    assert report["status"] == "completed", report
    return report


def event_of(stack: Stack, appointment_id: int) -> str:
    with stack.db.transaction() as conn:
        record = appointment_repo.get(conn, appointment_id)
    assert record is not None and record.ghl_event_id is not None
    return record.ghl_event_id


def test_reconciliation_reports_every_drift_and_auto_heal_leaves_none(stack: Stack) -> None:
    api = stack.api()
    ids = {name: book(api, name, hour) for hour, name in enumerate(
        ["Sin cambios", "Cancelada en GHL", "Eliminada en GHL", "Renombrada en GHL", "Editada en RV3"], start=8
    )}  # fmt: skip
    stack.wait_until(lambda: settled(stack), what="the bookings synced to GHL and their echoes applied")
    admin = stack.sandbox.admin
    contact_id = admin.state()["appointments"][0]["contactId"]

    # Inside GHL, with every webhook lost on the way.
    admin.pause_webhooks()
    booked = admin.simulate_booking(
        locationId=LOCATION, calendarId=CALENDAR, contactId=contact_id, startTime=at(15), endTime=at(16),
        title="Reservada en GHL",
    )  # fmt: skip
    admin.simulate_appointment_edit(event_of(stack, ids["Cancelada en GHL"]), appointmentStatus="cancelled")
    admin.simulate_appointment_delete(event_of(stack, ids["Eliminada en GHL"]))
    admin.simulate_appointment_edit(event_of(stack, ids["Renombrada en GHL"]), title="Renombrada (GHL)")
    # Inside RV3: an edit whose push was lost, and a booking that never reached GHL.
    now = datetime.now(UTC)
    with stack.db.transaction() as conn:
        edited = appointment_repo.get(conn, ids["Editada en RV3"])
        assert edited is not None
        moved = appointment_repo.to_domain(edited).model_copy(
            update={"start": edited.start_at + timedelta(minutes=30), "end": edited.end_at + timedelta(minutes=30)}
        )
        record = protocol.local_edit(appointment_repo.sync_record(edited), moved, at=now)  # its push never runs
        appointment_repo.save_sync(conn, edited, record, content=appointment_repo.content_values(moved), now=now)
        never = protocol.new_local(
            moved.model_copy(
                update={"id": "new", "title": "Nunca enviada", "ghl_event_id": None,
                        "start": edited.start_at + timedelta(hours=5), "end": edited.end_at + timedelta(hours=5)}
            ),
            at=now,
        )  # fmt: skip
        lost = appointment_repo.insert(
            conn,
            {**appointment_repo.content_values(never.appointment), **appointment_repo.sync_values(never),
             "location_id": edited.location_id, "source": "rv3", "created_at": now, "updated_at": now},
        )  # fmt: skip

    report = reconcile(stack)
    assert [e["ghl_event_id"] for e in report["faltantes_local"]] == [booked["id"]]
    assert [e["id"] for e in report["faltantes_ghl"]] == [str(lost)]
    assert sorted((e["id"], e["motivo"]) for e in report["canceladas_no_actualizadas"]) == sorted(
        [(str(ids["Cancelada en GHL"]), "cancelled_in_ghl"), (str(ids["Eliminada en GHL"]), "deleted_in_ghl")]
    )
    assert {e["id"]: sorted(e["campos"]) for e in report["desincronizadas"]} == {
        str(ids["Renombrada en GHL"]): ["title"],
        str(ids["Editada en RV3"]): ["end", "start"],
    }
    assert report["totales"]["drift"] == 6
    assert report["totales"]["coincidentes"] == 1
    assert report["acciones"] == []

    healed = reconcile(stack, heal=True)
    assert healed["totales"]["drift"] == 6
    assert sorted((a["tipo"], a["motivo"]) for a in healed["acciones"]) == sorted(
        [("conciliar", "missing_in_rv3"), ("enviar_a_ghl", "missing_in_ghl"),
         ("conciliar", "differs"), ("conciliar", "deleted_in_ghl"),
         ("conciliar", "differs"), ("conciliar", "differs")]
    )  # fmt: skip
    stack.wait_until(lambda: settled(stack), what="the fixes applied by the sync workers")

    after = reconcile(stack)
    assert after["totales"]["drift"] == 0, after
    with stack.db.transaction() as conn:
        rows = {row.id: row for row in conn.execute(sa.select(appointments))}
    assert rows[ids["Cancelada en GHL"]].status == "cancelled"
    assert rows[ids["Eliminada en GHL"]].status == "cancelled"
    assert rows[ids["Renombrada en GHL"]].title == "Renombrada (GHL)"
    assert any(row.ghl_event_id == booked["id"] for row in rows.values())
    assert rows[lost].ghl_event_id is not None
    metrics = call_json(api.get("/ghl/metrics/reconciliation"))
    assert metrics["healthy"] is True
    assert metrics["locations"][0]["last_success"]["drift"] == 0
