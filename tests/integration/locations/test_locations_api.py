"""Location settings and calendars as an operator manages them: CRUD, default calendar, GHL calendar cache."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from blueprints import citas as citas_api
from blueprints import locations as api
from shared.store.schema import calendars
from tests.fixtures.app import App

NEW_LOCATION = {
    "ghl_location_id": "CRlTCqv7ASS9xOpPQ59O",
    "name": "Reflexo Perú - Miraflores",
    "timezone": "America/Lima",
    "is_active": True,
}


def _create(app: App, body: dict[str, Any]) -> Any:
    return app.call(api.locations_create, "POST", "locations/settings", body=body)


def test_create_read_update_and_list_location_settings(app: App) -> None:
    created = _create(app, NEW_LOCATION)
    assert created.status == 201
    loc_id = created.body["id"]
    assert created.body["working_hours"] is None and created.body["create_patients_from_ghl"] is False

    fetched = app.call(api.locations_get, "GET", "x", route={"id": str(loc_id)})
    assert fetched.body["name"] == "Reflexo Perú - Miraflores"

    changed = {**NEW_LOCATION, "working_hours": "07:00-21:00", "validation_mode": "flexible", "is_active": False}
    updated = app.call(api.locations_update, "PUT", "x", body=changed, route={"id": str(loc_id)})
    assert (updated.status, updated.body["working_hours"], updated.body["is_active"]) == (200, "07:00-21:00", False)

    listing = app.call(api.locations_list, "GET", "locations/settings").body
    assert listing["count"] == 2
    active = app.call(api.locations_active, "GET", "locations/settings/active_locations").body
    assert [loc["ghl_location_id"] for loc in active["results"]] == ["loc_demo"]


def test_a_location_is_registered_once(app: App) -> None:
    assert _create(app, NEW_LOCATION).status == 201
    again = _create(app, {**NEW_LOCATION, "name": "Duplicada"})
    assert again.status == 409
    assert again.body["error"]["code"] == "location_exists"


def test_invalid_settings_name_the_field_in_spanish(app: App) -> None:
    response = _create(app, {**NEW_LOCATION, "timezone": "Lima", "working_hours": "20:00-08:00"})
    assert response.status == 422
    fields = {d["field"]: d["message"] for d in response.body["error"]["details"]}
    assert "Zona horaria desconocida" in fields["timezone"]
    assert "Horario inválido" in fields["working_hours"]


def test_working_hours_of_the_location_drive_validation(app: App) -> None:
    app.call(
        api.locations_update,
        "PUT",
        "x",
        body={
            **NEW_LOCATION,
            "ghl_location_id": "loc_demo",
            "default_calendar_id": "cal_demo_terapia",
            "working_hours": "09:00-13:00",
        },
        route={"id": str(app.location_pk)},
    )
    response = app.call(
        citas_api.citas_create,
        "POST",
        "ghl/citas",
        body={
            "title": "Tarde",
            "contact_id": "c1",
            "start_time": "2030-03-12T15:00:00-05:00",
            "end_time": "2030-03-12T16:00:00-05:00",
        },
    )
    assert response.body["error"]["message"] == "Horario fuera del horario de trabajo (09:00 - 13:00)"


def test_a_location_with_appointments_cannot_be_deleted_only_deactivated(app: App) -> None:
    app.call(
        citas_api.citas_create,
        "POST",
        "ghl/citas",
        body={
            "title": "Cita",
            "contact_id": "c1",
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
        },
    )
    refused = app.call(api.locations_delete, "DELETE", "x", route={"id": str(app.location_pk)})
    assert refused.status == 409
    assert refused.body["error"]["code"] == "location_has_appointments"
    empty = _create(app, NEW_LOCATION).body
    assert app.call(api.locations_delete, "DELETE", "x", route={"id": str(empty["id"])}).status == 204
    assert app.call(api.locations_get, "GET", "x", route={"id": str(empty["id"])}).status == 404


def test_sync_calendars_reads_ghl_and_marks_vanished_ones_inactive(app_with_ghl: tuple[App, Any]) -> None:
    app, _sandbox = app_with_ghl
    with app.db.transaction() as conn:
        conn.execute(
            calendars.update().where(calendars.c.ghl_calendar_id == "cal_demo_terapia").values(name="Nombre viejo")
        )
        conn.execute(
            calendars.insert().values(
                location_id=app.location_pk,
                ghl_calendar_id="cal_borrado_en_ghl",
                name="Borrado",
                is_active=True,
                synced_at=sa.func.current_timestamp(),
            )
        )
    synced = app.call(api.locations_sync_calendars, "POST", "x", route={"id": str(app.location_pk)})
    assert synced.status == 200
    by_id = {c["id"]: c for c in synced.body["calendars"]}
    assert by_id["cal_demo_terapia"]["name"] == "Terapia física"
    assert by_id["cal_demo_inactivo"]["isActive"] is False
    assert by_id["cal_borrado_en_ghl"]["isActive"] is False
    assert synced.body["total"] == 4 and synced.body["success"] is True


def test_ghl_calendars_endpoint_keeps_the_original_response_shape(app_with_ghl: tuple[App, Any]) -> None:
    app, _sandbox = app_with_ghl
    body = app.call(
        api.ghl_calendars, "GET", "ghl/calendars", params={"location_id": "loc_demo", "refresh": "true"}
    ).body
    assert set(body) == {"calendars", "total", "success"}
    assert set(body["calendars"][0]) == {"id", "name", "description", "timezone", "isActive", "locationId"}
    assert {c["locationId"] for c in body["calendars"]} == {"loc_demo"}


def test_default_calendar_must_exist_and_be_active_in_the_location(app_with_ghl: tuple[App, Any]) -> None:
    app, _sandbox = app_with_ghl
    route = {"id": str(app.location_pk)}
    ok = app.call(
        api.locations_set_default_calendar, "POST", "x", body={"calendar_id": "cal_demo_reflexologia"}, route=route
    )
    assert (ok.status, ok.body["default_calendar_id"]) == (200, "cal_demo_reflexologia")
    for calendar_id in ("cal_demo_inactivo", "cal_de_otra_sede"):
        refused = app.call(
            api.locations_set_default_calendar, "POST", "x", body={"calendar_id": calendar_id}, route=route
        )
        assert refused.status == 422
        assert refused.body["error"]["message"] == f"El calendario {calendar_id} no existe o no está disponible."


def test_unknown_location_in_calendars_query_is_a_clear_404(app: App) -> None:
    response = app.call(api.ghl_calendars, "GET", "ghl/calendars", params={"location_id": "loc_otro"})
    assert response.status == 404
    assert response.body["error"]["message"] == "La sede loc_otro no está configurada."
