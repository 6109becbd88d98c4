"""The console's pages and actions: each reads the request, calls the same service as the JSON API, renders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.api.requests import correlation_id, route_id, validation_error
from shared.console import auth, texts
from shared.console.web import Session, logged_action, operator, page, read_form, redirect, viewer
from shared.http import ApiError
from shared.lazy import serial_imports
from shared.settings import running_in_azure
from shared.work import Work
from sync_core.times import zone

CONSOLE = auth.CONSOLE_PATH
PAGE_SIZE = 50


def _model(model: type[BaseModel], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate({k: v for k, v in values.items() if v not in (None, "")})
    except ValidationError as exc:
        raise validation_error(exc) from None


def _page_number(req: func.HttpRequest) -> int:
    text = req.params.get("pagina") or "1"
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise ApiError(400, "invalid_query", "Número de página inválido.")
    return int(text)


def _render(session: Session, template: str, section: str, **context: Any) -> func.HttpResponse:
    return page(
        template,
        session=session,
        section=section,
        nav=texts.NAV,
        labels=texts,
        sign_out_url=auth.sign_out_url(),
        **context,
    )


def _notice(req: func.HttpRequest) -> str | None:
    return texts.NOTICES.get(req.params.get("aviso") or "")


# --- citas ---

VIEWS = ("hoy", "proximas", "todas")


def citas_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.schemas import CitasQuery, UpcomingQuery
        from shared.services import citas

    work = Work.current()
    session = viewer(req, work)
    view = req.params.get("vista") or "hoy"
    if view not in VIEWS:
        raise ApiError(400, "invalid_query", "Vista desconocida; use hoy, proximas o todas.")
    state = req.params.get("estado") or None
    if state is not None and state not in texts.SYNC_STATES:
        raise ApiError(400, "invalid_query", "Estado de sincronización desconocido.")
    number = _page_number(req)
    today = datetime.now(zone(work.settings.timezone)).date()
    if view == "proximas":
        found = citas.upcoming(work, _model(UpcomingQuery, {"limit": PAGE_SIZE}))
        state = None
    else:
        day = today.isoformat() if view == "hoy" else None
        query = {"desde": day, "hasta": day, "sync_state": state, "page": number, "page_size": PAGE_SIZE}
        found = citas.list_citas(work, _model(CitasQuery, query))
    return _render(
        session,
        "citas.html",
        "citas",
        citas=found,
        view=view,
        state=state,
        today=today,
        pages=max(1, -(-found.count // PAGE_SIZE)) if view != "proximas" else 1,
        number=number if view != "proximas" else 1,
        notice=_notice(req),
    )


def cita_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import citas

    work = Work.current()
    session = viewer(req, work)
    cita_id = route_id(req)
    cita = citas.get(work, cita_id)
    history = citas.history(work, cita_id)
    template = "cita_sync.html" if req.headers.get("hx-request") else "cita.html"
    return _render(session, template, "citas", cita=cita, history=history, notice=_notice(req))


def cita_retry(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import citas

    work = Work.current()
    session, _form = operator(req, work)
    cita_id = route_id(req)
    logged_action(
        session,
        "cita_retry",
        lambda: citas.retry(work, cita_id, correlation_id=correlation_id(req)),
        appointment_id=cita_id,
    )
    return redirect(f"{CONSOLE}/citas/{cita_id}?aviso=reintento")


# --- signing in ---


def home(req: func.HttpRequest) -> func.HttpResponse:
    return redirect(f"{CONSOLE}/citas")


def dev_sign_in_page(req: func.HttpRequest) -> func.HttpResponse:
    work = Work.current()
    _dev_only()
    auth.signed_in(req, work.settings)  # 503 when the development sign-in is off
    token = auth.issue_token(auth.signing_key(work.settings), "")
    return page("entrar.html", session=None, token=token, next=auth.safe_next(req.params.get("next")))


def dev_sign_in(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console.web import check_form

    work = Work.current()
    _dev_only()
    auth.signed_in(req, work.settings)
    form = read_form(req)
    check_form(req, work, "", form)
    name = (form.get("nombre") or "").strip()
    role = form.get("rol")
    if not name or len(name) > 80:
        raise ApiError(422, "name_required", "Escriba su nombre (hasta 80 caracteres).")
    if role not in ("operator", "viewer"):
        raise ApiError(422, "role_required", "Elija un rol: operador o lector.")
    principal = auth.dev_principal(name, role)  # type: ignore[arg-type]
    value = auth.dev_cookie_value(auth.signing_key(work.settings), principal)
    cookie = f"{auth.DEV_COOKIE}={value}; Path={CONSOLE}; HttpOnly; SameSite=Strict; Max-Age=43200"
    session = Session(principal, "")
    logged_action(session, "sign_in", lambda: None)
    return redirect(auth.safe_next(form.get("next")), headers={"Set-Cookie": cookie})


def dev_sign_out(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console.web import check_form

    work = Work.current()
    _dev_only()
    principal = auth.signed_in(req, work.settings)
    if principal is not None:
        check_form(req, work, principal.user_id, read_form(req))
    cookie = f"{auth.DEV_COOKIE}=; Path={CONSOLE}; HttpOnly; SameSite=Strict; Max-Age=0"
    return redirect(f"{CONSOLE}/entrar", headers={"Set-Cookie": cookie})


def _dev_only() -> None:
    if running_in_azure():
        raise ApiError(404, "not_found", "La ruta no existe.")


def static(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console.web import static_file

    return static_file(req.route_params.get("name", ""))


# --- GHL bookings waiting for the front desk ---


def review_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import rv3_api

    work = Work.current()
    session = viewer(req, work)
    try:
        reviews = rv3_api.list_reviews(work).results
        unavailable = None
    except ApiError as exc:
        if exc.status not in (409, 503):
            raise
        reviews, unavailable = [], exc.message  # RV3 not configured or unreachable: said on the page
    return _render(session, "revision.html", "revision", reviews=reviews, unavailable=unavailable, notice=_notice(req))


def review_resolve(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.schemas import Rv3ResolveIn
        from shared.services import rv3_api

    work = Work.current()
    session, form = operator(req, work)
    review_id = route_id(req)
    text = (form.get("rv3_patient_id") or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(422, "patient_id_required", "Escriba el número de paciente de Reflexo V3 (solo dígitos).")
    body = _model(Rv3ResolveIn, {"rv3_patient_id": int(text)})
    logged_action(session, "review_resolve", lambda: rv3_api.resolve_review(work, review_id, body), detail=review_id)
    return redirect(f"{CONSOLE}/revision?aviso=resuelta")


# --- poison messages ---


def _poison_queue(work: Work, name: str) -> Any:
    with serial_imports:
        from shared.poison import PoisonQueue
        from shared.queues import APP_QUEUES

    if name not in APP_QUEUES:
        raise ApiError(422, "unknown_queue", "La cola no existe.")
    return PoisonQueue.from_settings(work.settings, name)


def poison_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.queues import APP_QUEUES

    work = Work.current()
    session = viewer(req, work)
    queues = []
    for name in APP_QUEUES:
        messages = [texts.poison_message(m) for m in _poison_queue(work, name).messages()]
        queues.append({"name": name, "label": texts.QUEUES[name], "messages": messages})
    return _render(session, "mensajes.html", "mensajes", queues=queues, notice=_notice(req))


def poison_replay(req: func.HttpRequest) -> func.HttpResponse:
    work = Work.current()
    session, form = operator(req, work)
    queue = _poison_queue(work, form.get("cola") or "")
    message_id = form.get("id") or None
    if message_id is not None and (len(message_id) > 64 or not message_id.isascii()):
        raise ApiError(422, "invalid_message_id", "Identificador de mensaje inválido.")
    results = logged_action(
        session,
        "poison_replay",
        lambda: queue.replay({message_id} if message_id else None),
        queue=queue.queue.queue_name,
        detail=message_id or "all",
    )
    replayed = all(outcome.startswith("replayed") for outcome in results.values())
    return redirect(f"{CONSOLE}/mensajes?aviso={'reenviados' if replayed else 'reenvio_incompleto'}")


# --- reconciliation ---


def reconciliation_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.schemas import ReportsQuery
        from shared.services.reconcile import reports

    work = Work.current()
    session = viewer(req, work)
    location = req.params.get("sede") or None
    query = _model(ReportsQuery, {"location_id": location, "page": _page_number(req), "page_size": PAGE_SIZE})
    found = reports.list_reports(work, query)
    return _render(
        session,
        "conciliacion.html",
        "conciliacion",
        reports=found,
        locations=reports.location_states(work),
        calendar=reports.drift_calendar(work),
        location=location,
        today=datetime.now(zone(work.settings.timezone)).date(),
        notice=_notice(req),
    )


def report_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.reconcile import reports

    work = Work.current()
    session = viewer(req, work)
    report = reports.get_report(work, route_id(req))
    template = "informe_cuerpo.html" if req.headers.get("hx-request") else "informe.html"
    return _render(session, template, "conciliacion", report=report, notice=_notice(req))


def _start(work: Work, session: Session, values: dict[str, Any]) -> int:
    with serial_imports:
        from shared.api.schemas import ReconciliationRunIn
        from shared.services.reconcile import runs

    request = _model(ReconciliationRunIn, values)
    run = logged_action(
        session,
        "reconciliation_run",
        lambda: runs.start_run(work, request),
        location_id=request.location_id,
        heal=bool(request.heal),
    )
    return int(run.reports[0].id)


def reconciliation_run(req: func.HttpRequest) -> func.HttpResponse:
    work = Work.current()
    session, form = operator(req, work)
    day = form.get("dia") or None
    values = {"location_id": form.get("sede"), "desde": day, "hasta": day, "heal": form.get("corregir") == "si"}
    report_id = _start(work, session, values)
    return redirect(f"{CONSOLE}/conciliacion/{report_id}?aviso=conciliacion")


def report_heal(req: func.HttpRequest) -> func.HttpResponse:
    """Fix what a report found: the same location and window reconciled again, healing through the sync."""
    with serial_imports:
        from shared.services.reconcile import reports

    work = Work.current()
    session, _form = operator(req, work)
    report = reports.get_report(work, route_id(req))
    values = {
        "location_id": report.location_id,
        "desde": report.window.desde.isoformat(),
        "hasta": report.window.hasta.isoformat(),
        "heal": True,
    }
    report_id = _start(work, session, values)
    return redirect(f"{CONSOLE}/conciliacion/{report_id}?aviso=conciliacion")


# --- health and metrics ---


def health_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.health import readiness
        from shared.services import metrics

    work = Work.current()
    session = viewer(req, work)
    report = readiness(ghl=True)
    system = metrics.system_metrics(work)
    charts = hour_bars(system.ghl_timeline, work.settings.timezone)
    return _render(session, "salud.html", "salud", health=report, metrics=system, charts=charts)


CHART_HEIGHT = 60.0


def hour_bars(timeline: list[Any], timezone: str) -> dict[str, Any]:
    """GHL calls hour by hour as the health page draws them (inline SVG, no script): one bar per hour, the
    failed part on top of the correct one, and the hour's p95 latency; each bar says its figures on hover."""
    tz = zone(timezone)
    most_calls = max((hour.total_count for hour in timeline), default=0) or 1
    slowest = max((hour.p95_duration_ms for hour in timeline), default=0.0) or 1.0
    bars = []
    for index, hour in enumerate(timeline):
        ok = hour.total_count - hour.failed_count
        ok_height = CHART_HEIGHT * ok / most_calls
        failed_height = CHART_HEIGHT * hour.failed_count / most_calls
        p95_height = CHART_HEIGHT * hour.p95_duration_ms / slowest
        bars.append(
            {
                "x": index * 10 + 1,
                "ok_y": CHART_HEIGHT - ok_height,
                "ok_height": ok_height,
                "failed_y": CHART_HEIGHT - ok_height - failed_height,
                "failed_height": failed_height,
                "p95_y": CHART_HEIGHT - p95_height,
                "p95_height": p95_height,
                "label": hour.start.astimezone(tz).strftime("%H:%M"),
                "hour": hour,
            }
        )
    return {"bars": bars, "width": len(timeline) * 10, "height": CHART_HEIGHT, "most_calls": most_calls,
            "slowest": slowest}  # fmt: skip


