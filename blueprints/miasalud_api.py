"""MiaSalud's staff API (X-API-KEY): contacts, campaigns, channels and advisors, the campaign contact update by
manychat_id, ManyChat's events for review, the leads summary and the wing's health."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports

bp = func.Blueprint()
TAG = "miasalud"
REPORTS_TAG = "miasalud-reports"
RANGE = {422: "ErrorResponse"}  # a date range refused: empty, or longer than the summary takes
WRITTEN = {409: "ErrorResponse", 422: "ErrorResponse"}
DELETED = {204: None, 409: "ErrorResponse"}


# --- contacts ---------------------------------------------------------------------------------------------------


@api_route(
    bp,
    "v1/contacts",
    methods=["GET"],
    summary="List leads, newest first (filters: channel_id, odoo_sync_status, q, created_from, created_to)",
    tag=TAG,
    query="ContactsQuery",
    responses={**RANGE, 200: "ContactList"},
    api_key=True,
)
def contacts_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list(req, "contacts")


@api_route(
    bp,
    "v1/contacts",
    methods=["POST"],
    summary="Create a lead (seed body); its fields outrank ManyChat's older events",
    tag=TAG,
    body="ContactIn",
    responses={**WRITTEN, 201: "Contact"},
    api_key=True,
)
def contacts_create(req: func.HttpRequest) -> func.HttpResponse:
    return _create(req, "contacts")


@api_route(
    bp, "v1/contacts/{id:int}", methods=["GET"], summary="One lead", tag=TAG, responses={200: "Contact"}, api_key=True
)
def contacts_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get(req, "contacts")


@api_route(
    bp,
    "v1/contacts/{id:int}",
    methods=["PUT"],
    summary="Replace a lead's fields; an older ManyChat event does not undo the edit, a newer one may",
    tag=TAG,
    body="ContactIn",
    responses={**WRITTEN, 200: "Contact"},
    api_key=True,
)
def contacts_update(req: func.HttpRequest) -> func.HttpResponse:
    return _replace(req, "contacts")


@api_route(
    bp,
    "v1/contacts/{id:int}",
    methods=["DELETE"],
    summary="Delete a lead that is in no campaign (409 in_use otherwise)",
    tag=TAG,
    responses=DELETED,
    api_key=True,
)
def contacts_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete(req, "contacts")


# --- campaigns --------------------------------------------------------------------------------------------------


@api_route(
    bp,
    "v1/campaigns",
    methods=["GET"],
    summary="List campaigns, newest first (filters: status, channel_id)",
    tag=TAG,
    query="CampaignsQuery",
    responses={200: "CampaignList"},
    api_key=True,
)
def campaigns_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list(req, "campaigns")


@api_route(
    bp,
    "v1/campaigns",
    methods=["POST"],
    summary="Create a campaign (seed body, plus ManyChat's manychat_campaign_id)",
    tag=TAG,
    body="CampaignIn",
    responses={**WRITTEN, 201: "Campaign"},
    api_key=True,
)
def campaigns_create(req: func.HttpRequest) -> func.HttpResponse:
    return _create(req, "campaigns")


@api_route(
    bp,
    "v1/campaigns/{id:int}",
    methods=["GET"],
    summary="One campaign",
    tag=TAG,
    responses={200: "Campaign"},
    api_key=True,
)
def campaigns_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get(req, "campaigns")


@api_route(
    bp,
    "v1/campaigns/{id:int}",
    methods=["PUT"],
    summary="Replace a campaign (one created from an event is then complete)",
    tag=TAG,
    body="CampaignIn",
    responses={**WRITTEN, 200: "Campaign"},
    api_key=True,
)
def campaigns_update(req: func.HttpRequest) -> func.HttpResponse:
    return _replace(req, "campaigns")


@api_route(
    bp,
    "v1/campaigns/{id:int}",
    methods=["DELETE"],
    summary="Delete a campaign no lead is assigned to (409 in_use otherwise)",
    tag=TAG,
    responses=DELETED,
    api_key=True,
)
def campaigns_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete(req, "campaigns")


# --- channels ---------------------------------------------------------------------------------------------------


@api_route(
    bp,
    "v1/channels",
    methods=["GET"],
    summary="List channels by name (filter: q)",
    tag=TAG,
    query="ChannelsQuery",
    responses={200: "ChannelList"},
    api_key=True,
)
def channels_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list(req, "channels")


@api_route(
    bp,
    "v1/channels",
    methods=["POST"],
    summary="Create a channel (seed body); names are unique whatever their case, accents or spacing",
    tag=TAG,
    body="ChannelIn",
    responses={**WRITTEN, 201: "Channel"},
    api_key=True,
)
def channels_create(req: func.HttpRequest) -> func.HttpResponse:
    return _create(req, "channels")


@api_route(
    bp,
    "v1/channels/{id:int}",
    methods=["GET"],
    summary="One channel",
    tag=TAG,
    responses={200: "Channel"},
    api_key=True,
)
def channels_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get(req, "channels")


@api_route(
    bp,
    "v1/channels/{id:int}",
    methods=["PUT"],
    summary="Replace a channel",
    tag=TAG,
    body="ChannelIn",
    responses={**WRITTEN, 200: "Channel"},
    api_key=True,
)
def channels_update(req: func.HttpRequest) -> func.HttpResponse:
    return _replace(req, "channels")


@api_route(
    bp,
    "v1/channels/{id:int}",
    methods=["DELETE"],
    summary="Delete a channel no lead or campaign uses (409 in_use otherwise)",
    tag=TAG,
    responses=DELETED,
    api_key=True,
)
def channels_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete(req, "channels")


# --- advisors ---------------------------------------------------------------------------------------------------


@api_route(
    bp,
    "v1/advisors",
    methods=["GET"],
    summary="List advisors by name (filter: q)",
    tag=TAG,
    query="AdvisorsQuery",
    responses={200: "AdvisorList"},
    api_key=True,
)
def advisors_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list(req, "advisors")


@api_route(
    bp,
    "v1/advisors",
    methods=["POST"],
    summary="Create an advisor (seed body, plus the external_id ManyChat's events name them by)",
    tag=TAG,
    body="AdvisorIn",
    responses={**WRITTEN, 201: "Advisor"},
    api_key=True,
)
def advisors_create(req: func.HttpRequest) -> func.HttpResponse:
    return _create(req, "advisors")


@api_route(
    bp,
    "v1/advisors/{id:int}",
    methods=["GET"],
    summary="One advisor",
    tag=TAG,
    responses={200: "Advisor"},
    api_key=True,
)
def advisors_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get(req, "advisors")


@api_route(
    bp,
    "v1/advisors/{id:int}",
    methods=["PUT"],
    summary="Replace an advisor (one created from an event is then complete)",
    tag=TAG,
    body="AdvisorIn",
    responses={**WRITTEN, 200: "Advisor"},
    api_key=True,
)
def advisors_update(req: func.HttpRequest) -> func.HttpResponse:
    return _replace(req, "advisors")


@api_route(
    bp,
    "v1/advisors/{id:int}",
    methods=["DELETE"],
    summary="Delete an advisor no campaign contact names (409 in_use otherwise)",
    tag=TAG,
    responses=DELETED,
    api_key=True,
)
def advisors_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete(req, "advisors")


# --- ManyChat: the campaign contact update, the events kept ----------------------------------------------------


@api_route(
    bp,
    "v1/manychat/campaign-contacts/update-by-manychat-id",
    methods=["PUT"],
    summary="Update a lead's campaign contact by manychat_id (seed body; without campaign_id, its only one)",
    tag="manychat",
    body="CampaignContactUpdateIn",
    responses={**WRITTEN, 200: "CampaignContact"},
    api_key=True,
)
def manychat_campaign_contact_update(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import CampaignContactUpdateIn
        from shared.api.requests import parse_body
        from shared.services.miasalud import admin
        from shared.work import Work

    updated = admin.update_campaign_contact(Work.current(), parse_body(req, CampaignContactUpdateIn))
    return json_response(updated.model_dump(mode="json"))


@api_route(
    bp,
    "v1/manychat/events",
    methods=["GET"],
    summary="ManyChat's events as kept, newest first; refused ones with their body and reasons, for review",
    tag="manychat",
    query="ManychatEventsQuery",
    responses={**RANGE, 200: "ManychatEventList"},
    api_key=True,
)
def manychat_events(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import ManychatEventsQuery
        from shared.api.requests import parse_query
        from shared.services.miasalud import reports
        from shared.work import Work

    found = reports.list_events(Work.current(), parse_query(req, ManychatEventsQuery))
    return json_response(found.model_dump(mode="json"))


# --- reports ----------------------------------------------------------------------------------------------------


@api_route(
    bp,
    "v1/reports/summary",
    methods=["GET"],
    summary="Leads per day, channel, campaign and stage; events per status and per hour (default: the last 30 days)",
    tag=REPORTS_TAG,
    query="LeadsSummaryQuery",
    responses={**RANGE, 200: "LeadsSummary"},
    api_key=True,
)
def reports_summary(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.miasalud_schemas import LeadsSummaryQuery
        from shared.api.requests import parse_query
        from shared.services.miasalud import reports
        from shared.work import Work

    found = reports.summary(Work.current(), parse_query(req, LeadsSummaryQuery))
    return json_response(found.model_dump(mode="json"))


@api_route(
    bp,
    "v1/reports/health",
    methods=["GET"],
    summary="Readiness of SQL and the ManyChat queues (their depths), events held in SQL, Odoo's state (degraded"
    " when configured and unreachable or paused)",
    tag=REPORTS_TAG,
    responses={200: "LeadsHealth", 503: "LeadsHealth"},
    api_key=True,
)
def reports_health(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.miasalud import reports
        from shared.work import Work

    found = reports.health(Work.current())
    # Degraded (Odoo unreachable or paused) is still 200: events are taken and kept until Odoo is back.
    return json_response(found.model_dump(mode="json"), status=503 if found.status == "unavailable" else 200)


# --- the four tables' CRUD, one way ----------------------------------------------------------------------------


def _list(req: func.HttpRequest, name: str) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_query
        from shared.services.miasalud import admin
        from shared.work import Work

    resource = admin.RESOURCES[name]
    found = admin.list_rows(Work.current(), resource, parse_query(req, resource.query))
    return json_response(found.model_dump(mode="json"))


def _create(req: func.HttpRequest, name: str) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body
        from shared.services.miasalud import admin
        from shared.work import Work

    resource = admin.RESOURCES[name]
    created = admin.create(Work.current(), resource, parse_body(req, resource.body))
    return json_response(created.model_dump(mode="json"), status=201)


def _get(req: func.HttpRequest, name: str) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.miasalud import admin
        from shared.work import Work

    found = admin.get(Work.current(), admin.RESOURCES[name], route_id(req))
    return json_response(found.model_dump(mode="json"))


def _replace(req: func.HttpRequest, name: str) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_body, route_id
        from shared.services.miasalud import admin
        from shared.work import Work

    resource = admin.RESOURCES[name]
    row_id = route_id(req)
    replaced = admin.replace(Work.current(), resource, row_id, parse_body(req, resource.body))
    return json_response(replaced.model_dump(mode="json"))


def _delete(req: func.HttpRequest, name: str) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.miasalud import admin
        from shared.work import Work

    admin.delete(Work.current(), admin.RESOURCES[name], route_id(req))
    return func.HttpResponse(status_code=204)
