"""Odoo's partners (`res.partner`) as staff read and manage them, through the app's one Odoo client and its pacing.

One partner per `x_manychat_id` is ours to keep (Odoo makes nothing unique): a create or an update naming an id
another partner holds, archived ones included, is refused. DELETE archives (`active` false) instead of unlinking:
Odoo's leads, messages and invoices keep pointing at the partner, and staff can bring it back in Odoo. Writes are
never repeated after a lost answer (the client's rule): the caller is told to look first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.api.miasalud_schemas import OdooPartner, OdooPartnerIn, OdooPartnerList, OdooPartnersQuery
from shared.http import ApiError
from shared.odoo.errors import OdooError
from shared.services.miasalud.odoo_errors import api_error_from_odoo, require_odoo
from shared.work import Work
from sync_core.miasalud.odoo import (
    ARCHIVED_TOO,
    PARTNER,
    PARTNER_FIELDS,
    partner_domain,
    partner_search_domain,
    staff_partner_values,
)

if TYPE_CHECKING:
    from shared.odoo.client import OdooClient

NOT_FOUND = "El contacto no existe en Odoo."


@contextmanager
def _odoo(work: Work) -> Iterator[OdooClient]:
    """The Odoo client, its failures as the API's errors."""
    require_odoo(bool(work.settings.odoo_url))
    try:
        yield work.odoo
    except OdooError as exc:
        raise api_error_from_odoo(exc, not_found=NOT_FOUND) from None


def list_partners(work: Work, query: OdooPartnersQuery) -> OdooPartnerList:
    domain = partner_search_domain(query.q, query.x_manychat_id, include_archived=query.include_archived)
    with _odoo(work) as odoo:
        count = odoo.search_count(PARTNER, domain)
        found = (
            odoo.search_read(PARTNER, domain, PARTNER_FIELDS, limit=query.limit, offset=query.offset, order="id desc")
            if count > query.offset
            else []
        )
    return OdooPartnerList(count=count, limit=query.limit, offset=query.offset, results=[_partner(r) for r in found])


def get_partner(work: Work, partner_id: int) -> OdooPartner:
    with _odoo(work) as odoo:
        return _partner(_read(odoo, partner_id))


def create_partner(work: Work, body: OdooPartnerIn) -> OdooPartner:
    values = _values(work, body)
    with _odoo(work) as odoo:
        _refuse_taken(odoo, values["x_manychat_id"], None)
        partner_id = odoo.create(PARTNER, values)
        return _partner(_read(odoo, partner_id))


def update_partner(work: Work, partner_id: int, body: OdooPartnerIn) -> OdooPartner:
    values = _values(work, body)
    with _odoo(work) as odoo:
        _read(odoo, partner_id)
        _refuse_taken(odoo, values["x_manychat_id"], partner_id)
        odoo.write(PARTNER, [partner_id], values)
        return _partner(_read(odoo, partner_id))


def archive_partner(work: Work, partner_id: int) -> None:
    """Archive the partner (again: nothing changes); 404 when Odoo has no such partner."""
    with _odoo(work) as odoo:
        odoo.write(PARTNER, [partner_id], {"active": False})


def _values(work: Work, body: OdooPartnerIn) -> dict[str, Any]:
    values, problems = staff_partner_values(
        body.name, body.phone, body.email, body.x_manychat_id, phone_region=work.settings.default_phone_region
    )
    if problems:
        details = [{"field": p.field, "code": p.code, "message": p.message} for p in problems]
        raise ApiError(422, "unprocessable", "Datos no procesables.", details=details)
    return values


def _read(odoo: OdooClient, partner_id: int) -> dict[str, Any]:
    """The partner, archived or not; 404 when Odoo has none with that id."""
    found = odoo.search_read(PARTNER, [("id", "=", partner_id), ARCHIVED_TOO], PARTNER_FIELDS, limit=1)
    if not found:
        raise ApiError(404, "odoo_record_not_found", NOT_FOUND)
    return dict(found[0])


def _refuse_taken(odoo: OdooClient, manychat_id: str | bool, partner_id: int | None) -> None:
    """409 when another partner (archived ones too) holds this x_manychat_id."""
    if not manychat_id:
        return
    domain = partner_domain(str(manychat_id))
    if partner_id is not None:
        domain.append(("id", "!=", partner_id))
    holders = odoo.search_read(PARTNER, domain, ["id"], limit=5, order="id asc")
    if holders:
        raise ApiError(
            409,
            "odoo_manychat_id_taken",
            "Ya existe en Odoo un contacto con ese x_manychat_id.",
            details=[{"field": "x_manychat_id", "odoo_ids": [int(h["id"]) for h in holders]}],
        )


def _partner(record: dict[str, Any]) -> OdooPartner:
    """Odoo's record as the API shows it (Odoo answers False for an empty field)."""

    def text(name: str) -> str | None:
        value = record.get(name)
        return str(value) if value not in (None, False, "") else None

    return OdooPartner(
        id=int(record["id"]),
        name=text("name"),
        phone=text("phone"),
        email=text("email"),
        x_manychat_id=text("x_manychat_id"),
        active=bool(record.get("active", True)),
    )