# --- MiaSalud leads ---

ODOO_STATES = ("pending", "success", "error", "skipped")


REJECTED_SHOWN = 20


def leads_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import ContactsQuery, ManychatEventsQuery
        from shared.services.miasalud import admin, odoo_admin, reports

    work = Work.current()
    session = viewer(req, work)
    if not work.settings.manychat_keys:
        return _render(session, "miasalud.html", "miasalud", off=True, leads=None, odoo=None, state=None, q="")
    state = req.params.get("odoo") or None
    if state is not None and state not in ODOO_STATES:
        raise ApiError(400, "invalid_query", "Estado de Odoo desconocido.")
    q = (req.params.get("q") or "").strip()
    query = _model(
        ContactsQuery, {"odoo_sync_status": state, "q": q, "page": _page_number(req), "page_size": PAGE_SIZE}
    )
    leads = admin.list_rows(work, admin.RESOURCES["contacts"], query)
    rejected = reports.list_events(work, ManychatEventsQuery(status="rejected", page=1, page_size=REJECTED_SHOWN))
    return _render(
        session,
        "miasalud.html",
        "miasalud",
        off=False,
        leads=leads,
        odoo=odoo_admin.sync_status(work),
        rejected=rejected,
        state=state,
        q=q,
        notice=_notice(req),
    )


def lead_retry(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.miasalud import odoo_admin

    work = Work.current()
    session, _form = operator(req, work)
    lead_id = route_id(req)
    logged_action(session, "lead_retry", lambda: odoo_admin.retry(work, "contacts", lead_id), detail=lead_id)
    return redirect(f"{CONSOLE}/miasalud?aviso=odoo")
