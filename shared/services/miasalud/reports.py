"""What staff read of the MiaSalud wing: ManyChat's events as kept, the leads summary, and the wing's health."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, get_args

from shared import telemetry
from shared.api.miasalud_schemas import (
    CampaignLeads,
    ChannelLeads,
    DayLeads,
    EventStatus,
    HourEvents,
    LeadsHealth,
    LeadsSummary,
    LeadsSummaryQuery,
    ManychatEvent,
    ManychatEventList,
    ManychatEventsQuery,
    OdooState,
    QueueLevel,
    StageLeads,
    SummaryWindow,
)
from shared.api.schemas import HealthCheck
from shared.health import run_check, sql_probe
from shared.http import ApiError
from shared.odoo.errors import OdooError
from shared.queues import MANYCHAT_CAMPAIGN, MANYCHAT_CONTACT, POISON_SUFFIX
from shared.services.miasalud import odoo_admin, odoo_reconcile
from shared.settings import SettingsError
from shared.store import miasalud as store
from shared.store import miasalud_queries as queries
from shared.store.miasalud_schema import miasalud_contacts, miasalud_events
from shared.work import Work
from sync_core.errors import DomainError
from sync_core.times import local_bound, local_day_bounds, zone

log = telemetry.get_logger("miasalud")

SUMMARY_DAYS = 30
MAX_SUMMARY_DAYS = 366
HOURS = 24
QUEUES = (MANYCHAT_CONTACT, MANYCHAT_CAMPAIGN)
R = TypeVar("R", ChannelLeads, CampaignLeads, StageLeads)
ODOO_NOT_CONFIGURED = "Odoo aún no está conectado: los registros quedan en SQL con odoo_sync_status pending."
ODOO_DETAILS = {
    "ok": "Odoo responde y acepta las credenciales.",
    "unreachable": "Odoo no respondió a una llamada de prueba",
    "paused": "Envíos a Odoo en pausa: rechazó las credenciales.",
}


def window(
    start: date | datetime | None, end: date | datetime | None, timezone: str, fields: tuple[str, str]
) -> tuple[datetime | None, datetime | None]:
    """A filter's [start, end) in UTC: dates are whole days in `timezone` (the end one included), date-times
    without offset are read there; 422 when the range is empty."""
    try:
        lower = local_bound(start, timezone, end=False) if start is not None else None
        upper = local_bound(end, timezone, end=True) if end is not None else None
    except DomainError as exc:  # a wall time a DST jump skips
        raise ApiError(422, exc.code, exc.issue.message, details=[{"field": fields[0], "code": exc.code}]) from None
    if lower is not None and upper is not None and lower >= upper:
        raise ApiError(
            422,
            "invalid_range",
            f"'{fields[0]}' debe ser anterior a '{fields[1]}'.",
            details=[{"field": fields[0], "code": "invalid_range", "message": f"Posterior a {fields[1]}."}],
        )
    return lower, upper


# --- events -------------------------------------------------------------------------------------------------------


def list_events(work: Work, query: ManychatEventsQuery) -> ManychatEventList:
    """The events kept, newest first; a refused one with its body and reasons, for staff to review."""
    received = window(
        query.received_from, query.received_to, work.settings.manychat_timezone, ("received_from", "received_to")
    )
    where = queries.events_where(
        status=query.status,
        kind=query.kind,
        manychat_id=query.manychat_id,
        received_from=received[0],
        received_before=received[1],
    )
    with work.transaction() as conn:
        rows, total = queries.page(
            conn, miasalud_events, where, offset=(query.page - 1) * query.page_size, limit=query.page_size
        )
    return ManychatEventList(
        count=total, page=query.page, page_size=query.page_size, results=[_event(row) for row in rows]
    )


def _event(row: Any) -> ManychatEvent:
    return ManychatEvent(
        id=row.id,
        event_key=row.event_key,
        kind=row.kind,
        manychat_id=row.manychat_id,
        status=row.status,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        processed_at=row.processed_at,
        detail=_json(row.detail),
        # A held event's body is the queue message it becomes: internal, and applied soon.
        body=row.body if row.status == store.REJECTED else None,
    )


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- summary ------------------------------------------------------------------------------------------------------


def summary(work: Work, query: LeadsSummaryQuery) -> LeadsSummary:
    """The leads summary over whole days in MANYCHAT_TIMEZONE, counted by the database."""
    tz = work.settings.manychat_timezone
    now = work.now()
    hasta = query.hasta or now.astimezone(zone(tz)).date()
    desde = query.desde or hasta - timedelta(days=SUMMARY_DAYS - 1)
    days = (hasta - desde).days + 1
    if days < 1:
        raise ApiError(422, "invalid_range", "'desde' debe ser anterior o igual a 'hasta'.", details=["desde"])
    if days > MAX_SUMMARY_DAYS:
        raise ApiError(422, "window_too_long", f"La ventana no puede superar {MAX_SUMMARY_DAYS} días.")
    day_bounds = _day_bounds(desde, days, tz)
    start, end = day_bounds[0], day_bounds[-1]
    hour_bounds = _hour_bounds(min(now, end), tz)
    with work.transaction() as conn:
        per_day = queries.counts_between(conn, miasalud_contacts.c.created_at, day_bounds)
        per_hour = queries.counts_between(conn, miasalud_events.c.received_at, hour_bounds)
        channels = queries.contacts_per_channel(conn, start, end)
        campaigns = queries.links_per_campaign(conn, start, end)
        stages = queries.contacts_per_stage(conn, start, end)
        statuses = queries.events_per_status(conn, start, end)
    local = zone(tz)
    return LeadsSummary(
        window=SummaryWindow(desde=desde, hasta=hasta, timezone=tz),
        leads=sum(per_day),
        leads_per_day=[DayLeads(date=desde + timedelta(days=n), leads=count) for n, count in enumerate(per_day)],
        leads_per_channel=_ranked(
            [ChannelLeads(channel_id=row.channel_id, name=row.name, leads=row.leads) for row in channels],
            lambda item: item.name,
        ),
        leads_per_campaign=_ranked(
            [
                CampaignLeads(
                    campaign_id=row.campaign_id,
                    name=row.name,
                    manychat_campaign_id=row.manychat_campaign_id,
                    leads=row.leads,
                )
                for row in campaigns
            ],
            lambda item: item.name,
        ),
        leads_per_stage=_ranked(
            [StageLeads(stage=row.last_state, leads=row.leads) for row in stages], lambda item: item.stage
        ),
        events=sum(statuses.values()),
        events_per_status={status: statuses.get(status, 0) for status in get_args(EventStatus)},
        events_per_hour=[
            HourEvents(hour=bound.astimezone(local), events=count)
            for bound, count in zip(hour_bounds[:-1], per_hour, strict=True)
        ],
    )


def _day_bounds(first: date, days: int, tz: str) -> list[datetime]:
    """Where each local day starts, and where the last one ends (days are not all 24 h where DST applies)."""
    return [local_day_bounds(first + timedelta(days=n), tz).start for n in range(days + 1)]  # type: ignore[misc]


def _hour_bounds(until: datetime, tz: str) -> list[datetime]:
    """The local hours of the 24 h up to `until`: the last one holds `until` (an hour not over yet counts too)."""
    local = until.astimezone(zone(tz))
    hour = local.replace(minute=0, second=0, microsecond=0)
    end = (hour if hour == local else hour + timedelta(hours=1)).astimezone(UTC)
    return [end - timedelta(hours=HOURS - n) for n in range(HOURS + 1)]


def _ranked(items: list[R], label: Callable[[R], str | None]) -> list[R]:
    """Most leads first, then by name (those without one last)."""
    return sorted(items, key=lambda item: (-item.leads, label(item) is None, label(item) or ""))


# --- health -------------------------------------------------------------------------------------------------------


def health(work: Work) -> LeadsHealth:
    """Whether SQL (its schema current) and the ManyChat queues answer, the queues' depths, the events held in
    SQL, and Odoo's state."""
    held: list[int] = []
    levels: dict[str, QueueLevel] = {}

    def sql() -> str:
        detail = sql_probe()
        with work.transaction() as conn:
            held.append(queries.held_events(conn))
        return detail

    def queues() -> str:
        for name in QUEUES:
            levels[name] = QueueLevel(depth=work.queues.depth(name), poison=work.queues.depth(name + POISON_SUFFIX))
        return "ok"

    checks = {name: run_check(name, probe) for name, probe in (("sql", sql), ("queues", queues))}
    odoo = odoo_state(work)
    status = "ok" if all(check.ok for check in checks.values()) else "unavailable"
    if status == "ok" and odoo.status in ("unreachable", "paused"):
        status = "degraded"  # ManyChat's events are still taken and kept; Odoo gets them once it is back
    return LeadsHealth(
        status=status,
        checks={name: HealthCheck(ok=check.ok, detail=check.detail) for name, check in checks.items()},
        queues={name: levels.get(name, QueueLevel(depth=None, poison=None)) for name in QUEUES},
        held_events=held[0] if held else None,
        odoo=odoo,
    )


