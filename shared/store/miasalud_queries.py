"""The MiaSalud wing's SQL for staff: filtered pages, rows by id, what points at a row, and the report counts.

Every function works inside the caller's transaction; staff's edits of contacts and campaign contacts go through
`shared.store.miasalud.merge_record`, like ManyChat's events, so both are ordered by the same stamps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.ids import inserted_id
from shared.store.miasalud import HELD, merge_record
from shared.store.miasalud_schema import (
    miasalud_advisors,
    miasalud_campaign_contacts,
    miasalud_campaigns,
    miasalud_channels,
    miasalud_contacts,
    miasalud_events,
)
from sync_core.miasalud.events import Stamp

Where = list[sa.ColumnElement[bool]]
_PHONE_CHARS = frozenset("0123456789 +-().")

# Newest first where staff look for what just came in; by name where they look a row up.
_ORDER: dict[str, tuple[sa.ColumnElement[Any], ...]] = {
    miasalud_contacts.name: (miasalud_contacts.c.created_at.desc(), miasalud_contacts.c.id.desc()),
    miasalud_campaigns.name: (miasalud_campaigns.c.id.desc(),),
    miasalud_channels.name: (miasalud_channels.c.name, miasalud_channels.c.id),
    miasalud_advisors.name: (miasalud_advisors.c.name, miasalud_advisors.c.id),
    miasalud_events.name: (miasalud_events.c.received_at.desc(), miasalud_events.c.id.desc()),
}


# --- filters ----------------------------------------------------------------------------------------------------


def contacts_where(
    *,
    channel_id: int | None = None,
    sync_status: str | None = None,
    text: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> Where:
    """`text`: contained (any case) in the name or the manychat_id; one written as a phone number, by its digits,
    in the phone (stored E.164: "55 1234" finds +525512345678)."""
    table = miasalud_contacts
    where = _range(table.c.created_at, created_from, created_before)
    if channel_id is not None:
        where.append(table.c.channel_id == channel_id)
    if sync_status is not None:
        where.append(table.c.odoo_sync_status == sync_status)
    if text:
        full_name = sa.func.coalesce(table.c.first_name, "") + " " + sa.func.coalesce(table.c.last_name, "")
        matches = [full_name.icontains(text, autoescape=True), table.c.manychat_id.icontains(text, autoescape=True)]
        digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
        if digits and all(ch in _PHONE_CHARS for ch in text):
            matches.append(table.c.phone.contains(digits, autoescape=True))
        where.append(sa.or_(*matches))
    return where


def campaigns_where(*, status: str | None = None, channel_id: int | None = None) -> Where:
    table = miasalud_campaigns
    where: Where = []
    if status is not None:
        where.append(table.c.status == status)
    if channel_id is not None:
        where.append(table.c.channel_id == channel_id)
    return where


def channels_where(*, text: str | None = None) -> Where:
    table = miasalud_channels
    return [table.c.name.icontains(text, autoescape=True)] if text else []


def advisors_where(*, text: str | None = None) -> Where:
    """`text`: contained (any case) in the name, email, phone or external id."""
    table = miasalud_advisors
    if not text:
        return []
    columns = (table.c.name, table.c.email, table.c.phone, table.c.external_id)
    return [sa.or_(*(column.icontains(text, autoescape=True) for column in columns))]


def events_where(
    *,
    status: str | None = None,
    kind: str | None = None,
    manychat_id: str | None = None,
    received_from: datetime | None = None,
    received_before: datetime | None = None,
) -> Where:
    table = miasalud_events
    where = _range(table.c.received_at, received_from, received_before)
    if status is not None:
        where.append(table.c.status == status)
    if kind is not None:
        where.append(table.c.kind == kind)
    if manychat_id is not None:
        where.append(table.c.manychat_id == manychat_id)
    return where


def _range(column: sa.Column[Any], start: datetime | None, end: datetime | None) -> Where:
    where: Where = []
    if start is not None:
        where.append(column >= start)
    if end is not None:
        where.append(column < end)
    return where


# --- rows -------------------------------------------------------------------------------------------------------


def page(conn: Connection, table: sa.Table, where: Where, *, offset: int, limit: int) -> tuple[list[sa.Row[Any]], int]:
    """One page of `table`'s rows matching `where`, in the table's order (ties broken by id), and how many match."""
    total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
    rows = conn.execute(sa.select(table).where(*where).order_by(*_ORDER[table.name]).offset(offset).limit(limit))
    return list(rows), int(total)


def row(conn: Connection, table: sa.Table, row_id: int, *, lock: bool = False) -> sa.Row[Any] | None:
    """The row, locked for this transaction with `lock` (where the engine locks rows), so that a worker's
    merge waits for the edit read from it."""
    query = sa.select(table).where(table.c.id == row_id)
    return conn.execute(query.with_for_update() if lock else query).first()


def id_of(conn: Connection, column: sa.Column[Any], value: Any) -> int | None:
    """The id of a row whose `column` holds `value` (a unique column, or any one of them)."""
    found = conn.execute(sa.select(column.table.c.id).where(column == value).limit(1)).scalar_one_or_none()
    return int(found) if found is not None else None


def insert(conn: Connection, table: sa.Table, values: Mapping[str, Any], now: datetime) -> int:
    return inserted_id(conn.execute(table.insert().values(**values, created_at=now, updated_at=now)))


def update(conn: Connection, table: sa.Table, row_id: int, values: Mapping[str, Any], now: datetime) -> None:
    conn.execute(table.update().where(table.c.id == row_id).values(**values, updated_at=now))


def delete(conn: Connection, table: sa.Table, row_id: int) -> None:
    conn.execute(table.delete().where(table.c.id == row_id))


def referrers(conn: Connection, table: sa.Table, row_id: int) -> dict[str, int]:
    """How many rows of each table point at the row (by any of its foreign keys to `table`), tables with any."""
    found: dict[str, int] = {}
    for other in table.metadata.sorted_tables:
        columns = [key.parent for key in other.foreign_keys if key.column.table is table]
        if columns:
            query = sa.select(sa.func.count()).select_from(other).where(sa.or_(*(c == row_id for c in columns)))
            count = int(conn.execute(query).scalar_one())
            if count:
                found[other.name] = count
    return found


def merge_into(
    conn: Connection, table: sa.Table, row_id: int, *, fields: Mapping[str, Any], stamp: Stamp, now: datetime
) -> dict[str, Any]:
    """Merge `fields`, stamped `stamp`, into an existing contact or campaign contact; the fields that changed."""
    _, changed = merge_record(conn, table, table.c.id == row_id, identity={}, fields=fields, stamp=stamp, now=now)
    return changed


def create_contact(conn: Connection, *, fields: Mapping[str, Any], stamp: Stamp, now: datetime) -> int:
    """A contact staff enter, its fields stamped `stamp` (ManyChat's older events do not overwrite them)."""
    table = miasalud_contacts
    manychat_id = fields["manychat_id"]
    contact_id, _ = merge_record(
        conn,
        table,
        table.c.manychat_id == manychat_id,
        identity={"manychat_id": manychat_id},
        fields=fields,
        stamp=stamp,
        now=now,
    )
    return contact_id


# --- campaign contacts ------------------------------------------------------------------------------------------

_LINK = miasalud_campaign_contacts.join(
    miasalud_contacts, miasalud_campaign_contacts.c.contact_id == miasalud_contacts.c.id
)
_LINK_COLUMNS = (*miasalud_campaign_contacts.c, miasalud_contacts.c.manychat_id)


def campaign_contacts_of(conn: Connection, contact_id: int, campaign_id: int | None = None) -> list[sa.Row[Any]]:
    """The contact's campaign contacts (in `campaign_id` only, when given), by campaign."""
    table = miasalud_campaign_contacts
    query = sa.select(table).where(table.c.contact_id == contact_id)
    if campaign_id is not None:
        query = query.where(table.c.campaign_id == campaign_id)
    return list(conn.execute(query.order_by(table.c.campaign_id).with_for_update()))


def campaign_contact(conn: Connection, link_id: int) -> sa.Row[Any] | None:
    """A campaign contact with its contact's manychat_id."""
    query = sa.select(*_LINK_COLUMNS).select_from(_LINK).where(miasalud_campaign_contacts.c.id == link_id)
    return conn.execute(query).first()


# --- report counts ----------------------------------------------------------------------------------------------


def counts_between(conn: Connection, column: sa.Column[Any], bounds: Sequence[datetime]) -> list[int]:
    """How many rows of `column`'s table fall in each `[bounds[i], bounds[i + 1])` (ascending bounds).

    Counted by the database: each row gets its interval's number in a derived table, which is then grouped. (The
    grouping is on the derived table's column because Azure SQL refuses GROUP BY on an expression holding
    parameters.)"""
    if len(bounds) < 2:
        return []
    slot = sa.case(*((column < bound, sa.literal_column(str(n))) for n, bound in enumerate(bounds[1:])))
    inner = sa.select(slot.label("slot")).where(column >= bounds[0], column < bounds[-1]).subquery()
    counts = [0] * (len(bounds) - 1)
    for number, count in conn.execute(sa.select(inner.c.slot, sa.func.count()).group_by(inner.c.slot)):
        counts[int(number)] = int(count)
    return counts


def contacts_per_channel(conn: Connection, start: datetime, end: datetime) -> list[sa.Row[Any]]:
    """(channel_id, name, leads) of the contacts created in [start, end); channel_id None: without a channel."""
    contacts, channels = miasalud_contacts, miasalud_channels
    query = (
        sa.select(contacts.c.channel_id, channels.c.name, sa.func.count().label("leads"))
        .select_from(contacts.outerjoin(channels, contacts.c.channel_id == channels.c.id))
        .where(contacts.c.created_at >= start, contacts.c.created_at < end)
        .group_by(contacts.c.channel_id, channels.c.name)
    )
    return list(conn.execute(query))


def contacts_per_stage(conn: Connection, start: datetime, end: datetime) -> list[sa.Row[Any]]:
    """(last_state, leads) of the contacts created in [start, end)."""
    contacts = miasalud_contacts
    query = (
        sa.select(contacts.c.last_state, sa.func.count().label("leads"))
        .where(contacts.c.created_at >= start, contacts.c.created_at < end)
        .group_by(contacts.c.last_state)
    )
    return list(conn.execute(query))


def links_per_campaign(conn: Connection, start: datetime, end: datetime) -> list[sa.Row[Any]]:
    """(campaign_id, name, manychat_campaign_id, leads) of the campaign contacts created in [start, end)."""
    links, campaigns = miasalud_campaign_contacts, miasalud_campaigns
    query = (
        sa.select(
            links.c.campaign_id, campaigns.c.name, campaigns.c.manychat_campaign_id, sa.func.count().label("leads")
        )
        .select_from(links.join(campaigns, links.c.campaign_id == campaigns.c.id))
        .where(links.c.created_at >= start, links.c.created_at < end)
        .group_by(links.c.campaign_id, campaigns.c.name, campaigns.c.manychat_campaign_id)
    )
    return list(conn.execute(query))


def events_per_status(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    events = miasalud_events
    query = (
        sa.select(events.c.status, sa.func.count())
        .where(events.c.received_at >= start, events.c.received_at < end)
        .group_by(events.c.status)
    )
    return {str(status): int(count) for status, count in conn.execute(query)}


def held_events(conn: Connection) -> int:
    """Events storage could not queue, waiting in SQL for the sweep."""
    events = miasalud_events
    query = sa.select(sa.func.count()).select_from(events).where(events.c.status == HELD)
    return int(conn.execute(query).scalar_one())
