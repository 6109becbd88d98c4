"""The MiaSalud wing's request and response models, as the OpenAPI document names them.

ManyChat's two bodies are the core's own readers (`sync_core.miasalud.events`), named here for the document. Ids
(`id`, `channel_id`, `campaign_id`, `medical_advisor_id`...) are this API's own; ManyChat's are `manychat_id`,
`manychat_campaign_id` and the advisors' `external_id`. Text limits are the columns'."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from shared.api.schemas import (
    QUERY,
    WHOLE_NUMBER,
    ApiDate,
    ApiDatetime,
    HealthCheck,
    QueryBool,
    ReportBound,
    Text,
)
from sync_core.miasalud.events import (
    MAX_CAMPAIGN_ID,
    MAX_NAME_CHARS,
    MAX_STATE_CHARS,
    MAX_SUMMARY_CHARS,
    ExternalId,
    ManychatCampaignIn,
    ManychatContactIn,
    ManychatId,
    filled,
)

__all__ = [
    "Advisor",
    "AdvisorIn",
    "AdvisorList",
    "AdvisorsQuery",
    "Campaign",
    "CampaignContact",
    "CampaignContactUpdateIn",
    "CampaignIn",
    "CampaignList",
    "CampaignsQuery",
    "Channel",
    "ChannelIn",
    "ChannelList",
    "ChannelsQuery",
    "Contact",
    "ContactIn",
    "ContactList",
    "ContactsQuery",
    "LeadsHealth",
    "LeadsSummary",
    "LeadsSummaryQuery",
    "ManychatAck",
    "ManychatCampaignIn",
    "ManychatContactIn",
    "ManychatEvent",
    "ManychatEventList",
    "ManychatEventsQuery",
    "OdooPartner",
    "OdooPartnerIn",
    "OdooPartnerList",
    "OdooPartnersQuery",
    "OdooReconcileQuery",
    "OdooReport",
    "OdooReportList",
    "OdooRetried",
    "OdooSync",
    "StageMap",
    "StageMapIn",
]

MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID), WHOLE_NUMBER]
MAX_ODOO_ID = 2**31 - 1  # Odoo's ids are PostgreSQL integers
# skipped: the push to Odoo set the row aside (odoo_sync_error says why).
OdooSyncStatus = Literal["pending", "success", "error", "skipped"]
EventStatus = Literal["applied", "unchanged", "rejected", "held", "queued"]
EventKind = Literal["contact", "campaign"]
STAFF = ConfigDict(extra="forbid", strict=True)
_LOCAL_TIME = "ISO-8601; without an offset it is read in MANYCHAT_TIMEZONE"


class ManychatAck(BaseModel):
    """What ManyChat's response mapping can read: `$.status`, `$.event_id`, `$.manychat_id`."""

    status: Literal["accepted", "held"] = Field(
        description="accepted: queued; held: storage was down, SQL keeps it and it is applied when storage is back"
    )
    event_id: str = Field(description="The event's key: the same body always has the same")
    manychat_id: str


# --- what staff send ---------------------------------------------------------------------------------------------


class ContactIn(BaseModel):
    """A lead (the seed's body). PUT replaces these fields; the others (states, subscription) stay ManyChat's. A
    phone that is not a valid number is kept as typed with `phone_valid` false, never refused."""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={
            "examples": [
                {
                    "manychat_id": "MC12345",
                    "first_name": "Juan",
                    "last_name": "Pérez",
                    "phone": "+521234567890",
                    "channel_id": 1,
                }
            ]
        },
    )

    manychat_id: ManychatId
    first_name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    last_name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    phone: str | None = Field(None, max_length=40, description="E.164, or national (DEFAULT_PHONE_REGION)")
    channel_id: RowId | None = None


