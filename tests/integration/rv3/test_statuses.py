"""RV3's statuses as each clinic names them: the location's mapping through the API, checked against RV3's
statuses; a status the sync cannot read or write is said in the status and an alert, and fixing the mapping
brings what was missed to the other side."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from blueprints import rv3 as api
from tests.fixtures.rv3_schema import CANCELADO, PENDIENTE

from .conftest import World
from .test_writeback import _booked_and_synced, _rv3


def _statuses(world: World) -> dict[str, Any]:
    answer = world.app().call(api.rv3_statuses_get, "GET", "rv3/statuses")
    assert answer.status == 200, answer.body
    return answer.body


def _put(world: World, *choices: dict[str, Any]) -> Any:
    return world.app().call(api.rv3_statuses_put, "PUT", "rv3/statuses", body={"statuses": list(choices)})


def _status(world: World) -> dict[str, Any]:
    return world.app().call(api.rv3_status, "GET", "rv3/status").body


def test_rv3_s_statuses_are_listed_with_what_each_means_and_what_is_missing(world: World) -> None:
    baja = world.desk.add_status("Baja")
    listed = _statuses(world)
    meaning = {entry["name"]: (entry["status"], entry["source"]) for entry in listed["results"]}
    assert meaning == {
        "Pendiente": ("scheduled", "name"),
        "Completado": ("attended", "name"),
        "CANCELADO": ("cancelled", "name"),
        "Baja": (None, None),
    }
    assert listed["missing"] == []
    assert any(f"«Baja» (id {baja})" in line for line in listed["problems"])
    assert _status(world)["status_problems"] == listed["problems"]


def test_a_clinic_s_own_cancel_status_reaches_ghl_once_it_is_mapped_and_is_written_back(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    baja = world.desk.add_status("Baja")
    rv3_id, event = _booked_and_synced(world)
    world.desk.set_status(rv3_id, baja)  # the front desk cancels with the status the clinic named
    with caplog.at_level(logging.WARNING):
        world.sync()
    assert world.ghl.events[event["id"]]["appointmentStatus"] == "new"  # not guessed
    assert any(getattr(r, "alert", None) == "rv3_status_unmapped" for r in caplog.records)

    put = _put(world, {"rv3_status_id": baja, "status": "cancelled", "write": True})
    assert put.status == 200, put.body
    assert put.body["problems"] == []
    world.deliver()
    assert world.ghl.events[event["id"]]["appointmentStatus"] == "cancelled"

    # GHL cancels another one: RV3 gets the clinic's status, the one marked to write.
    second, other = _booked_and_synced(world)
    world.webhook("AppointmentUpdate", world.ghl.change(other["id"], appointmentStatus="cancelled"))
    world.sync()
    assert _rv3(world, second).appointment_status_id == baja


def test_a_mapping_that_does_not_fit_rv3_s_statuses_is_refused_and_nothing_changes(world: World) -> None:
    twin = world.desk.add_status("Pendiente")  # RV3 does not keep names unique
    unknown = _put(world, {"rv3_status_id": 9999, "status": "cancelled"})
    assert unknown.status == 422 and unknown.body["error"]["code"] == "invalid_status_mapping"
    assert "9999" in unknown.body["error"]["details"][0]["message"]
    split = _put(
        world,
        {"rv3_status_id": PENDIENTE, "status": "scheduled"},
        {"rv3_status_id": twin, "status": "cancelled"},
    )
    assert split.status == 422 and "«Pendiente»" in split.body["error"]["details"][0]["message"]
    bad_value = _put(world, {"rv3_status_id": PENDIENTE, "status": "borrada"})
    assert bad_value.status in (400, 422)
    assert all(entry["source"] != "mapping" for entry in _statuses(world)["results"])


def test_a_ghl_cancellation_rv3_has_no_status_for_is_reported_and_written_once_the_clinic_maps_one(
    world: World,
) -> None:
    world.desk.remove_status(CANCELADO)  # this clinic has created no cancel status
    rv3_id, event = _booked_and_synced(world)
    assert _statuses(world)["missing"] == ["cancelled"]
    world.webhook("AppointmentUpdate", world.ghl.change(event["id"], appointmentStatus="cancelled"))
    world.sync()
    assert _rv3(world, rv3_id).appointment_status_id == PENDIENTE
    status = _status(world)
    [failed] = status["failed_writes"]
    assert failed["rv3_appointment_id"] == rv3_id and "«cancelada»" in failed["reason"]
    assert status["failed_writebacks"] == 1 and status["pending_writebacks"] == 0  # not retried forever
    assert any("«cancelada»" in line for line in status["status_problems"])

    anulada = world.desk.add_status("Anulada por el paciente")
    assert _put(world, {"rv3_status_id": anulada, "status": "cancelled"}).status == 200
    world.sync()
    assert _rv3(world, rv3_id).appointment_status_id == anulada
    status = _status(world)
    assert status["failed_writes"] == [] and status["status_problems"] == []
