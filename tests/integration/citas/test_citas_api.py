"""The citas API as the front desk uses it: validation in Spanish, idempotent creates, versions, cancel, lists."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from blueprints import citas as api
from shared.store.schema import appointments, contacts, outbox
from tests.fixtures.app import CALENDAR, INACTIVE_CALENDAR, App, Response

DAY = "2030-03-12"  # a Tuesday


def cita(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Consulta Fisioterapia",
        "patient": {"name": "María Quispe Huamán", "phone": "987 654 321", "email": "maria@example.pe"},
        "start_time": f"{DAY}T10:00:00-05:00",
        "end_time": f"{DAY}T11:00:00-05:00",
    }
    body.update(overrides)
    return body


def create(app: App, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return app.call(api.citas_create, "POST", "ghl/citas", body=body, headers=headers)


def count(app: App, table: sa.Table) -> int:
    with app.db.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_created_appointment_is_stored_pending_and_queued_for_ghl(app: App) -> None:
    response = create(app, cita())
    assert response.status == 201
    body = response.body
    assert body["sync_state"] == "pending"
    assert body["version"] == 1 and response.headers["ETag"] == '"1"'
    assert body["start_time"] == f"{DAY}T10:00:00-05:00"
    assert body["ghl_calendar_id"] == CALENDAR  # the location's default calendar
    assert body["patient"]["phone"] == "+51987654321"
    with app.db.transaction() as conn:
        row = conn.execute(sa.select(outbox)).one()
    assert (row.operation, row.status) == ("create", "dispatched")


def test_a_time_without_offset_means_lima(app: App) -> None:
    response = create(app, cita(start_time=f"{DAY}T15:00:00", end_time=f"{DAY}T16:00:00"))
    assert response.status == 201
    assert response.body["start_time"] == f"{DAY}T15:00:00-05:00"


@pytest.mark.parametrize(
    ("changes", "status", "code", "message"),
    [
        (
            {"start_time": f"{DAY}T11:00:00-05:00", "end_time": f"{DAY}T10:00:00-05:00"},
            422,
            "invalid_time_range",
            "La hora de fin debe ser posterior a la hora de inicio",
        ),
        (
            {"start_time": f"{DAY}T10:00:00-05:00", "end_time": f"{DAY}T10:10:00-05:00"},
            422,
            "min_duration",
            "La duración mínima es 15 minutos",
        ),
        (
            {"start_time": f"{DAY}T19:30:00-05:00", "end_time": f"{DAY}T20:30:00-05:00"},
            422,
            "outside_working_hours",
            "Horario fuera del horario de trabajo",
        ),
        (
            {"ghl_calendar_id": INACTIVE_CALENDAR},
            422,
            "calendar_unavailable",
            f"El calendario {INACTIVE_CALENDAR} no existe o no está disponible",
        ),
    ],
)
def test_each_rule_rejects_with_its_spanish_message(
    app: App, changes: dict[str, Any], status: int, code: str, message: str
) -> None:
    response = create(app, cita(**changes))
    assert response.status == status
    assert response.body["error"]["code"] == code
    assert message in response.body["error"]["message"]
    assert count(app, appointments) == 0


def test_overlap_in_the_same_calendar_is_a_conflict_naming_the_other_appointment(app: App) -> None:
    assert create(app, cita(title="Masaje")).status == 201
    response = create(app, cita(start_time=f"{DAY}T10:30:00-05:00", end_time=f"{DAY}T11:30:00-05:00"))
    assert response.status == 409
    assert response.body["error"]["code"] == "schedule_conflict"
    assert response.body["error"]["message"] == "Conflicto de horario con: Masaje (10:00 - 11:00)"


def test_back_to_back_and_other_calendars_do_not_overlap(app: App) -> None:
    assert create(app, cita()).status == 201
    back_to_back = cita(start_time=f"{DAY}T11:00:00-05:00", end_time=f"{DAY}T12:00:00-05:00")
    assert create(app, back_to_back).status == 201
    assert create(app, cita(ghl_calendar_id="cal_demo_reflexologia")).status == 201


def test_flexible_mode_turns_overlap_and_hours_into_warnings(app: App) -> None:
    assert create(app, cita()).status == 201
    late_overlap = cita(
        validation_mode="flexible", start_time=f"{DAY}T10:30:00-05:00", end_time=f"{DAY}T20:30:00-05:00"
    )
    response = create(app, late_overlap)
    assert response.status == 201
    assert {w["code"] for w in response.body["warnings"]} == {"schedule_conflict", "outside_working_hours"}


def test_flexible_mode_still_enforces_the_minimum_duration(app: App) -> None:
    short = cita(validation_mode="flexible", end_time=f"{DAY}T10:05:00-05:00")
    assert create(app, short).body["error"]["code"] == "min_duration"


def test_repeated_idempotency_key_returns_the_first_result(app: App) -> None:
    headers = {"Idempotency-Key": "rv3-cita-77"}
    first = create(app, cita(), headers)
    again = create(app, cita(), headers)
    assert first.status == again.status == 201
    assert again.body["id"] == first.body["id"]
    assert count(app, appointments) == 1
    assert count(app, outbox) == 1


def test_idempotency_key_reused_with_another_body_is_refused(app: App) -> None:
    headers = {"Idempotency-Key": "rv3-cita-78"}
    assert create(app, cita(), headers).status == 201
    response = create(app, cita(title="Otra cosa"), headers)
    assert response.status == 422
    assert response.body["error"]["code"] == "idempotency_key_reused"


def test_concurrent_requests_with_one_key_create_one_appointment(app: App) -> None:
    results: list[Response] = []

    def post() -> None:
        results.append(create(app, cita(), {"Idempotency-Key": "same-key"}))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status for r in results} == {201}
    assert len({r.body["id"] for r in results}) == 1
    assert count(app, appointments) == 1


def test_concurrent_overlapping_bookings_let_only_one_through(app: App) -> None:
    results: list[Response] = []

    def post(i: int) -> None:
        results.append(create(app, cita(title=f"Cita {i}")))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in results) == [201, 409, 409, 409]
    assert count(app, appointments) == 1


def _update(app: App, cita_id: int, body: dict[str, Any], if_match: str | None = None) -> Response:
    headers = {"If-Match": if_match} if if_match else None
    return app.call(
        api.citas_update, "PUT", f"ghl/citas/{cita_id}", body=body, headers=headers, route={"id": str(cita_id)}
    )


def test_reschedule_bumps_the_version_and_queues_an_update(app: App) -> None:
    created = create(app, cita()).body
    moved = _update(
        app, created["id"], cita(start_time=f"{DAY}T15:00:00-05:00", end_time=f"{DAY}T16:00:00-05:00"), '"1"'
    )
    assert moved.status == 200
    assert moved.body["version"] == 2 and moved.headers["ETag"] == '"2"'
    assert moved.body["start_time"] == f"{DAY}T15:00:00-05:00"
    with app.db.transaction() as conn:
        ops = [r.operation for r in conn.execute(sa.select(outbox.c.operation).order_by(outbox.c.id))]
    assert ops == ["create", "update"]


def test_stale_if_match_is_rejected_and_changes_nothing(app: App) -> None:
    created = create(app, cita()).body
    assert _update(app, created["id"], cita(title="Primera edición"), '"1"').status == 200
    stale = _update(app, created["id"], cita(title="Edición vieja"), '"1"')
    assert stale.status == 412
    assert stale.body["error"]["code"] == "version_mismatch"
    current = app.call(api.citas_get, "GET", "x", route={"id": str(created["id"])}).body
    assert current["title"] == "Primera edición"


def test_patient_cannot_be_swapped_on_an_existing_appointment(app: App) -> None:
    created = create(app, cita()).body
    other = cita(patient={"name": "Otro Paciente", "phone": "912345678"})
    assert _update(app, created["id"], other).body["error"]["code"] == "contact_change_not_supported"


def test_an_appointment_with_a_patient_can_be_edited_naming_its_ghl_contact(app: App) -> None:
    # As RV3 edits a booking that came from GHL (its patient linked by the webhook): found by the chaos run.
    created = create(app, cita()).body
    with app.db.transaction() as conn:
        conn.execute(appointments.update().where(appointments.c.id == created["id"]).values(contact_id="ct_rosa"))
    same = {key: value for key, value in cita(title="Editada").items() if key != "patient"}
    assert _update(app, created["id"], {**same, "contact_id": "ct_rosa"}).status == 200
    other = _update(app, created["id"], {**same, "contact_id": "ct_otro"})
    assert other.body["error"]["code"] == "contact_change_not_supported"


def _cancel(app: App, cita_id: int) -> Response:
    return app.call(api.citas_cancel, "POST", f"ghl/citas/{cita_id}/cancel", route={"id": str(cita_id)})


def test_cancel_is_idempotent(app: App) -> None:
    created = create(app, cita()).body
    first, second = _cancel(app, created["id"]), _cancel(app, created["id"])
    assert first.status == second.status == 200
    assert first.body["status"] == second.body["status"] == "cancelled"
    assert second.body["version"] == first.body["version"] == 2
    with app.db.transaction() as conn:
        cancels = conn.execute(sa.select(sa.func.count()).where(outbox.c.operation == "cancel")).scalar_one()
    assert cancels == 1


def test_a_cancelled_slot_can_be_booked_again(app: App) -> None:
    created = create(app, cita()).body
    _cancel(app, created["id"])
    assert create(app, cita(title="Nueva")).status == 201


def test_patient_without_phone_or_email_is_mapped_once_and_flagged(app: App) -> None:
    patient = {"name": "Rosa Mamani"}
    first = create(app, cita(patient=patient)).body
    second = create(
        app, cita(patient=patient, start_time=f"{DAY}T12:00:00-05:00", end_time=f"{DAY}T13:00:00-05:00")
    ).body
    assert "no_contact_channel" in first["flags"]
    assert count(app, contacts) == 1
    assert first["patient"] == second["patient"]


def test_invalid_phone_and_email_never_block_the_appointment(app: App) -> None:
    response = create(app, cita(patient={"name": "Juan Pérez", "phone": "12", "email": "juan@@mal"}))
    assert response.status == 201
    assert {"phone_invalid", "email_invalid", "no_contact_channel"} <= set(response.body["flags"])
    assert response.body["patient"]["phone"] is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"title": 5, "start_time": "ayer", "end_time": true, "contact_id": "c1"}', "validation_error"),
        (
            b'{"title": "x", "contact_id": "c1", "start_time": "2030-03-12T10:00", '
            b'"end_time": "2030-03-12T11:00", "hack": 1}',
            "validation_error",
        ),
    ],
)
def test_bad_input_gets_a_clear_400(app: App, raw: bytes, code: str) -> None:
    response = app.call(api.citas_create, "POST", "ghl/citas", raw=raw)
    assert response.status == 400
    assert response.body["error"]["code"] == code
    assert response.body["error"]["message"]
    assert count(app, appointments) == 0


def test_validation_details_are_spanish_and_name_the_field(app: App) -> None:
    raw = b'{"title": "x", "contact_id": "c1", "start_time": "ayer", "end_time": "2030-03-12T11:00"}'
    details = app.call(api.citas_create, "POST", "ghl/citas", raw=raw).body["error"]["details"]
    assert details == [
        {
            "field": "start_time",
            "code": "datetime_parsing",
            "message": "Fecha y hora inválidas (use ISO-8601).",
        }
    ]


def test_huge_body_is_refused_without_reading_it(app: App) -> None:
    response = app.call(api.citas_create, "POST", "ghl/citas", raw=b"{" + b" " * 200_000 + b"}")
    assert response.status == 413


def test_unknown_appointment_is_404(app: App) -> None:
    response = app.call(api.citas_get, "GET", "ghl/citas/999", route={"id": "999"})
    assert response.status == 404
    assert response.body["error"]["message"] == "La cita no existe."


def test_list_filters_by_status_date_and_sync_state(app: App) -> None:
    first = create(app, cita()).body
    create(app, cita(start_time="2030-03-13T10:00:00-05:00", end_time="2030-03-13T11:00:00-05:00"))
    _cancel(app, first["id"])

    def listing(**params: str) -> Any:
        return app.call(api.citas_list, "GET", "ghl/citas", params=params).body

    assert listing()["count"] == 2
    assert listing(status="cancelled")["count"] == 1
    assert listing(status="scheduled,confirmed")["count"] == 1
    assert [c["start_time"][:10] for c in listing(desde="2030-03-13")["results"]] == ["2030-03-13"]
    assert listing(hasta="2030-03-12")["count"] == 1
    assert listing(sync_state="pending")["count"] == 1
    assert listing(sync_state="local_only")["count"] == 1  # cancelled before it ever reached GHL
    assert listing(page_size="1", page="2")["results"][0]["start_time"].startswith("2030-03-13")


def test_a_page_shows_each_patient_and_reads_them_in_one_statement(app: App) -> None:
    people = [("Ana Quispe", "987 000 001"), ("Luis Huamán", "987 000 002"), ("Rosa Flores", "987 000 003")]
    for day, (name, phone) in enumerate(people, start=12):
        start, end = f"2030-03-{day}T10:00:00-05:00", f"2030-03-{day}T11:00:00-05:00"
        create(app, cita(patient={"name": name, "phone": phone}, start_time=start, end_time=end))
    patient_reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM contacts" in statement:
            patient_reads.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)  # the app's own engine, whichever it is
    try:
        body = app.call(api.citas_list, "GET", "ghl/citas").body
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert sorted(c["patient"]["name"] for c in body["results"]) == sorted(name for name, _ in people)
    assert {c["patient"]["phone"] for c in body["results"]} == {"+51987000001", "+51987000002", "+51987000003"}
    assert len(patient_reads) == 1  # not one per appointment of the page


@pytest.mark.parametrize("params", [{"page_size": "500"}, {"status": "borrada"}, {"desde": "12/03/2030"}])
def test_list_rejects_bad_filters(app: App, params: dict[str, str]) -> None:
    response = app.call(api.citas_list, "GET", "ghl/citas", params=params)
    assert response.status == 400


def test_upcoming_lists_future_active_appointments_in_order(app: App) -> None:
    later = create(app, cita(start_time="2030-03-13T10:00:00-05:00", end_time="2030-03-13T11:00:00-05:00")).body
    sooner = create(app, cita()).body
    gone = create(app, cita(start_time="2030-03-14T10:00:00-05:00", end_time="2030-03-14T11:00:00-05:00")).body
    _cancel(app, gone["id"])
    body = app.call(api.citas_upcoming, "GET", "ghl/citas/upcoming").body
    assert [c["id"] for c in body["results"]] == [sooner["id"], later["id"]]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"[" * 1000 + b"]" * 1000, 400, "invalid_json"),
        (b'{"title": "x", "page": ' + b"7" * 4400 + b"}", 400, "invalid_json"),
        (b'{"title": NaN}', 400, "invalid_json"),
        (b'{"title": "\\u0000"}', 400, "invalid_json"),
        (b'{"title": "\\udc00"}', 400, "invalid_json"),
        (b"{" + b" " * 70_000 + b"}", 413, "payload_too_large"),
    ],
)
def test_hostile_json_is_a_4xx_on_every_body_route(app: App, raw: bytes, status: int, code: str) -> None:
    response = app.call(api.citas_create, "POST", "ghl/citas", raw=raw)
    assert (response.status, response.body["error"]["code"]) == (status, code)
    assert response.body["error"]["message"]
    assert count(app, appointments) == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T23:00:00-23:59", "9999-12-31T23:59:59-23:59"),
        ("0001-01-01T00:00:00+23:59", "0001-01-01T01:00:00+23:59"),
        ("1999-06-01T10:00:00-05:00", "1999-06-01T11:00:00-05:00"),
        ("2101-06-01T10:00:00-05:00", "2101-06-01T11:00:00-05:00"),
        ("２０３０-03-12T10:00:00-05:00", "2030-03-12T11:00:00-05:00"),
    ],
)
def test_dates_outside_the_product_years_are_refused_with_400(app: App, start: str, end: str) -> None:
    response = create(app, cita(start_time=start, end_time=end))
    assert (response.status, response.body["error"]["code"]) == (400, "validation_error")
    assert count(app, appointments) == 0


@pytest.mark.parametrize("params", [{"hasta": "9999-12-31"}, {"desde": "0001-01-01"}, {"desde": "2030-W01-1"}])
def test_list_dates_outside_the_product_years_are_400(app: App, params: dict[str, str]) -> None:
    response = app.call(api.citas_list, "GET", "ghl/citas", params=params)
    assert (response.status, response.body["error"]["code"]) == (400, "invalid_query")


@pytest.mark.parametrize("title", ["   ", "\t\n"])
def test_a_blank_title_is_refused_with_422(app: App, title: str) -> None:
    response = create(app, cita(title=title))
    assert (response.status, response.body["error"]["code"]) == (422, "unprocessable")
    assert response.body["error"]["details"][0]["field"] == "title"
    assert count(app, appointments) == 0


@pytest.mark.parametrize("if_match", ["9" * 5000, '"²"', "٣", '"1" junk', "W/", "-1"])
def test_an_if_match_that_is_no_version_is_400(app: App, if_match: str) -> None:
    created = create(app, cita()).body
    response = _update(app, created["id"], cita(title="Otra"), if_match)
    assert (response.status, response.body["error"]["code"]) == (400, "invalid_if_match")


@pytest.mark.parametrize("cita_id", ["²", "٣", "1" * 30, "-1"])
def test_a_route_id_that_is_no_ascii_number_is_404(app: App, cita_id: str) -> None:
    response = app.call(api.citas_get, "GET", f"ghl/citas/{cita_id}", route={"id": cita_id})
    assert response.status == 404


@pytest.mark.parametrize(
    ("title", "name", "notes"),
    [
        ("Consulta de reflexología", "José Ñúñez Güemes", "Dolor en el pie izquierdo; señaló «molestia»"),
        ("Terapia 🦶🏽💆‍♀️", "Ana 🌸 Ruiz", "😀 primera vez"),
        ("جلسة علاج", "مريم الحسيني", "ملاحظة"),
        ("טיפול", "שרה לוי", "הערה"),
    ],
)
def test_unicode_names_titles_and_notes_come_back_as_sent(app: App, title: str, name: str, notes: str) -> None:
    created = create(app, cita(title=title, notes=notes, patient={"name": name, "phone": "987654321"}))
    assert created.status == 201
    again = app.call(api.citas_get, "GET", f"ghl/citas/{created.body['id']}", route={"id": str(created.body["id"])})
    assert (again.body["title"], again.body["notes"], again.body["patient"]["name"]) == (title, notes, name)


def test_a_misspelt_filter_is_refused_and_the_function_key_param_is_not_a_filter(app: App) -> None:
    misspelt = app.call(api.citas_list, "GET", "ghl/citas", params={"desd": "2030-03-13"})
    assert (misspelt.status, misspelt.body["error"]["details"][0]["field"]) == (400, "desd")
    assert app.call(api.citas_list, "GET", "ghl/citas", params={"code": "the-key"}).status == 200