class CampaignIn(BaseModel):
    """A campaign (the seed's body, plus ManyChat's number for it)."""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={
            "examples": [
                {
                    "name": "Campaña Invierno 2025",
                    "date_start": "2025-06-12T14:49:28.163Z",
                    "date_end": "2025-12-31T23:59:59.000Z",
                    "budget": 50000,
                    "status": "Activa",
                    "channel_id": 1,
                }
            ]
        },
    )

    name: Text = Field(min_length=1, max_length=MAX_NAME_CHARS)
    date_start: ApiDatetime | None = Field(None, description=_LOCAL_TIME)
    date_end: ApiDatetime | None = Field(None, description=f"{_LOCAL_TIME}; not before date_start")
    budget: float | None = Field(None, ge=0, le=999_999_999_999.99, description="Rounded to cents")
    status: str | None = Field(None, max_length=32, examples=["Activa"])
    channel_id: RowId | None = None
    manychat_campaign_id: Annotated[int, Field(ge=1, le=MAX_CAMPAIGN_ID), WHOLE_NUMBER] | None = Field(
        None, description="The campaign_id ManyChat's assignments carry"
    )


class ChannelIn(BaseModel):
    """A channel leads come in by. Names are unique whatever their case, accents or spacing."""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={"examples": [{"name": "Facebook Messenger", "description": "Canal oficial de Facebook"}]},
    )

    name: Text = Field(min_length=1, max_length=MAX_NAME_CHARS)
    description: str | None = Field(None, max_length=2000)


class AdvisorIn(BaseModel):
    """A commercial or medical advisor (the seed's body, plus the id ManyChat's events name them by)."""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={
            "examples": [{"name": "Dra. Laura", "email": "laura@ejemplo.com", "phone": "+521234567891"}]
        },
    )

    name: Text = Field(min_length=1, max_length=MAX_NAME_CHARS)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    external_id: ExternalId = Field(None, description="comercial_id / medico_id in ManyChat's events")
    odoo_user_id: int | None = Field(
        None,
        ge=1,
        le=MAX_ODOO_ID,
        description="The Odoo user (res.users id) the leads of this advisor get as salesperson; null: nobody",
    )


def _row_reference(value: Any, info: ValidationInfo) -> Any:
    """One of our ids as a ManyChat flow sends it: a number, or its digits as text."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("int_type", "Debe ser un número entero.")
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not 1 <= int(text) <= MAX_ROW_ID:
        raise PydanticCustomError("invalid_id", f"El {info.field_name} debe ser un id (número entero positivo).")
    return int(text)


RowReference = Annotated[
    RowId | None,
    BeforeValidator(_row_reference),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID},
                {"type": "string", "maxLength": 20},
                {"type": "null"},
            ]
        }
    ),
]


class CampaignContactUpdateIn(BaseModel):
    """PUT /api/v1/manychat/campaign-contacts/update-by-manychat-id (the seed's body), also called by ManyChat
    flows: a field left unfilled (`""`, `"{{...}}"`) changes nothing, `null` clears it. Without `campaign_id` it
    updates the contact's only campaign contact. (A field it does not know is refused, not ignored: a misspelt
    `campaign_id` would otherwise update another campaign's.)"""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={
            "examples": [
                {
                    "manychat_id": "MC99999",
                    "campaign_id": 85,
                    "medical_advisor_id": 101,
                    "medical_assignment_date": "2025-06-10T11:00:00Z",
                    "last_state": "Asignado a médico",
                    "summary": "Conversación finalizada, cliente agendó consulta.",
                }
            ]
        },
    )

    manychat_id: ManychatId
    campaign_id: RowReference = Field(None, description="This API's campaign id")
    medical_advisor_id: RowReference = Field(None, description="This API's advisor id")
    medical_assignment_date: str | None = Field(
        None,
        max_length=64,
        description="ISO-8601 or ManyChat's display form (20 Oct 2025, 05:41pm), read in MANYCHAT_TIMEZONE",
    )
    last_state: str | None = Field(None, max_length=MAX_STATE_CHARS)
    summary: str | None = Field(None, max_length=MAX_SUMMARY_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _unfilled_are_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            name: value
            for name, value in data.items()
            if name == "manychat_id" or not (isinstance(value, str) and filled(value) is None)
        }


# --- what the API answers ----------------------------------------------------------------------------------------


