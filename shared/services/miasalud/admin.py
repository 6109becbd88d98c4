"""Staff's MiaSalud records: contacts, campaigns, channels and advisors (list, create, read, replace, delete), and
the campaign contact update ManyChat flows call by manychat_id.

An edit of a contact or a campaign contact is merged like a ManyChat event, stamped with the clock at the edit
(`Stamp(now, "staff:…")`): an older event arriving afterwards does not undo it, a newer one may overwrite it, and
any change sends the row back to `odoo_sync_status` pending. Only the fields the edit changes take its stamp
(`sync_core.miasalud.merge.edited`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from shared.api.miasalud_schemas import (
    Advisor,
    AdvisorIn,
    AdvisorList,
    AdvisorsQuery,
    Campaign,
    CampaignContact,
    CampaignContactUpdateIn,
    CampaignIn,
    CampaignList,
    CampaignsQuery,
    Channel,
    ChannelIn,
    ChannelList,
    ChannelsQuery,
    Contact,
    ContactIn,
    ContactList,
    ContactsQuery,
)
from shared.http import ApiError
from shared.services.miasalud import odoo_push
from shared.services.miasalud.reports import window
from shared.store import miasalud as store
from shared.store import miasalud_queries as queries
from shared.store.miasalud_schema import (
    miasalud_advisors,
    miasalud_campaign_contacts,
    miasalud_campaigns,
    miasalud_channels,
    miasalud_contacts,
)
from shared.work import Work
from sync_core.errors import DomainError
from sync_core.miasalud.events import Stamp, filled, read_manychat_time
from sync_core.miasalud.merge import edited
from sync_core.miasalud.odoo import RecordKind, leads_follow
from sync_core.phones import Phone, read_phone
from sync_core.text import collapse_spaces, fold
from sync_core.times import OutOfRange, local_bound

CONCURRENT_CHANGE = ApiError(
    409, "concurrent_change", "El registro cambió mientras se guardaba este cambio; vuelva a intentarlo."
)


@dataclass(frozen=True)
class Unique:
    """A column no two rows share, and how staff typed it."""

    column: str
    field: str
    label: str  # Spanish: "ese manychat_id"


@dataclass(frozen=True)
class Reference:
    """A body field holding the id of a row that must exist."""

    table: sa.Table
    the: str  # Spanish, capitalised: "El canal"


@dataclass(frozen=True)
class Resource:
    """One of the four tables staff manage, and what differs between them."""

    kind: str
    the: str  # "El contacto"
    one: str  # "un contacto"
    table: sa.Table
    body: type[BaseModel]
    query: type[BaseModel]
    out: type[BaseModel]
    page: type[BaseModel]
    values: Callable[[Work, Any], dict[str, Any]]
    where: Callable[[Work, Any], queries.Where]
    unique: Unique | None = None
    references: Mapping[str, Reference] = field(default_factory=dict)
    stamped: bool = False  # its fields are ordered with ManyChat's events


# The tables that may point at a row, as the in_use refusal names them (singular, plural).
_REFERRERS = {
    miasalud_contacts.name: ("contacto", "contactos"),
    miasalud_campaigns.name: ("campaña", "campañas"),
    miasalud_campaign_contacts.name: ("asignación a campaña", "asignaciones a campaña"),
}
_CHANNEL = Reference(miasalud_channels, "El canal")


def list_rows(work: Work, resource: Resource, query: Any) -> BaseModel:
    where = resource.where(work, query)
    with work.transaction() as conn:
        rows, total = queries.page(
            conn, resource.table, where, offset=(query.page - 1) * query.page_size, limit=query.page_size
        )
    return resource.page(
        count=total, page=query.page, page_size=query.page_size, results=[_out(resource, row) for row in rows]
    )


def get(work: Work, resource: Resource, row_id: int) -> BaseModel:
    with work.transaction() as conn:
        row = queries.row(conn, resource.table, row_id)
    if row is None:
        raise _not_found(resource)
    return _out(resource, row)


def create(work: Work, resource: Resource, body: BaseModel) -> BaseModel:
    values = resource.values(work, body)
    try:
        with work.transaction() as conn:
            _check(conn, resource, values, None)
            row_id, pushes = _write(conn, resource, None, values, work.now())
            created = _read(conn, resource, row_id)
    except sa.exc.IntegrityError:
        raise _refusal(work, resource, values, None) from None
    except store.Contention:
        raise CONCURRENT_CHANGE from None
    odoo_push.enqueue_all(work, pushes)
    return created


def replace(work: Work, resource: Resource, row_id: int, body: BaseModel) -> BaseModel:
    values = resource.values(work, body)
    try:
        with work.transaction() as conn:
            current = queries.row(conn, resource.table, row_id, lock=True)
            if current is None:
                raise _not_found(resource)
            _check(conn, resource, values, row_id)
            _, pushes = _write(conn, resource, current, values, work.now())
            replaced = _read(conn, resource, row_id)
    except sa.exc.IntegrityError:
        raise _refusal(work, resource, values, row_id) from None
    except store.Contention:
        raise CONCURRENT_CHANGE from None
    odoo_push.enqueue_all(work, pushes)
    return replaced


def delete(work: Work, resource: Resource, row_id: int) -> None:
    """Delete a row nothing points at; 409 `in_use` naming what does."""
    try:
        with work.transaction() as conn:
            if queries.row(conn, resource.table, row_id, lock=True) is None:
                raise _not_found(resource)
            used = queries.referrers(conn, resource.table, row_id)
            if used:
                raise _in_use(resource, row_id, used)
            queries.delete(conn, resource.table, row_id)
    except sa.exc.IntegrityError:  # a row pointing at it was created meanwhile
        with work.transaction() as conn:
            used = queries.referrers(conn, resource.table, row_id)
        raise _in_use(resource, row_id, used) if used else CONCURRENT_CHANGE from None


Push = tuple[RecordKind, int]


def _write(
    conn: Any, resource: Resource, current: Any, values: dict[str, Any], now: datetime
) -> tuple[int, list[Push]]:
    """Create (`current` None) or replace the row; returns its id and the Odoo pushes the change calls for."""
    table = resource.table
    if resource.stamped:
        fields = edited(current._mapping if current is not None else {}, values)
        if current is None:
            row_id = queries.create_contact(conn, fields=fields, stamp=_staff_stamp(now), now=now)
            return row_id, [("contact", row_id)]
        if not fields:
            return int(current.id), []
        changed = queries.merge_into(conn, table, current.id, fields=fields, stamp=_staff_stamp(now), now=now)
        own: list[Push] = [("contact", int(current.id))] if changed else []
        return int(current.id), own + _leads_follow(conn, resource, current.id, changed, now)
    completed = {**values, "from_event": False}  # staff's now, complete
    if current is None:
        return queries.insert(conn, table, completed, now), []
    queries.update(conn, table, current.id, completed, now)
    differs = [key for key, value in completed.items() if current._mapping.get(key) != value]
    return int(current.id), _leads_follow(conn, resource, current.id, differs, now)


_LEADS_OF: dict[str, Callable[[int], sa.ColumnElement[bool]]] = {
    "contact": lambda row_id: miasalud_campaign_contacts.c.contact_id == row_id,
    "campaign": lambda row_id: miasalud_campaign_contacts.c.campaign_id == row_id,
    "advisor": lambda row_id: sa.or_(
        miasalud_campaign_contacts.c.medical_advisor_id == row_id,
        miasalud_campaign_contacts.c.commercial_advisor_id == row_id,
    ),
}


def _leads_follow(conn: Any, resource: Resource, row_id: int, changed: Iterable[str], now: datetime) -> list[Push]:
    """An edit of what leads copy (a contact's name or phone, a campaign's name, an advisor's Odoo user) sends
    those leads back to pending; returns their pushes."""
    if not leads_follow(resource.kind, changed):
        return []
    return [("campaign_contact", link_id) for link_id in store.touch_leads(conn, _LEADS_OF[resource.kind](row_id), now)]


def _staff_stamp(now: datetime) -> Stamp:
    """An edit's place among ManyChat's events: the clock at the edit (the key only orders two at the same time)."""
    return Stamp(at=now, key=f"staff:{uuid.uuid4().hex}")


def _check(conn: Any, resource: Resource, values: Mapping[str, Any], row_id: int | None) -> None:
    """422 for an id that names no row, 409 for a value another row holds."""
    for name, reference in resource.references.items():
        value = values.get(name)
        if value is not None and queries.id_of(conn, reference.table.c.id, value) is None:
            raise _unknown_reference(name, reference, value)
    unique = resource.unique
    value = values.get(unique.column) if unique else None
    if unique is None or value is None:
        return
    other = queries.id_of(conn, resource.table.c[unique.column], value)
    if other is not None and other != row_id:
        raise ApiError(
            409,
            f"{resource.kind}_exists",
            f"Ya existe {resource.one} con {unique.label} (id {other}).",
            details=[{"field": unique.field, "code": "duplicate", "message": f"Lo tiene el id {other}.", "id": other}],
        )


def _refusal(work: Work, resource: Resource, values: Mapping[str, Any], row_id: int | None) -> ApiError:
    """What a write the database refused broke: a row created or deleted meanwhile, found by checking again."""
    try:
        with work.transaction() as conn:
            _check(conn, resource, values, row_id)
    except ApiError as exc:
        return exc
    return CONCURRENT_CHANGE


def _unknown_reference(name: str, reference: Reference, value: Any) -> ApiError:
    message = f"{reference.the} {value} no existe."
    return ApiError(
        422, "unknown_reference", message, details=[{"field": name, "code": "unknown_reference", "message": message}]
    )


def _in_use(resource: Resource, row_id: int, used: Mapping[str, int]) -> ApiError:
    counted = sorted(used.items())
    described = [f"{count} {_REFERRERS.get(table, (table, table))[count != 1]}" for table, count in counted]
    listed = " y ".join([", ".join(described[:-1]), described[-1]] if len(described) > 1 else described)
    return ApiError(
        409,
        "in_use",
        f"{resource.the} {row_id} está en uso por {listed}; reasigne o elimine esos registros primero.",
        details=[{"referenced_by": table, "count": count} for table, count in counted],
    )


def _not_found(resource: Resource) -> ApiError:
    return ApiError(404, f"{resource.kind}_not_found", f"{resource.the} no existe.")


def _read(conn: Any, resource: Resource, row_id: int) -> BaseModel:
    row = queries.row(conn, resource.table, row_id)
    assert row is not None
    return _out(resource, row)


def _out(resource: Resource, row: Any) -> BaseModel:
    return resource.out.model_validate(dict(row._mapping))


# --- what each table takes from its body ---------------------------------------------------------------------------


def _phone(raw: str | None, region: str) -> Phone | None:
    """E.164 when the number reads, else as typed (digits) and not valid; None for no phone (no digits)."""
    text = filled(raw)
    return read_phone(text, region) if text is not None else None


def _instant(value: datetime | None, timezone: str, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return local_bound(value, timezone, end=False)
    except DomainError as exc:  # a wall time a DST jump skips
        raise ApiError(422, exc.code, exc.issue.message, details=[{"field": name, "code": exc.code}]) from None


def _contact_values(work: Work, body: ContactIn) -> dict[str, Any]:
    phone = _phone(body.phone, work.settings.default_phone_region)
    return {
        "manychat_id": body.manychat_id,
        "first_name": filled(body.first_name),
        "last_name": filled(body.last_name),
        "phone": phone.number if phone else None,
        "phone_valid": phone.valid if phone else None,
        "channel_id": body.channel_id,
    }


def _campaign_values(work: Work, body: CampaignIn) -> dict[str, Any]:
    timezone = work.settings.manychat_timezone
    start = _instant(body.date_start, timezone, "date_start")
    end = _instant(body.date_end, timezone, "date_end")
    if start is not None and end is not None and end < start:
        message = "date_end no puede ser anterior a date_start."
        raise ApiError(
            422, "invalid_range", message, details=[{"field": "date_end", "code": "invalid_range", "message": message}]
        )
    return {
        "name": collapse_spaces(body.name),
        "date_start": start,
        "date_end": end,
        "budget": Decimal(repr(body.budget)).quantize(Decimal("0.01")) if body.budget is not None else None,
        "status": filled(body.status),
        "channel_id": body.channel_id,
        "manychat_campaign_id": body.manychat_campaign_id,
    }


def _channel_values(work: Work, body: ChannelIn) -> dict[str, Any]:
    name = collapse_spaces(body.name)
    return {"name": name, "name_key": fold(name)[:200], "description": (body.description or "").strip() or None}


def _advisor_values(work: Work, body: AdvisorIn) -> dict[str, Any]:
    phone = _phone(body.phone, work.settings.default_phone_region)
    return {
        "name": collapse_spaces(body.name),
        "email": (body.email or "").strip() or None,
        "phone": phone.number if phone else None,
        "external_id": body.external_id,
        "odoo_user_id": body.odoo_user_id,
    }


def _search(text: str | None) -> str | None:
    return collapse_spaces(text) if text else None


def _contacts_where(work: Work, query: ContactsQuery) -> queries.Where:
    created = window(
        query.created_from, query.created_to, work.settings.manychat_timezone, ("created_from", "created_to")
    )
    return queries.contacts_where(
        channel_id=query.channel_id,
        sync_status=query.odoo_sync_status,
        text=_search(query.q),
        created_from=created[0],
        created_before=created[1],
    )


CONTACTS = Resource(
    kind="contact",
    the="El contacto",
    one="un contacto",
    table=miasalud_contacts,
    body=ContactIn,
    query=ContactsQuery,
    out=Contact,
    page=ContactList,
    values=_contact_values,
    where=_contacts_where,
    unique=Unique("manychat_id", "manychat_id", "ese manychat_id"),
    references={"channel_id": _CHANNEL},
    stamped=True,
)
CAMPAIGNS = Resource(
    kind="campaign",
    the="La campaña",
    one="una campaña",
    table=miasalud_campaigns,
    body=CampaignIn,
    query=CampaignsQuery,
    out=Campaign,
    page=CampaignList,
    values=_campaign_values,
    where=lambda work, query: queries.campaigns_where(status=query.status, channel_id=query.channel_id),
    unique=Unique("manychat_campaign_id", "manychat_campaign_id", "ese manychat_campaign_id"),
    references={"channel_id": _CHANNEL},
)
CHANNELS = Resource(
    kind="channel",
    the="El canal",
    one="un canal",
    table=miasalud_channels,
    body=ChannelIn,
    query=ChannelsQuery,
    out=Channel,
    page=ChannelList,
    values=_channel_values,
    where=lambda work, query: queries.channels_where(text=_search(query.q)),
    unique=Unique("name_key", "name", "ese nombre (sin distinguir mayúsculas, acentos ni espacios)"),
)
ADVISORS = Resource(
    kind="advisor",
    the="El asesor",
    one="un asesor",
    table=miasalud_advisors,
    body=AdvisorIn,
    query=AdvisorsQuery,
    out=Advisor,
    page=AdvisorList,
    values=_advisor_values,
    where=lambda work, query: queries.advisors_where(text=_search(query.q)),
    unique=Unique("external_id", "external_id", "ese external_id"),
)
RESOURCES = {"contacts": CONTACTS, "campaigns": CAMPAIGNS, "channels": CHANNELS, "advisors": ADVISORS}


# --- the campaign contact update -----------------------------------------------------------------------------------

_CAMPAIGN = Reference(miasalud_campaigns, "La campaña")
_ADVISOR = Reference(miasalud_advisors, "El asesor")


def update_campaign_contact(work: Work, body: CampaignContactUpdateIn) -> CampaignContact:
    """Update the contact's campaign contact in `campaign_id`, or its only one; 409 `ambiguous_campaign` when it is
    in several campaigns and the body names none."""
    wanted = _link_fields(work, body)
    now = work.now()
    try:
        with work.transaction() as conn:
            contact_id = queries.id_of(conn, miasalud_contacts.c.manychat_id, body.manychat_id)
            if contact_id is None:
                raise ApiError(
                    404, "contact_not_found", f"No hay ningún contacto con el manychat_id {body.manychat_id}."
                )
            for name, reference in (("campaign_id", _CAMPAIGN), ("medical_advisor_id", _ADVISOR)):
                value = getattr(body, name)
                if value is not None and queries.id_of(conn, reference.table.c.id, value) is None:
                    raise _unknown_reference(name, reference, value)
            link = _the_link(queries.campaign_contacts_of(conn, contact_id, body.campaign_id), body)
            fields = edited(link._mapping, wanted)
            if fields:
                table = miasalud_campaign_contacts
                queries.merge_into(conn, table, link.id, fields=fields, stamp=_staff_stamp(now), now=now)
            updated = queries.campaign_contact(conn, link.id)
    except (sa.exc.IntegrityError, store.Contention):  # an advisor deleted, or the row changed, meanwhile
        raise CONCURRENT_CHANGE from None
    assert updated is not None
    return CampaignContact.model_validate(dict(updated._mapping))


def _the_link(links: list[Any], body: CampaignContactUpdateIn) -> Any:
    if len(links) == 1:
        return links[0]
    if not links:
        where = f"la campaña {body.campaign_id}" if body.campaign_id is not None else "ninguna campaña"
        raise ApiError(404, "campaign_contact_not_found", f"El contacto {body.manychat_id} no está asignado a {where}.")
    raise ApiError(
        409,
        "ambiguous_campaign",
        f"El contacto {body.manychat_id} está en {len(links)} campañas: indique campaign_id.",
        details=[{"field": "campaign_id", "campaign_id": link.campaign_id} for link in links],
    )


def _link_fields(work: Work, body: CampaignContactUpdateIn) -> dict[str, Any]:
    """The campaign contact's fields the body sets (None clears); the date read as ManyChat writes them."""
    given = body.model_fields_set
    wanted: dict[str, Any] = {}
    if "medical_advisor_id" in given:
        wanted["medical_advisor_id"] = body.medical_advisor_id
    if "medical_assignment_date" in given:
        wanted["medical_assignment_date"] = _manychat_time(body.medical_assignment_date, work)
    if "last_state" in given:
        wanted["last_state"] = filled(body.last_state)
    if "summary" in given:
        wanted["summary"] = body.summary.replace("\r\n", "\n").strip() if body.summary is not None else None
    return wanted


def _manychat_time(text: str | None, work: Work) -> datetime | None:
    if text is None:
        return None
    name = "medical_assignment_date"
    try:
        return read_manychat_time(text, work.settings.manychat_timezone)
    except OutOfRange:
        code, message = "manychat_date_out_of_range", f"{name}: la fecha está fuera del rango admitido (2000-2100)."
    except ValueError:
        code = "invalid_manychat_date"
        message = (
            f'{name}: fecha no válida; use ISO-8601 (2025-06-10T11:00:00Z) o la de ManyChat ("20 Oct 2025, 05:41pm").'
        )
    raise ApiError(422, code, message, details=[{"field": name, "code": code, "message": message}])
