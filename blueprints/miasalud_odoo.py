"""MiaSalud → Odoo: the `odoo-push` worker and its sweep, the sync status and retry, the stage map (X-API-KEY)."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports
from shared.setting_defaults import ODOO_RECONCILE_SCHEDULE, ODOO_SWEEP_SCHEDULE, schedule

bp = func.Blueprint()
TAG = "odoo"


@bp.queue_trigger(arg_name="msg", queue_name="odoo-push", connection="AzureWebJobsStorage")
def odoo_push_worker(msg: func.QueueMessage) -> None:
    with serial_imports:
        from shared.services.miasalud import odoo_push
        from shared.triggers import run_queue_message

    run_queue_message("odoo-push", msg, odoo_push.process)


@bp.timer_trigger(arg_name="timer", schedule=schedule("ODOO_SWEEP_SCHEDULE", ODOO_SWEEP_SCHEDULE))
def odoo_sweep(timer: func.TimerRequest) -> None:
    with serial_imports:
        from shared.services.miasalud import odoo_push
        from shared.work import Work

    work = Work.current()
    if work.settings.manychat_keys:  # the integration is off: nothing to push
        odoo_push.sweep(work)


@api_route(
    bp,
    "v1/odoo/sync",
    methods=["GET"],
    summary="The push to Odoo: counts per odoo_sync_status, the rows in error with their reason, paused or not",
    tag=TAG,
    responses={200: "OdooSync"},
    api_key=True,
)
def odoo_sync_status(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.miasalud import odoo_admin
        from shared.work import Work

    return json_response(odoo_admin.sync_status(Work.current()))


@api_route(
    bp,
    "v1/odoo/sync/{kind}/{id:int}/retry",
    methods=["POST"],
    summary="Push one contact or campaign contact to Odoo again now (kind: contacts | campaign-contacts)",
    tag=TAG,
    responses={202: "OdooRetried", 409: "ErrorResponse"},
    api_key=True,
)
def odoo_sync_retry(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.miasalud import odoo_admin
        from shared.work import Work

    kind = req.route_params.get("kind", "")
    return json_response(odoo_admin.retry(Work.current(), kind, route_id(req)), status=202)


@api_route(
    bp,
    "v1/odoo/stages",
    methods=["GET"],
    summary="The ultimo_estado → Odoo crm.stage mapping",
    tag=TAG,
    responses={200: "StageMap"},
    api_key=True,
)
def odoo_stages(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.miasalud import odoo_admin
        from shared.work import Work

    return json_response(odoo_admin.stages(Work.current()))


@api_route(
    bp,
    "v1/odoo/stages",
    methods=["PUT"],
    summary="Replace the ultimo_estado → Odoo stage mapping (an unknown state keeps the lead's stage)",
    tag=TAG,
    body="StageMapIn",
    responses={200: "StageMap", 422: "ErrorResponse"},
    api_key=True,
)
def odoo_stages_replace(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import StageMapIn
        from shared.api.requests import parse_body
        from shared.services.miasalud import odoo_admin
        from shared.work import Work

    body = parse_body(req, StageMapIn)
    mapping = [(item.state, item.stage) for item in body.items]
    return json_response(odoo_admin.replace_stages(Work.current(), mapping))


@bp.timer_trigger(arg_name="timer", schedule=schedule("ODOO_RECONCILE_SCHEDULE", ODOO_RECONCILE_SCHEDULE))
def odoo_reconcile_daily(timer: func.TimerRequest) -> None:
    with serial_imports:
        from shared.services.miasalud import odoo_reconcile
        from shared.work import Work

    work = Work.current()
    if work.settings.manychat_keys and work.settings.odoo_url:
        odoo_reconcile.run(work, trigger="timer", heal=False)


@api_route(
    bp,
    "v1/reconciliation/odoo/run",
    methods=["POST"],
    summary="Reconcile SQL with Odoo now (heal=true pushes again what Odoo lacks or holds differently)",
    tag=TAG,
    query="OdooReconcileQuery",
    responses={200: "OdooReport", 409: "ErrorResponse"},
    api_key=True,
)
def odoo_reconcile_run(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import OdooReconcileQuery
        from shared.api.requests import parse_query
        from shared.services.miasalud import odoo_reconcile
        from shared.work import Work

    query = parse_query(req, OdooReconcileQuery)
    return json_response(odoo_reconcile.run(Work.current(), trigger="api", heal=query.heal))


@api_route(
    bp,
    "v1/reconciliation/odoo/reports",
    methods=["GET"],
    summary="The last SQL ⇄ Odoo reconciliations, newest first",
    tag=TAG,
    responses={200: "OdooReportList"},
    api_key=True,
)
def odoo_reconcile_reports(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.miasalud import odoo_reconcile
        from shared.work import Work

    return json_response(odoo_reconcile.reports(Work.current()))


@api_route(
    bp,
    "v1/reconciliation/odoo/reports/{id:int}",
    methods=["GET"],
    summary="One SQL ⇄ Odoo reconciliation with its differences (SQL value / Odoo value per field)",
    tag=TAG,
    responses={200: "OdooReport"},
    api_key=True,
)
def odoo_reconcile_report(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.miasalud import odoo_reconcile
        from shared.work import Work

    return json_response(odoo_reconcile.report(Work.current(), route_id(req)))


# --- Odoo's partners, managed by staff -------------------------------------------------------------------------

# What a route that calls Odoo answers when Odoo does not serve it (shared.services.miasalud.odoo_errors).
ODOO_FAILURES: dict[int, str | None] = {
    404: "ErrorResponse",
    409: "ErrorResponse",
    502: "ErrorResponse",
    503: "ErrorResponse",
    504: "ErrorResponse",
}


@api_route(
    bp,
    "v1/odoo/contacts",
    methods=["GET"],
    summary="List Odoo's partners, newest first (limit/offset; q in name or phone or exact x_manychat_id)",
    tag=TAG,
    query="OdooPartnersQuery",
    responses={**ODOO_FAILURES, 200: "OdooPartnerList"},
    api_key=True,
)
def odoo_contacts_list(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import OdooPartnersQuery
        from shared.api.requests import parse_query
        from shared.services.miasalud import odoo_partners
        from shared.work import Work

    found = odoo_partners.list_partners(Work.current(), parse_query(req, OdooPartnersQuery))
    return json_response(found.model_dump(mode="json"))


@api_route(
    bp,
    "v1/odoo/contacts",
    methods=["POST"],
    summary="Create a partner in Odoo (409 when another partner holds its x_manychat_id; never retried blindly)",
    tag=TAG,
    body="OdooPartnerIn",
    responses={**ODOO_FAILURES, 201: "OdooPartner", 422: "ErrorResponse"},
    api_key=True,
)
def odoo_contacts_create(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import OdooPartnerIn
        from shared.api.requests import parse_body
        from shared.services.miasalud import odoo_partners
        from shared.work import Work

    created = odoo_partners.create_partner(Work.current(), parse_body(req, OdooPartnerIn))
    return json_response(created.model_dump(mode="json"), status=201)


@api_route(
    bp,
    "v1/odoo/contacts/{id:int}",
    methods=["GET"],
    summary="One Odoo partner, archived or not",
    tag=TAG,
    responses={**ODOO_FAILURES, 200: "OdooPartner"},
    api_key=True,
)
def odoo_contacts_get(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.miasalud import odoo_partners
        from shared.work import Work

    found = odoo_partners.get_partner(Work.current(), route_id(req))
    return json_response(found.model_dump(mode="json"))


@api_route(
    bp,
    "v1/odoo/contacts/{id:int}",
    methods=["PUT"],
    summary="Replace a partner's name, phone, email and x_manychat_id in Odoo (its other fields stay)",
    tag=TAG,
    body="OdooPartnerIn",
    responses={**ODOO_FAILURES, 200: "OdooPartner", 422: "ErrorResponse"},
    api_key=True,
)
def odoo_contacts_update(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import OdooPartnerIn
        from shared.api.requests import parse_body, route_id
        from shared.services.miasalud import odoo_partners
        from shared.work import Work

    partner_id = route_id(req)
    updated = odoo_partners.update_partner(Work.current(), partner_id, parse_body(req, OdooPartnerIn))
    return json_response(updated.model_dump(mode="json"))


@api_route(
    bp,
    "v1/odoo/contacts/{id:int}",
    methods=["DELETE"],
    summary="Archive a partner in Odoo (active false; never unlinked, so its leads keep it)",
    tag=TAG,
    responses={**ODOO_FAILURES, 204: None},
    api_key=True,
)
def odoo_contacts_archive(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.miasalud import odoo_partners
        from shared.work import Work

    odoo_partners.archive_partner(Work.current(), route_id(req))
    return func.HttpResponse(status_code=204)