class Contact(BaseModel):
    id: int
    manychat_id: str
    first_name: str | None
    last_name: str | None
    phone: str | None = Field(description="E.164 when valid; as typed otherwise")
    phone_valid: bool | None
    email: str | None
    channel_id: int | None
    subscribed_at: datetime | None
    last_state: str | None
    initial_state: str | None
    event_at: datetime | None = Field(description="When the newest event or staff edit that set a field happened")
    odoo_partner_id: int | None
    odoo_sync_status: OdooSyncStatus = Field(description="pending (any change) → success | error | skipped")
    odoo_sync_error: str | None
    odoo_sync_attempts: int
    odoo_synced_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class Campaign(BaseModel):
    id: int
    name: str | None = Field(description="None for a campaign created from an event, until staff complete it")
    manychat_campaign_id: int | None
    date_start: datetime | None
    date_end: datetime | None
    budget: float | None
    status: str | None
    channel_id: int | None
    from_event: bool = Field(description="Created from a ManyChat event that named it; staff may complete it")
    created_at: datetime
    updated_at: datetime


class Channel(BaseModel):
    id: int
    name: str
    description: str | None
    from_event: bool
    created_at: datetime
    updated_at: datetime


class Advisor(BaseModel):
    id: int
    external_id: str | None
    name: str | None
    email: str | None
    phone: str | None
    odoo_user_id: int | None
    from_event: bool
    created_at: datetime
    updated_at: datetime


class CampaignContact(BaseModel):
    id: int
    contact_id: int
    manychat_id: str
    campaign_id: int
    commercial_advisor_id: int | None
    medical_advisor_id: int | None
    assignment_type: str | None
    last_state: str | None
    summary: str | None
    medical_assignment_date: datetime | None
    event_at: datetime | None
    odoo_lead_id: int | None
    odoo_sync_status: OdooSyncStatus
    odoo_sync_error: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class ManychatEvent(BaseModel):
    """An event ManyChat sent, as kept in SQL: what it changed, or why it was refused."""

    id: int
    event_key: str
    kind: EventKind
    manychat_id: str | None
    status: EventStatus
    occurred_at: datetime | None = Field(description="Its datetime_actual")
    received_at: datetime
    processed_at: datetime | None
    detail: Any = Field(description="applied: the fields it changed; rejected: the reasons ({field, code, message})")
    body: str | None = Field(description="Rejected ones: the body as received, for review")


class _Page(BaseModel):
    count: int = Field(description="Rows matching the filters, over every page")
    page: int
    page_size: int


class ContactList(_Page):
    results: list[Contact]


class CampaignList(_Page):
    results: list[Campaign]


class ChannelList(_Page):
    results: list[Channel]


class AdvisorList(_Page):
    results: list[Advisor]


class ManychatEventList(_Page):
    results: list[ManychatEvent]


# --- queries -----------------------------------------------------------------------------------------------------

_BOUND = "A date (a whole day in MANYCHAT_TIMEZONE, included) or a date-time"


class _PageQuery(BaseModel):
    model_config = QUERY

    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(20, ge=1, le=100)


class ContactsQuery(_PageQuery):
    channel_id: int | None = Field(None, ge=1, le=MAX_ROW_ID)
    odoo_sync_status: OdooSyncStatus | None = None
    q: str | None = Field(None, max_length=MAX_NAME_CHARS, description="In the name, manychat_id or phone")
    created_from: ReportBound | None = Field(None, description=_BOUND)
    created_to: ReportBound | None = Field(None, description=_BOUND)


class CampaignsQuery(_PageQuery):
    status: str | None = Field(None, max_length=32, description="Exactly this status")
    channel_id: int | None = Field(None, ge=1, le=MAX_ROW_ID)


class ChannelsQuery(_PageQuery):
    q: str | None = Field(None, max_length=MAX_NAME_CHARS, description="In the name")


class AdvisorsQuery(_PageQuery):
    q: str | None = Field(None, max_length=MAX_NAME_CHARS, description="In the name, email, phone or external_id")


