"""RV3 patient ⇄ GHL contact mapping per location, with a lease so a contact is created in GHL only once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.schema import contacts

# Built once (see `appointments`): read by every push of a new patient's appointment.
_GET = sa.select(contacts).where(contacts.c.id == sa.bindparam("b_id"))
_CLAIM = (
    contacts.update()
    .where(
        contacts.c.id == sa.bindparam("b_id"),
        contacts.c.ghl_contact_id.is_(None),
        sa.or_(contacts.c.resolving_until.is_(None), contacts.c.resolving_until < sa.bindparam("b_now")),
    )
    .values(resolving_until=sa.bindparam("b_until"))
)
_BY_ID = contacts.update().where(contacts.c.id == sa.bindparam("b_id"))


@dataclass(frozen=True)
class ContactLink:
    id: int
    location_id: int
    patient_key: str
    ghl_contact_id: str | None
    rv3_patient_id: str | None
    full_name: str | None
    phone: str | None
    email: str | None
    flags: list[str]


def _link(row: sa.Row[Any]) -> ContactLink:
    data = dict(row._mapping)
    data["flags"] = list(data.get("flags") or [])
    return ContactLink(**{k: data[k] for k in ContactLink.__dataclass_fields__})


def get(conn: Connection, contact_link_id: int) -> ContactLink | None:
    row = conn.execute(_GET, {"b_id": contact_link_id}).first()
    return _link(row) if row else None


def get_many(conn: Connection, contact_link_ids: Iterable[int]) -> dict[int, ContactLink]:
    """The links with these ids, by id, in one statement (a page of appointments and their patients)."""
    wanted = sorted(set(contact_link_ids))
    if not wanted:
        return {}
    rows = conn.execute(sa.select(contacts).where(contacts.c.id.in_(wanted)))
    return {link.id: link for link in map(_link, rows)}


def find(conn: Connection, location_id: int, patient_key: str) -> ContactLink | None:
    row = conn.execute(
        sa.select(contacts).where(contacts.c.location_id == location_id, contacts.c.patient_key == patient_key)
    ).first()
    return _link(row) if row else None


def find_by_ghl_contact(conn: Connection, location_id: int, ghl_contact_id: str) -> list[ContactLink]:
    rows = conn.execute(
        sa.select(contacts)
        .where(contacts.c.location_id == location_id, contacts.c.ghl_contact_id == ghl_contact_id)
        .order_by(contacts.c.id)
    )
    return [_link(row) for row in rows]


def upsert_patient(
    conn: Connection, location_id: int, patient_key: str, values: Mapping[str, Any], now: datetime
) -> ContactLink:
    """The mapping row of this patient, created or refreshed with the latest patient data."""
    existing = find(conn, location_id, patient_key)
    if existing is None:
        conn.execute(
            contacts.insert().values(
                location_id=location_id, patient_key=patient_key, **values, created_at=now, updated_at=now
            )
        )
    else:
        conn.execute(contacts.update().where(contacts.c.id == existing.id).values(**values, updated_at=now))
    link = find(conn, location_id, patient_key)
    assert link is not None
    return link


def claim_resolution(conn: Connection, contact_link_id: int, now: datetime, until: datetime) -> bool:
    """Take the short lease to create/look up this patient's GHL contact; False if another worker holds it."""
    result = conn.execute(_CLAIM, {"b_id": contact_link_id, "b_now": now, "b_until": until})
    return result.rowcount == 1


def release_resolution(conn: Connection, contact_link_id: int) -> None:
    """Give the lease back after a failed attempt, so the next attempt need not wait for it to expire."""
    conn.execute(_BY_ID, {"resolving_until": None, "b_id": contact_link_id})


def set_ghl_contact(
    conn: Connection, contact_link_id: int, ghl_contact_id: str, flags: list[str], now: datetime
) -> None:
    values = {"ghl_contact_id": ghl_contact_id, "flags": flags, "resolving_until": None, "updated_at": now}
    conn.execute(_BY_ID, {**values, "b_id": contact_link_id})
