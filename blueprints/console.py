"""The operations console: Spanish pages for front desk and operations staff (shared.console), same services as
the API. Signed-in staff only (App Service Authentication in Azure); operators act, viewers look."""

import azure.functions as func

from shared.console.routing import console_route
from shared.lazy import serial_imports

bp = func.Blueprint()


@console_route(bp, "console", methods=["GET"])
def console_home(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.home(req)


@console_route(bp, "console/citas", methods=["GET"])
def console_citas(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.citas_page(req)


@console_route(bp, "console/citas/{id:int}", methods=["GET"])
def console_cita(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.cita_page(req)


@console_route(bp, "console/citas/{id:int}/reintentar", methods=["POST"])
def console_cita_retry(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.cita_retry(req)


@console_route(bp, "console/entrar", methods=["GET"])
def console_sign_in_page(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.dev_sign_in_page(req)


@console_route(bp, "console/entrar", methods=["POST"])
def console_sign_in(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.dev_sign_in(req)


@console_route(bp, "console/salir", methods=["POST"])
def console_sign_out(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.dev_sign_out(req)


@console_route(bp, "console/static/{name}", methods=["GET"])
def console_static(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.static(req)


@console_route(bp, "console/revision", methods=["GET"])
def console_review(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.review_page(req)


@console_route(bp, "console/revision/{id:int}/resolver", methods=["POST"])
def console_review_resolve(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.review_resolve(req)


@console_route(bp, "console/mensajes", methods=["GET"])
def console_poison(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.poison_page(req)


@console_route(bp, "console/mensajes/reenviar", methods=["POST"])
def console_poison_replay(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.poison_replay(req)


@console_route(bp, "console/conciliacion", methods=["GET"])
def console_reconciliation(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.reconciliation_page(req)


@console_route(bp, "console/conciliacion/ejecutar", methods=["POST"])
def console_reconciliation_run(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.reconciliation_run(req)


@console_route(bp, "console/conciliacion/{id:int}", methods=["GET"])
def console_report(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.report_page(req)


@console_route(bp, "console/conciliacion/{id:int}/corregir", methods=["POST"])
def console_report_heal(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.report_heal(req)


@console_route(bp, "console/salud", methods=["GET"])
def console_health(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.health_page(req)


@console_route(bp, "console/miasalud", methods=["GET"])
def console_leads(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.leads_page(req)


@console_route(bp, "console/miasalud/{id:int}/reintentar", methods=["POST"])
def console_lead_retry(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.console import views

    return views.lead_retry(req)