class ManychatEventsQuery(_PageQuery):
    status: EventStatus | None = None
    kind: EventKind | None = None
    manychat_id: str | None = Field(None, max_length=64)
    received_from: ReportBound | None = Field(None, description=_BOUND)
    received_to: ReportBound | None = Field(None, description=_BOUND)


class LeadsSummaryQuery(BaseModel):
    model_config = QUERY

    desde: ApiDate | None = Field(None, description="First day (MANYCHAT_TIMEZONE); default: 29 days before hasta")
    hasta: ApiDate | None = Field(None, description="Last day, included; default: today")


# --- reports -----------------------------------------------------------------------------------------------------


class SummaryWindow(BaseModel):
    desde: date
    hasta: date
    timezone: str


class DayLeads(BaseModel):
    date: date
    leads: int


class ChannelLeads(BaseModel):
    channel_id: int | None = Field(description="None: leads without a channel")
    name: str | None
    leads: int


class CampaignLeads(BaseModel):
    campaign_id: int
    name: str | None
    manychat_campaign_id: int | None
    leads: int = Field(description="Campaign contacts created in the window")


class StageLeads(BaseModel):
    stage: str | None = Field(description="The contact's last_state; None: none yet")
    leads: int


class HourEvents(BaseModel):
    hour: datetime = Field(description="Start of the hour, with MANYCHAT_TIMEZONE's offset")
    events: int


class LeadsSummary(BaseModel):
    """Leads (contacts created) in the window, by day, channel, campaign and stage; ManyChat's events by status
    over the window and by hour over its last 24 hours (up to now)."""

    window: SummaryWindow
    leads: int
    leads_per_day: list[DayLeads]
    leads_per_channel: list[ChannelLeads]
    leads_per_campaign: list[CampaignLeads]
    leads_per_stage: list[StageLeads]
    events: int
    events_per_status: dict[str, int] = Field(
        description="Every status, 0 included: " + ", ".join(get_args(EventStatus))
    )
    events_per_hour: list[HourEvents]


class QueueLevel(BaseModel):
    depth: int | None = Field(description="Messages waiting; None when the queue could not be read")
    poison: int | None = Field(description="Messages in its -poison queue (failed every retry)")


class OdooState(BaseModel):
    status: Literal["not_configured", "ok", "unreachable", "paused"] = Field(
        description="paused: Odoo refused the credentials and pushes wait; unreachable: the check call failed"
    )
    detail: str
    configured: bool = Field(description="ODOO_URL is set")
    reachable: bool | None = Field(None, description="An authenticated call answered in time; None: not tried")
    paused: bool = Field(False, description="Pushes paused since Odoo refused the credentials")
    paused_reason: str | None = None
    pending: int | None = Field(None, description="Contacts and campaign contacts waiting for Odoo")
    errors: int | None = Field(None, description="Contacts and campaign contacts Odoo did not take")
    last_reconciliation: OdooReportSummary | None = Field(None, description="The newest SQL ⇄ Odoo reconciliation")


class LeadsHealth(BaseModel):
    """200 when SQL and the queues answer (degraded: Odoo is configured but unreachable or paused), 503 otherwise;
    the same shape either way."""

    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, HealthCheck]
    queues: dict[str, QueueLevel]
    held_events: int | None = Field(description="Events storage could not queue, kept in SQL for the sweep")
    odoo: OdooState


# --- the push to Odoo ---------------------------------------------------------------------------------------------


class OdooSyncError(BaseModel):
    id: int
    reason: str | None = Field(description="Why Odoo did not take it, in Spanish for staff")
    attempts: int
    updated_at: datetime


class OdooSyncKind(BaseModel):
    pushed: bool = Field(description="Whether ODOO_SYNC sends this kind of record")
    counts: dict[str, int] = Field(description="Rows per odoo_sync_status (pending, success, error, skipped)")
    errors: list[OdooSyncError] = Field(description="The rows in error, newest first (at most 100)")


class OdooSync(BaseModel):
    configured: bool = Field(description="ODOO_URL is set (else every row stays pending, nothing is lost)")
    mode: Literal["leads", "contacts", "both"]
    paused: bool = Field(description="Odoo refused the credentials: pushes wait until the key works again")
    paused_reason: str | None
    last_success_at: datetime | None
    contacts: OdooSyncKind
    campaign_contacts: OdooSyncKind


