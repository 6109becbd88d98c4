"""The operations console in a real browser (headless Chromium) on the local stack: what front desk and operations
staff see and do, signed in through the development sign-in as an operator or a viewer.

One stack (host, Azurite, SQLite, GHL sandbox, RV3's database) and one browser serve the whole module; each test
makes the data it looks at. Screenshots are saved in the module's temporary folder, or with
`CONSOLE_SCREENSHOTS=docs/console` where the README shows them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.fixtures.app import CALENDAR, LOCATION, seed_location
from tests.fixtures.rv3_schema import FrontDesk, create_rv3_database
from tests.fixtures.stack import MANYCHAT_KEY, Stack, call_json, stack_of
from tools.azurite import Azurite

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.azurite]

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class Console:
    """The module's stack, RV3's front desk beside it, and the browser that opens the console."""

    def __init__(self, stack: Stack, desk: FrontDesk, browser: Any) -> None:
        self.stack, self.desk, self.browser = stack, desk, browser
        self.url = f"{stack.host.base_url}/api/console"
        wanted = os.environ.get("CONSOLE_SCREENSHOTS")
        self.screenshots = REPO / wanted if wanted else stack.tmp / "screenshots"

    def sign_in(self, role: str, name: str, viewport: dict[str, int] = DESKTOP) -> Any:
        """A new browser context signed in with `role`; returns its page, on the citas page."""
        context = self.browser.new_context(viewport=viewport, locale="es-PE")
        page = context.new_page()
        page.errors = []  # what the browser reports: a blocked script or style (CSP), a script error
        page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(f"{self.url}/")  # the one address staff are given
        assert "/api/console/entrar" in page.url  # not signed in: sent to sign in first
        page.fill("input[name=nombre]", name)
        page.check(f"input[name=rol][value={role}]")
        page.click("button:has-text('Entrar')")
        page.wait_for_url(re.compile(r"/api/console/citas"))
        return page

    def cita(self, **overrides: Any) -> int:
        body = {
            "title": "Consulta Fisioterapia",
            "ghl_calendar_id": CALENDAR,
            "patient": {"name": "Rosa Huamán Quispe", "phone": "987000111"},
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
            **overrides,
        }
        created = self.stack.api().post("/ghl/citas", json=body)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    def sync_state(self, cita_id: int, state: str) -> dict[str, Any] | None:
        body = call_json(self.stack.api().get(f"/ghl/citas/{cita_id}"))
        return body if body["sync_state"] == state else None

    def screenshot(self, page: Any, name: str) -> None:
        self.screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def console(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (./scripts/bootstrap installs Debian's chromium)")
    tmp = tmp_path_factory.mktemp("console")
    rv3_url = f"sqlite:///{tmp / 'rv3.db'}"
    rv3_engine = sa.create_engine(rv3_url)
    desk = create_rv3_database(rv3_engine)
    env = {
        "CONSOLE_DEV_SIGNIN": "true",
        "CONSOLE_SIGNING_KEY": "console-e2e-signing-key-0123456789abcdef",
        "RV3_SQL_URL": rv3_url,
        "RV3_POLL_SCHEDULE": "*/2 * * * * *",
    }
    with (
        stack_of(azurite, tmp, {"env": env}, before_start=lambda s: seed_location(s.db)) as stack,
        playwright.sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield Console(stack, desk, browser)
        finally:
            browser.close()
            rv3_engine.dispose()


BOOKINGS = "POST /calendars/events/appointments"


def test_a_cita_ghl_refuses_shows_failed_with_its_reason_and_a_retry_from_the_page_syncs_it(
    console: Console,
) -> None:
    admin = console.stack.sandbox.admin
    admin.configure("faults", {"endpoints": {BOOKINGS: {"rejected": 1.0}}})  # GHL refuses every booking
    try:
        cita_id = console.cita(start_time="2030-03-10T10:00:00-05:00", end_time="2030-03-10T11:00:00-05:00")
        console.stack.wait_until(lambda: console.sync_state(cita_id, "error"), what="the cita refused by GHL")
    finally:
        admin.configure("faults", {})
    page = console.sign_in("operator", "Carla Operadora")

    page.click("a:has-text('Con error')")
    row = page.locator(f"tr[data-cita='{cita_id}']")
    assert row.locator(".badge").inner_text() == "Falló"
    assert "GoHighLevel rechazó la cita" in row.locator(".reason").inner_text()
    assert row.locator("td[data-label=Origen]").inner_text() == "Reflexo V3"
    console.screenshot(page, "citas-con-error")

    row.locator("a").click()
    assert page.locator("[data-sync-state]").inner_text() == "Falló"
    reason = page.locator("[data-reason]").inner_text()
    assert reason.startswith("GoHighLevel rechazó la cita")
    assert page.locator("#sync table[data-changes]").inner_text().count("Crear en GoHighLevel") == 1
    console.screenshot(page, "cita-fallida")

    # GHL takes bookings again (the cause fixed there); the operator retries from the page.
    page.click("button:has-text('Reintentar sincronización')")
    assert "Reintento enviado" in page.locator(".notice").inner_text()
    page.locator("[data-sync-state=synced]").wait_for(timeout=30_000)  # the page follows the sync by itself
    assert page.locator("[data-reason]").count() == 0
    assert "Reintento pedido por el personal" in page.locator("#sync table[data-changes]").inner_text()
    synced = console.sync_state(cita_id, "synced")
    assert synced is not None
    [event] = [e for e in console.stack.sandbox.admin.state()["appointments"] if e["id"] == synced["ghl_event_id"]]
    assert event["startTime"].startswith("2030-03-10T10:00:00")
    console.screenshot(page, "cita-reintentada")
    assert page.errors == []
    page.context.close()


def test_a_viewer_sees_a_failed_cita_but_cannot_retry_it(console: Console) -> None:
    cita_id = console.cita(contact_id="contact_missing_in_ghl", patient=None, start_time="2030-03-13T09:00:00-05:00",
                           end_time="2030-03-13T10:00:00-05:00")  # fmt: skip
    console.stack.wait_until(lambda: console.sync_state(cita_id, "error"), what="the cita refused by GHL")
    page = console.sign_in("viewer", "Víctor Lector", viewport=PHONE)
    page.goto(f"{console.url}/citas/{cita_id}")
    assert page.locator("[data-sync-state]").inner_text() == "Falló"
    assert "GoHighLevel no encontró" in page.locator("[data-reason]").inner_text()
    assert page.locator("button:has-text('Reintentar')").count() == 0
    assert "Solo un operador puede reintentar" in page.inner_text("#sync")
    console.screenshot(page, "cita-lector-movil")

    # Even with the page's own anti-forgery token, the action is refused for a viewer.
    token = page.locator(f"input[name={TOKEN}]").first.get_attribute("value")
    refused = page.request.post(f"{console.url}/citas/{cita_id}/reintentar", form={TOKEN: token})
    assert refused.status == 403
    assert "Solo un operador" in refused.text() and "operator_role_required" in refused.text()
    assert console.sync_state(cita_id, "error") is not None
    for action, form in [
        ("revision/1/resolver", {"rv3_patient_id": "1"}),
        ("mensajes/reenviar", {"cola": "rv3-to-ghl"}),
        ("conciliacion/ejecutar", {"sede": LOCATION, "dia": "2030-03-13", "corregir": "si"}),
        ("conciliacion/1/corregir", {}),
    ]:
        answer = page.request.post(f"{console.url}/{action}", form={TOKEN: token, **form})
        assert answer.status == 403 and "operator_role_required" in answer.text(), action
    assert page.errors == []
    page.context.close()


def test_an_action_without_the_anti_forgery_token_or_from_another_site_is_refused(console: Console) -> None:
    cita_id = console.cita(contact_id="contact_missing_too", patient=None, start_time="2030-03-14T09:00:00-05:00",
                           end_time="2030-03-14T10:00:00-05:00")  # fmt: skip
    console.stack.wait_until(lambda: console.sync_state(cita_id, "error"), what="the cita refused by GHL")
    page = console.sign_in("operator", "Carla Operadora")
    page.goto(f"{console.url}/citas/{cita_id}")
    token = page.locator(f"input[name={TOKEN}]").first.get_attribute("value")
    retry = f"{console.url}/citas/{cita_id}/reintentar"

    missing = page.request.post(retry, form={})
    assert missing.status == 403 and "csrf_token_invalid" in missing.text()
    forged = page.request.post(retry, form={TOKEN: token[:-2] + "xx"})
    assert forged.status == 403 and "csrf_token_invalid" in forged.text()
    cross_site = page.request.post(retry, form={TOKEN: token}, headers={"Origin": "https://evil.example"})
    assert cross_site.status == 403 and "cross_site_request" in cross_site.text()
    assert console.sync_state(cita_id, "error") is not None  # nothing was retried
    page.context.close()


def test_a_ghl_booking_of_an_unknown_contact_is_resolved_from_the_review_page(console: Console) -> None:
    admin = console.stack.sandbox.admin
    lucia = admin.simulate_contact_create(
        locationId=LOCATION, firstName="Lucía", lastName="Ramos", phone="+51955000111"
    )
    admin.simulate_booking(
        locationId=LOCATION,
        calendarId=CALENDAR,
        contactId=lucia["id"],
        startTime="2030-04-06T11:00:00-05:00",
        endTime="2030-04-06T12:00:00-05:00",
        title="Reserva web",
    )
    api = console.stack.api()
    [review] = console.stack.wait_until(lambda: call_json(api.get("/rv3/review"))["results"], what="the review")
    patient = console.desk.add_patient(name="Lucía", last_name_paternal="Ramos", phone1="955000111")

    page = console.sign_in("operator", "Carla Operadora")
    page.click("nav a:has-text('Por revisar')")
    row = page.locator(f"tr[data-review='{review['id']}']")
    assert "Reserva web" in row.inner_text() and "Lucía Ramos" in row.inner_text()
    console.screenshot(page, "por-revisar")
    row.locator("input[name=rv3_patient_id]").fill(str(patient))
    row.locator("button:has-text('Asignar')").click()

    assert "Reserva asignada al paciente" in page.locator(".notice").inner_text()
    assert page.locator(f"tr[data-review='{review['id']}']").count() == 0
    assert call_json(api.get("/rv3/review"))["results"] == []
    [booked] = [r for r in console.desk.rows("appointments") if r.patient_id == patient]
    assert booked.appointment_date.date().isoformat() == "2030-04-06"
    page.context.close()


def _stuck_change(console: Console, hour: int) -> int:
    """A cita whose change to GHL failed five deliveries and sits in `rv3-to-ghl-poison`, as the host leaves it:
    made by the citas service itself, its queue message moved aside instead of delivered."""
    from shared.api.schemas import CitaIn
    from shared.queues import QueueUnavailable
    from shared.services import citas
    from shared.settings import load_settings
    from shared.store import outbox
    from shared.work import Work

    class StorageDown:
        def send(self, queue: str, message: dict[str, Any], *, delay_s: float = 0) -> None:
            raise QueueUnavailable(queue)

    env = {k: v for k, v in console.stack.env.items() if v}
    settings = load_settings(**env)
    work = Work(
        _settings=lambda: settings,
        _database=lambda: console.stack.db,
        _queues=StorageDown,  # type: ignore[arg-type]
        _ghl=lambda: pytest.fail("no GHL call expected"),
        _rv3=lambda: pytest.fail("no RV3 call expected"),
    )
    body = CitaIn.model_validate(
        {
            "title": "Control mensual",
            "ghl_calendar_id": CALENDAR,
            "patient": {"name": "Elena Paucar Ríos", "phone": "987000222"},
            "start_time": f"2030-03-15T{hour:02d}:00:00-05:00",
            "end_time": f"2030-03-15T{hour + 1:02d}:00:00-05:00",
        }
    )
    _status, created = citas.create(work, body, idempotency_key=None, correlation_id=None)
    with console.stack.db.transaction() as conn:
        [row] = outbox.of_appointment(conn, created["id"])
        entry = outbox.get(conn, row.op_id)
        assert entry is not None
        outbox.mark_dispatched(conn, entry.op_id, work.now())
    from shared.queues import Queues

    Queues.from_settings(settings).send("rv3-to-ghl-poison", entry.message())
    return int(created["id"])


def test_poison_messages_are_shown_with_what_they_are_about_and_replayed_from_the_page(console: Console) -> None:
    first, second = _stuck_change(console, 16), _stuck_change(console, 18)
    assert console.sync_state(first, "pending") and console.sync_state(second, "pending")

    page = console.sign_in("operator", "Carla Operadora")
    page.click("nav a:has-text('Mensajes atascados')")
    rows = page.locator("[data-queue=rv3-to-ghl] tr[data-message]")
    assert rows.count() == 2
    assert f"Cita {first}: Crear en GoHighLevel" in rows.first.inner_text()
    console.screenshot(page, "mensajes-atascados")

    rows.filter(has_text=f"Cita {first}:").locator("button:has-text('Reenviar')").click()
    assert "Mensajes devueltos a su cola" in page.locator(".notice").inner_text()
    assert rows.count() == 1 and f"Cita {second}:" in rows.first.inner_text()
    console.stack.wait_until(lambda: console.sync_state(first, "synced"), what="the replayed change")
    assert console.sync_state(second, "pending") is not None  # only the one asked for

    page.click("[data-queue=rv3-to-ghl] button:has-text('Reenviar todos')")
    assert rows.count() == 0
    synced = console.stack.wait_until(lambda: console.sync_state(second, "synced"), what="the change replayed with all")
    assert any(e["id"] == synced["ghl_event_id"] for e in console.stack.sandbox.admin.state()["appointments"])
    page.context.close()


def test_a_reconciliation_with_drift_shows_both_sides_and_is_healed_from_the_page(console: Console) -> None:
    day = "2030-05-06"
    cita_id = console.cita(title="Terapia de espalda", start_time=f"{day}T15:00:00-05:00",
                           end_time=f"{day}T16:00:00-05:00")  # fmt: skip
    synced = console.stack.wait_until(lambda: console.sync_state(cita_id, "synced"), what="the cita in GHL")
    admin = console.stack.sandbox.admin
    admin.pause_webhooks()  # renamed inside GHL, its webhook lost on the way
    try:
        admin.simulate_appointment_edit(synced["ghl_event_id"], title="Terapia de hombro")
        page = console.sign_in("operator", "Carla Operadora")
        page.click("nav a:has-text('Conciliación')")
        page.fill("input[name=dia]", day)
        page.click("button:has-text('Conciliar ahora')")
        assert "Conciliación iniciada" in page.locator(".notice").inner_text()
        page.locator("#informe[data-status=completed]").wait_for(timeout=30_000)

        differs = page.locator(f"table[data-differs='{cita_id}']")
        title = differs.locator("tr[data-field=title]")
        assert title.locator("[data-side=rv3]").inner_text() == "Terapia de espalda"
        assert title.locator("[data-side=ghl]").inner_text() == "Terapia de hombro"
        console.screenshot(page, "conciliacion-diferencias")

        page.click("button:has-text('Corregir estas diferencias')")
        page.locator("#informe[data-status=completed]").wait_for(timeout=30_000)
        assert "Corregido con lo que dice GoHighLevel" in page.inner_text("#informe")
        healed = console.stack.wait_until(
            lambda: (
                (c := call_json(console.stack.api().get(f"/ghl/citas/{cita_id}")))["title"] == "Terapia de hombro" and c
            ),
            what="the heal applied",
        )
        assert healed["sync_state"] == "synced"
        console.screenshot(page, "conciliacion-corregida")

        # Today's comparison, run from the page with its default day: the calendar shows it, without drift.
        page.click("nav a:has-text('Conciliación')")
        page.click("button:has-text('Conciliar ahora')")
        page.locator("#informe[data-status=completed]").wait_for(timeout=30_000)
        page.click("nav a:has-text('Conciliación')")
        days = page.locator(f"[data-calendar={LOCATION}] li[data-day]")
        assert days.count() == 14
        today = days.nth(13)
        assert (today.get_attribute("data-drift"), today.locator("a.day.ok").count()) == ("0", 1)
        console.screenshot(page, "conciliacion-calendario")
    finally:
        admin.resume_webhooks()
    page.context.close()


def test_health_and_the_citas_of_the_day_read_well_on_a_phone(console: Console) -> None:
    page = console.sign_in("viewer", "Víctor Lector", viewport=PHONE)
    page.locator("nav").get_by_role("link", name="Salud", exact=True).click()
    assert page.locator("[data-health]").get_attribute("data-health") == "ok"
    for check in ("sql", "storage", f"ghl:{LOCATION}"):
        assert "Bien" in page.locator(f"tr[data-check='{check}']").inner_text(), check
    assert page.locator("tr[data-queue=rv3-to-ghl]").count() == 1
    # GHL's calls hour by hour: 24 bars, and the hours with calls (the earlier tests') are drawn.
    calls = page.locator("svg[data-chart=calls] g")
    assert calls.count() == 24 and page.locator("svg[data-chart=latency] g").count() == 24
    titles = page.locator("svg[data-chart=calls] title").all_text_contents()
    assert len(titles) == 24 and all("llamadas" in title for title in titles)
    drawn = page.locator("svg[data-chart=calls] rect").evaluate_all(
        "rs => rs.filter(r => +r.getAttribute('height') > 0).length"
    )
    assert drawn >= 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    console.screenshot(page, "salud-movil")

    page.click("nav a:has-text('Citas')")
    page.click("a:has-text('Todas')")
    assert page.locator("tr[data-cita]").count() >= 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the citas page scrolls sideways on a phone ({width}px)"
    console.screenshot(page, "citas-movil")
    page.context.close()


def test_miasalud_leads_are_listed_with_where_they_stand_in_odoo(console: Console) -> None:
    event = {
        "manychat_id": "MC70001", "nombre_lead": "Inés", "apellido_lead": "Valdivia", "whatsapp": "+5215512345678",
        "datetime_suscripcion": "2026-06-10T10:00:00Z", "datetime_actual": "2026-06-10T10:05:00Z",
        "ultimo_estado": "Nuevo Lead", "canal_entrada": "Facebook", "estado_inicial": "Nuevo",
    }  # fmt: skip
    sent = httpx.post(
        f"{console.stack.host.base_url}/api/v1/manychat/webhook/contact",
        json=event,
        headers={"X-API-KEY": MANYCHAT_KEY},
    )
    assert sent.status_code == 202, sent.text
    refused = httpx.post(
        f"{console.stack.host.base_url}/api/v1/manychat/webhook/contact",
        json={**event, "manychat_id": "MC70002", "datetime_actual": "ayer"},
        headers={"X-API-KEY": MANYCHAT_KEY},
    )
    assert refused.status_code in (400, 422), refused.text
    leads = f"{console.stack.host.base_url}/api/v1/contacts"
    console.stack.wait_until(
        lambda: httpx.get(leads, headers={"X-API-KEY": MANYCHAT_KEY}).json()["count"], what="the lead in SQL"
    )
    page = console.sign_in("viewer", "Víctor Lector")
    page.click("nav a:has-text('MiaSalud')")
    row = page.locator("tr[data-lead=MC70001]")
    assert "Inés Valdivia" in row.inner_text() and "Nuevo Lead" in row.inner_text()
    assert row.locator("[data-odoo]").inner_text() == "Pendiente"  # no Odoo configured here: the lead waits in SQL
    assert "Odoo: no configurado" in page.inner_text("main")
    # What ManyChat sent and was refused is there for review, with its reason in Spanish.
    refused_row = page.locator("table[data-rejected] tr[data-event]")
    assert refused_row.count() == 1 and "MC70002" in refused_row.inner_text()
    assert "datetime_actual" in refused_row.inner_text()
    console.screenshot(page, "miasalud")
    page.click("a:has-text('En Odoo')")
    assert page.locator("tr[data-lead]").count() == 0
    page.context.close()


TOKEN = "csrf_token"
