"""The console and its API twin in-process: what staff get for a wrong address, a bad form or an action that does
not apply (a clear 4xx page in Spanish, never a 5xx), the headers every page carries, and the retry/history API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from blueprints import citas as api
from blueprints import console as pages
from shared import runtime
from shared.console import auth
from shared.settings import get_settings
from shared.store import conflicts as conflict_repo
from shared.store.schema import appointments, outbox, webhook_inbox
from tests.fixtures.app import LOCATION, App, Response

SIGNING_KEY = "console-integration-key-0123456789abcdef"


@pytest.fixture
def console(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("CONSOLE_DEV_SIGNIN", "true")
    monkeypatch.setenv("CONSOLE_SIGNING_KEY", SIGNING_KEY)
    get_settings.cache_clear()
    runtime.reset()
    yield app
    get_settings.cache_clear()
    runtime.reset()


def _signed_in(role: auth.Role = "operator") -> tuple[dict[str, str], str]:
    principal = auth.dev_principal("Carla", role)
    key = SIGNING_KEY.encode()
    cookie = f"{auth.DEV_COOKIE}={auth.dev_cookie_value(key, principal)}"
    return {"cookie": cookie}, auth.issue_token(key, principal.user_id)


def _get(app: App, function: Any, path: str, **kwargs: Any) -> Response:
    headers, _token = _signed_in()
    return app.call(function, "GET", path, headers=headers, **kwargs)


def _post(app: App, function: Any, path: str, form: dict[str, str], **kwargs: Any) -> Response:
    from urllib.parse import urlencode

    headers, token = _signed_in()
    body = urlencode({auth.TOKEN_FIELD: token, **form}).encode()
    headers["content-type"] = "application/x-www-form-urlencoded"
    return app.call(function, "POST", path, raw=body, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


def _failed_cita(app: App) -> int:
    created = app.call(
        api.citas_create,
        "POST",
        "ghl/citas",
        body={
            "title": "Consulta",
            "contact_id": "contact_1",
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
        },
    )
    assert created.status == 201, created.body
    cita_id = int(created.body["id"])
    with app.db.transaction() as conn:
        conn.execute(
            appointments.update()
            .where(appointments.c.id == cita_id)
            .values(sync_state="error", last_error="GoHighLevel rechazó la cita.")
        )
    return cita_id


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in_and_back(console: App) -> None:
    answer = console.call(pages.console_citas, "GET", "console/citas", params={"vista": "todas"})
    assert answer.status == 302
    assert answer.headers["Location"] == "/api/console/entrar?next=/api/console/citas%3Fvista%3Dtodas"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"vista": "ayer"}, "Vista desconocida"),
        ({"estado": "perdida"}, "Estado de sincronización desconocido"),
        ({"pagina": "0"}, "Número de página inválido"),
        ({"pagina": "١٢"}, "Número de página inválido"),
    ],
)
def test_a_wrong_filter_is_a_400_page_in_spanish(console: App, params: dict[str, str], message: str) -> None:
    answer = _get(console, pages.console_citas, "console/citas", params=params)
    assert answer.status == 400
    assert answer.body.startswith("<!doctype html>")
    assert message in answer.body and "invalid_query" in answer.body


def test_pages_carry_a_strict_content_security_policy_and_are_never_framed(console: App) -> None:
    answer = _get(console, pages.console_citas, "console/citas")
    assert answer.status == 200
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-store"


def test_an_unknown_cita_is_a_404_page(console: App) -> None:
    answer = _get(console, pages.console_cita, "console/citas/999", route={"id": "999"})
    assert answer.status == 404 and "La cita no existe." in answer.body


def test_retrying_a_cita_whose_sync_did_not_fail_is_refused(console: App) -> None:
    created = console.call(
        api.citas_create,
        "POST",
        "ghl/citas",
        body={"title": "Consulta", "contact_id": "c1", "start_time": "2030-03-12T12:00:00-05:00",
              "end_time": "2030-03-12T13:00:00-05:00"},
    )  # fmt: skip
    cita_id = str(created.body["id"])
    page = _post(console, pages.console_cita_retry, f"console/citas/{cita_id}/reintentar", {}, route={"id": cita_id})
    assert page.status == 409 and "no ha fallado" in page.body
    api_answer = console.call(api.citas_retry, "POST", f"ghl/citas/{cita_id}/retry", route={"id": cita_id})
    assert api_answer.status == 409 and api_answer.body["error"]["code"] == "appointment_not_failed"


def test_a_retry_sends_the_failed_cita_again_and_its_history_says_so(console: App) -> None:
    cita_id = _failed_cita(console)
    answer = console.call(api.citas_retry, "POST", f"ghl/citas/{cita_id}/retry", route={"id": str(cita_id)})
    assert answer.status == 202
    assert (answer.body["sync_state"], answer.body["last_error"]) == ("pending", None)
    with console.db.transaction() as conn:
        operations = conn.execute(sa.select(outbox.c.operation, outbox.c.status).order_by(outbox.c.id)).all()
    assert [tuple(row) for row in operations] == [("create", "dispatched"), ("retry", "dispatched")]
    history = console.call(api.citas_history, "GET", f"ghl/citas/{cita_id}/history", route={"id": str(cita_id)})
    assert [change["operation"] for change in history.body["changes"]] == ["retry", "create"]


def test_a_form_that_is_too_large_or_not_a_form_is_refused(console: App) -> None:
    cita_id = str(_failed_cita(console))
    route = {"id": cita_id}
    path = f"console/citas/{cita_id}/reintentar"
    large = _post(console, pages.console_cita_retry, path, {"x": "a" * 9000}, route=route)
    assert large.status == 413
    headers, token = _signed_in()
    as_json = console.call(pages.console_cita_retry, "POST", path, body={auth.TOKEN_FIELD: token}, headers=headers,
                           route=route)  # fmt: skip
    assert as_json.status == 415


@pytest.mark.parametrize("value", ["", "abc", "12a", "９"])
def test_a_review_is_resolved_only_with_a_patient_number(console: App, value: str) -> None:
    answer = _post(
        console,
        pages.console_review_resolve,
        "console/revision/1/resolver",
        {"rv3_patient_id": value},
        route={"id": "1"},
    )
    assert answer.status == 422 and "número de paciente" in answer.body


def test_replaying_an_unknown_queue_is_refused(console: App) -> None:
    answer = _post(console, pages.console_poison_replay, "console/mensajes/reenviar", {"cola": "otra"})
    assert answer.status == 422 and "La cola no existe." in answer.body


def test_the_static_files_are_served_for_long_and_nothing_else_is(console: App) -> None:
    js = console.call(pages.console_static, "GET", "console/static/htmx.min.js", route={"name": "htmx.min.js"})
    assert js.status == 200 and "immutable" in js.headers["Cache-Control"]
    for name in ("../settings.py", "htmx.LICENSE", "README.md"):
        assert console.call(pages.console_static, "GET", f"console/static/{name}", route={"name": name}).status == 404


def test_retrying_a_lead_without_an_odoo_to_send_it_to_says_so(console: App) -> None:
    answer = _post(console, pages.console_lead_retry, "console/miasalud/1/reintentar", {}, route={"id": "1"})
    assert answer.status == 409 and "Odoo no está configurado" in answer.body


def test_a_signed_in_user_without_a_console_role_sees_nothing(console: App) -> None:
    nobody = auth.Principal("dev-sin-rol", "Sin Rol", frozenset())
    cookie = f"{auth.DEV_COOKIE}={auth.dev_cookie_value(SIGNING_KEY.encode(), nobody)}"
    answer = console.call(pages.console_citas, "GET", "console/citas", headers={"cookie": cookie})
    assert answer.status == 403 and "no tiene acceso a la consola" in answer.body


def test_a_cita_s_history_shows_what_ghl_said_about_it_and_its_conflicts(console: App) -> None:
    cita_id = _failed_cita(console)
    now = datetime.now(UTC)
    with console.db.transaction() as conn:
        conn.execute(appointments.update().where(appointments.c.id == cita_id).values(ghl_event_id="evt_hist"))
        for minutes, outcome in ((1, "echo"), (2, "ghl_won")):
            conn.execute(
                webhook_inbox.insert().values(
                    dedupe_key=f"hist-{minutes}", payload_hash="x", event_type="AppointmentUpdate",
                    location_id=LOCATION, ghl_event_id="evt_hist", received_at=now + timedelta(minutes=minutes),
                    processed_at=now + timedelta(minutes=minutes), success=True, outcome=outcome,
                )
            )  # fmt: skip
        conn.execute(
            webhook_inbox.insert().values(
                dedupe_key="other", payload_hash="x", event_type="AppointmentUpdate", location_id=LOCATION,
                ghl_event_id="evt_other", received_at=now, success=True, outcome="ghl_won",
            )
        )  # fmt: skip
    with console.db.transaction() as conn:
        conflict_repo.record(
            conn, appointment_id=cita_id, policy="latest_wins", winner="ghl",
            rv3_values={"title": "Consulta"}, ghl_values={"title": "Consulta de control"}, now=now,
        )  # fmt: skip
    history = console.call(api.citas_history, "GET", f"ghl/citas/{cita_id}/history", route={"id": str(cita_id)})
    assert [(seen["outcome"], seen["event_type"]) for seen in history.body["ghl_changes"]] == [
        ("ghl_won", "AppointmentUpdate"),
        ("echo", "AppointmentUpdate"),
    ]  # newest first, and only this cita's event
    [conflict] = history.body["conflicts"]
    assert (conflict["winner"], conflict["ghl_values"]) == ("ghl", {"title": "Consulta de control"})
    page = _get(console, pages.console_cita, f"console/citas/{cita_id}", route={"id": str(cita_id)})
    assert page.status == 200
    assert "Eco de un cambio nuestro" in page.body and "Cambio hecho en GoHighLevel: aplicado" in page.body
    assert "Consulta de control" in page.body