def odoo_state(work: Work) -> OdooState:
    """Odoo as the wing sees it: configured, answering a cheap authenticated call in time, pushes paused or not, the
    rows waiting for it or in error, and the newest reconciliation (left out when SQL does not answer)."""
    if not work.settings.odoo_url:
        return OdooState(status="not_configured", detail=ODOO_NOT_CONFIGURED, configured=False)
    sync: dict[str, Any] | None = None
    last = None
    try:
        sync = odoo_admin.sync_status(work)
        found = odoo_reconcile.reports(work, limit=1)["items"]
        last = found[0] if found else None
    except Exception as exc:  # noqa: BLE001 - SQL down: its own check says so, by kind
        log.warning("health: the Odoo sync state could not be read: %s", type(exc).__name__)
    why = ""
    try:
        work.odoo.probe()
    except OdooError as failure:
        why = failure.code
    except SettingsError:
        why = "configuration_error"
    paused = bool(sync and sync["paused"])
    status = "paused" if paused else "unreachable" if why else "ok"
    return OdooState(
        status=status,
        detail=ODOO_DETAILS[status] + (f" ({why})." if status == "unreachable" else ""),
        configured=True,
        reachable=not why,
        paused=paused,
        paused_reason=sync["paused_reason"] if sync else None,
        pending=_summed(sync, "pending"),
        errors=_summed(sync, "error"),
        last_reconciliation=last,
    )


def _summed(sync: dict[str, Any] | None, status: str) -> int | None:
    """Contacts and campaign contacts in `status`; None when SQL could not tell."""
    if sync is None:
        return None
    return int(sum(sync[kind]["counts"].get(status, 0) for kind in ("contacts", "campaign_contacts")))