class OdooRetried(BaseModel):
    kind: Literal["contacts", "campaign-contacts"]
    id: int
    odoo_sync_status: Literal["pending"]


class StageMapItem(BaseModel):
    model_config = STAFF

    state: Text = Field(min_length=1, max_length=MAX_STATE_CHARS, description="ManyChat's ultimo_estado")
    stage: Text = Field(min_length=1, max_length=100, description="The name of an Odoo crm.stage")


class StageMapIn(BaseModel):
    """The whole mapping; a lead whose state is not in it keeps its stage in Odoo."""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={"examples": [{"items": [{"state": "Nuevo Lead", "stage": "Nuevo"}]}]},
    )

    items: list[StageMapItem] = Field(max_length=200)


class StageMap(BaseModel):
    items: list[StageMapItem]


class OdooReconcileQuery(BaseModel):
    model_config = QUERY

    heal: bool = Field(False, description="Push again every record Odoo lacks or holds differently")


class FieldDifference(BaseModel):
    sql: Any
    odoo: Any


class OdooDifference(BaseModel):
    model: Literal["res.partner", "crm.lead"]
    key: str = Field(description="x_manychat_id (a lead: x_manychat_id/x_campaign_id)")
    problem: Literal["missing_in_odoo", "diverged", "duplicated_in_odoo", "unknown_in_odoo"]
    sql_id: int | None
    odoo_ids: list[int]
    fields: dict[str, FieldDifference] = Field(description="Per field that differs: SQL's value and Odoo's")


class OdooReportSummary(BaseModel):
    id: int
    trigger: Literal["timer", "api"]
    status: Literal["running", "completed", "failed"]
    heal: bool
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, dict[str, int]] = Field(description="Per model: checked, in_flight and each problem found")
    healed: int
    error: str | None


class OdooReport(OdooReportSummary):
    differences: list[OdooDifference] = Field(description="The first 500")


class OdooReportList(BaseModel):
    items: list[OdooReportSummary]


# --- Odoo's partners, managed by staff ----------------------------------------------------------------------------

MAX_PARTNER_OFFSET = 10_000


class OdooPartnerIn(BaseModel):
    """A `res.partner` as staff write it. PUT replaces these four fields (an omitted one is emptied in Odoo); the
    partner's other fields stay as Odoo holds them. The phone is stored as E.164 (DEFAULT_PHONE_REGION when it has
    no country code); a phone or email that is not valid is refused (422), never written as if valid."""

    model_config = ConfigDict(
        **STAFF,
        json_schema_extra={
            "examples": [
                {"name": "Ana García", "phone": "+525512345678", "email": "ana@ejemplo.com", "x_manychat_id": "MC1"}
            ]
        },
    )

    name: Text = Field(min_length=1, max_length=MAX_NAME_CHARS)
    phone: str | None = Field(None, max_length=40, description="E.164, or national (DEFAULT_PHONE_REGION)")
    email: str | None = Field(None, max_length=254)
    x_manychat_id: str | None = Field(
        None, min_length=1, max_length=64, description="ManyChat's subscriber id; one partner per id (409 otherwise)"
    )


class OdooPartner(BaseModel):
    id: int
    name: str | None
    phone: str | None
    email: str | None
    x_manychat_id: str | None
    active: bool = Field(description="False: archived (DELETE archives, it never deletes)")


class OdooPartnerList(BaseModel):
    count: int = Field(description="Partners matching the filters, over every page")
    limit: int
    offset: int
    results: list[OdooPartner]


class OdooPartnersQuery(BaseModel):
    model_config = QUERY

    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=MAX_PARTNER_OFFSET)
    q: str | None = Field(
        None, min_length=1, max_length=MAX_NAME_CHARS, description="In the name or phone, or exactly the x_manychat_id"
    )
    x_manychat_id: str | None = Field(None, min_length=1, max_length=64, description="Exactly this x_manychat_id")
    include_archived: QueryBool = Field(False, description="Also list archived partners")
