"""The `odoo-push` worker: a MiaSalud contact becomes one `res.partner`, a campaign contact one `crm.lead`.

A push takes the row's lease (one worker per row), reads what the row holds now (so a burst of changes is one
push), finds the Odoo record by its stored id or by `x_manychat_id` before any create (an unknown outcome, two
instances or a replay never make a second record), creates or writes it, and records the version Odoo took. The
Odoo calls run outside any SQL transaction. What Odoo refuses for good is an `error` with its reason; what may
work later comes back through the worker kernel, bounded, then goes to `odoo-push-poison` with
`alert.odoo_sync_failed`. Credentials Odoo refuses pause every push (`alert.odoo_auth_failed`) instead of
burning retries: rows wait `pending`, and the sweep resumes them once Odoo takes the key again.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import telemetry
from shared.odoo.errors import OdooAuthFailed, OdooError, OdooMissingRecord
from shared.queues import ODOO_PUSH, POISON_SUFFIX, QueueMessage, QueueUnavailable
from shared.setting_defaults import ODOO_PUSH_LEASE_S, ODOO_SWEEP_AFTER_S, seconds
from shared.store import miasalud as store
from shared.store.miasalud_schema import (
    ODOO_SYNC_PENDING,
    miasalud_advisors,
    miasalud_campaign_contacts,
    miasalud_campaigns,
    miasalud_contacts,
)
from shared.work import Work
from shared.worker import Job, Later, Outcome, Result, run
from sync_core.miasalud.odoo import (
    LEAD,
    PARTNER,
    STAGE,
    Assignment,
    Lead,
    RecordKind,
    lead_domain,
    lead_values,
    partner_domain,
    partner_values,
    pushed,
    stage_name,
)
from sync_core.retry import ErrorKind

if TYPE_CHECKING:
    from shared.odoo.client import OdooClient

log = telemetry.get_logger("odoo")

# Longer than a push can take (a few calls, each with Odoo's read timeout): a lease outlives its worker's calls.
# A killed worker's rows wait for it to run out; the fast chaos test shortens it against its quick sandbox.
MIN_LEASE_S = 30.0
LEASE_S = max(MIN_LEASE_S, seconds("ODOO_PUSH_LEASE_S", ODOO_PUSH_LEASE_S))
SWEEP_QUIET_S = seconds("ODOO_SWEEP_AFTER_S", ODOO_SWEEP_AFTER_S)  # the chaos run and benchmark shorten it
SWEEP_BATCH = 500
STAGES_TTL_S = 300.0
PARTNER_WAIT_S = (3.0, 10.0)  # a lead whose partner another worker pushes looks again after this
TABLES = {"contact": miasalud_contacts, "campaign_contact": miasalud_campaign_contacts}


class OdooPushMessage(QueueMessage):
    """Push this row to Odoo as it is when the message runs."""

    kind: RecordKind
    id: int


def enqueue(work: Work, kind: RecordKind, row_id: int) -> None:
    """Queue the push of a row that just changed, when Odoo is configured and `ODOO_SYNC` sends its kind (the
    sweep catches what this misses: a row stays `pending` until Odoo holds it)."""
    settings = work.settings
    if settings.odoo_url and pushed(settings.odoo_sync, kind):
        message = OdooPushMessage(
            kind=kind,
            id=row_id,
            correlation_id=telemetry.current_correlation_id(),
            traceparent=telemetry.current_traceparent(),  # one trace from ManyChat's request to the Odoo call
        )
        work.queues.send(ODOO_PUSH, message.model_dump(mode="json", exclude_none=True))


def enqueue_all(work: Work, pushes: Iterable[tuple[RecordKind, int]]) -> None:
    """Queue the pushes of rows a committed change touched; one that cannot be queued now stays pending and the
    sweep queues it."""
    for kind, row_id in pushes:
        try:
            enqueue(work, kind, row_id)
        except QueueUnavailable:
            log.warning("an Odoo push could not be queued; the sweep will", extra={"operation": "odoo_push"})


def process(raw: dict[str, Any], work: Work | None = None) -> Result:
    """Handle one `odoo-push` message (see `shared.worker.run`)."""
    return run(JOB, raw, work or Work.current())


def _push(work: Work, message: OdooPushMessage) -> Result:
    table = TABLES[message.kind]
    aside = _set_aside(work, message)
    if aside is not None:
        return aside
    with work.transaction() as conn:
        row = store.claim_push(conn, table, message.id, now=work.now(), until=work.now() + timedelta(seconds=LEASE_S))
    if row is None:
        return _leased(work, table, message)
    if _held(row):
        with work.transaction() as conn:
            store.release_push(conn, table, row.id)
        return Result(Outcome.duplicate, "Odoo already holds this version")
    try:
        odoo_id = _contact(work, row) if message.kind == "contact" else _lead(work, row)
    except OdooAuthFailed as failure:
        _pause(work, table, row.id, failure)
        return Result(Outcome.skipped, "Odoo refused the credentials: pushes paused")
    except OdooError as failure:
        refused = _failed(work, table, row.id, failure)  # for good (a retry raises `Later`)
        _hand_over(work, message.kind, table, row)
        return refused
    except BaseException:  # a wait (`Later`), the database, a bug: the lease goes, the kernel decides
        with contextlib.suppress(Exception), work.transaction() as conn:
            store.release_push(conn, table, row.id)
        raise
    with work.transaction() as conn:
        current = store.record_pushed(conn, table, row.id, odoo_id=odoo_id, version=row.version, now=work.now())
    if not current:
        _hand_over(work, message.kind, table, row)
    return Result(Outcome.applied, f"{message.kind} {row.id} → Odoo {odoo_id}")


def _leased(work: Work, table: sa.Table, message: OdooPushMessage) -> Result:
    """Another worker holds the row. A `pending` row is left to it: it pushes the row's latest version after its
    own (`_hand_over`), and if it died the sweep takes the row once the lease ran out. A row between retries
    (its status `error` until they succeed) the sweep does not take: this message is its retry, and comes back
    when the lease runs out (a dead worker's lease; a live one has finished by then)."""
    row = _sync_state(work, table, message.id)
    if row is None:
        return Result(Outcome.skipped, "the row was deleted")
    if _held(row):
        return Result(Outcome.duplicate, "Odoo already holds this version")
    if row.odoo_sync_status == ODOO_SYNC_PENDING:
        return Result(Outcome.skipped, "another worker pushes this row, and its latest version after")
    remaining = (row.odoo_lease_until - work.now()).total_seconds() if row.odoo_lease_until else 0.0
    wait = max(1.0, remaining) + random.uniform(0.0, 3.0)
    raise Later(ErrorKind.rate_limited, "another worker pushes this row", retry_after=wait)


def _hand_over(work: Work, kind: RecordKind, table: sa.Table, pushed: sa.Row[Any]) -> None:
    """After this worker's push ended: if the row changed meanwhile (the change's own push found the row leased
    and left it to this worker), queue the push of the version Odoo does not hold yet."""
    row = _sync_state(work, table, pushed.id)
    if row is not None and row.version != pushed.version:
        enqueue_all(work, [(kind, pushed.id)])


def _sync_state(work: Work, table: sa.Table, row_id: int) -> Any:
    c = table.c
    columns = (c.id, c.version, c.odoo_pushed_version, c.odoo_sync_status, c.odoo_lease_until)
    with work.transaction() as conn:
        return conn.execute(sa.select(*columns).where(c.id == row_id)).first()


def _held(row: sa.Row[Any]) -> bool:
    """Odoo holds the row's current version."""
    return bool(row.odoo_pushed_version == row.version and row.odoo_sync_status == "success")


def _set_aside(work: Work, message: OdooPushMessage) -> Result | None:
    """Why this message pushes nothing now (Odoo not configured, a kind ODOO_SYNC does not send, pushes paused)."""
    settings = work.settings
    if not settings.odoo_url:
        return Result(Outcome.skipped, "Odoo is not configured: the row stays pending")
    if not pushed(settings.odoo_sync, message.kind):
        with work.transaction() as conn:
            reason = f"ODOO_SYNC={settings.odoo_sync}: este registro no se envía a Odoo."
            store.record_push_failure(
                conn, TABLES[message.kind], message.id, status="skipped", reason=reason, attempt=False
            )
        return Result(Outcome.skipped, f"ODOO_SYNC={settings.odoo_sync}")
    with work.transaction() as conn:
        if store.odoo_paused(conn):
            return Result(Outcome.skipped, "Odoo pushes are paused (credentials): the sweep resumes the row")
    return None


def _failed(work: Work, table: sa.Table, row_id: int, failure: OdooError) -> Result:
    """Odoo refused for good (an `error` staff see, with its reason), or may take it later (retried, bounded)."""
    final = failure.retry is None
    with work.transaction() as conn:
        reason = failure.reason if final else f"Reintentando: {failure.reason}"
        store.record_push_failure(conn, table, row_id, status="error", reason=reason)
    if final:
        return Result(Outcome.failed, failure.code)
    raise Later(failure.retry, failure.reason)  # type: ignore[arg-type]


def _contact(work: Work, row: sa.Row[Any]) -> int:
    """The contact's partner, created or brought up to date."""
    lead = person(row)
    return _upsert(work.odoo, PARTNER, row.odoo_partner_id, partner_domain(lead.manychat_id), partner_values(lead))


def _lead(work: Work, row: sa.Row[Any]) -> int:
    """The campaign contact's lead; with ODOO_SYNC=both, linked to the contact's partner (pushed first if new)."""
    with work.transaction() as conn:
        contact = conn.execute(sa.select(miasalud_contacts).where(miasalud_contacts.c.id == row.contact_id)).one()
    partner_id = None
    if work.settings.odoo_sync == "both":
        partner_id = contact.odoo_partner_id or _partner_first(work, contact.id)
    values = lead_push_values(work, row, contact, partner_id)
    domain = lead_domain(contact.manychat_id, values["x_campaign_id"])
    return _upsert(work.odoo, LEAD, row.odoo_lead_id, domain, values)


def lead_push_values(work: Work, row: sa.Row[Any], contact: sa.Row[Any], partner_id: int | None) -> dict[str, Any]:
    """What the lead of campaign contact `row` must hold in Odoo (the push sends it, the reconciliation expects it)."""
    with work.transaction() as conn:
        campaign = conn.execute(sa.select(miasalud_campaigns).where(miasalud_campaigns.c.id == row.campaign_id)).one()
        salesperson = _salesperson(conn, row)
        mapping = store.stage_mapping(conn)
    assignment = Assignment(
        campaign_number=campaign.manychat_campaign_id,
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        last_state=row.last_state,
        summary=row.summary,
        salesperson=salesperson,
    )
    stage = stage_name(row.last_state, mapping)
    return lead_values(
        person(contact),
        assignment,
        lead_type=work.settings.odoo_lead_type,
        stage_id=_stages(work.odoo).get(stage) if stage else None,
        partner_id=partner_id,
    )


def _partner_first(work: Work, contact_id: int) -> int:
    """The contact's partner, pushed now: a lead of ODOO_SYNC=both points at it."""
    table = miasalud_contacts
    with work.transaction() as conn:
        contact = store.claim_push(
            conn, table, contact_id, now=work.now(), until=work.now() + timedelta(seconds=LEASE_S)
        )
    if contact is None:
        # Its push ends within a lease (a dead worker's lease runs out): check again soon, at a steady jittered
        # pace rather than a growing backoff, so the lead follows its partner within seconds.
        raise Later(ErrorKind.rate_limited, "the contact's partner is being pushed", retry_after=_partner_wait())
    try:
        odoo_id = _contact(work, contact)
    except BaseException:
        with work.transaction() as conn:
            store.release_push(conn, table, contact_id)
        raise
    with work.transaction() as conn:
        current = store.record_pushed(conn, table, contact_id, odoo_id=odoo_id, version=contact.version, now=work.now())
    if not current:
        _hand_over(work, "contact", table, contact)
    return odoo_id


def _partner_wait() -> float:
    return random.uniform(*PARTNER_WAIT_S)


def _upsert(odoo: OdooClient, model: str, known: int | None, domain: list[Any], values: dict[str, Any]) -> int:
    """Write the record we know, else the one `domain` finds, else create it; a record deleted in Odoo since is
    looked for again before it is created anew."""
    if known is not None:
        try:
            odoo.write(model, [known], values)
            return known
        except OdooMissingRecord:
            pass
    found = odoo.search_read(model, domain, ["id"], limit=1, order="id asc")
    if found:
        odoo.write(model, [int(found[0]["id"])], values)
        return int(found[0]["id"])
    return odoo.create(model, values)


def _salesperson(conn: Connection, row: sa.Row[Any]) -> int | None:
    """The Odoo user of the lead's advisor: the medical one if mapped, else the commercial one, else none."""
    for advisor_id in (row.medical_advisor_id, row.commercial_advisor_id):
        if advisor_id is not None:
            user = conn.execute(
                sa.select(miasalud_advisors.c.odoo_user_id).where(miasalud_advisors.c.id == advisor_id)
            ).scalar_one_or_none()
            if user is not None:
                return int(user)
    return None


def person(row: sa.Row[Any]) -> Lead:
    """A contact row as Odoo is told about it."""
    return Lead(
        manychat_id=row.manychat_id,
        first_name=row.first_name,
        last_name=row.last_name,
        phone=row.phone,
        phone_valid=row.phone_valid,
        email=row.email,
    )


@dataclass
class _StageCache:
    client: int  # the client they were read through (a new client, after a settings change, reads them again)
    ids: dict[str, int]
    read_at: float


_stage_cache: _StageCache | None = None
_stage_lock = threading.Lock()


def _stages(odoo: OdooClient) -> dict[str, int]:
    """Odoo's stages by name, read at most every STAGES_TTL_S per process (one call, not one per lead)."""
    global _stage_cache  # noqa: PLW0603 - per process, like the client
    with _stage_lock:
        cache = _stage_cache
        if cache is None or cache.client != id(odoo) or time.monotonic() - cache.read_at > STAGES_TTL_S:
            stages = odoo.search_read(STAGE, [], ["name"], order="sequence asc, id asc")
            ids: dict[str, int] = {}
            for stage in stages:
                ids.setdefault(str(stage["name"]), int(stage["id"]))
            cache = _stage_cache = _StageCache(id(odoo), ids, time.monotonic())
        return cache.ids


def _pause(work: Work, table: sa.Table, row_id: int, failure: OdooAuthFailed) -> None:
    with work.transaction() as conn:
        store.set_odoo_state(conn, now=work.now(), auth_error=failure.reason)
        reason = "En pausa: Odoo rechazó las credenciales; se reanuda al corregir ODOO_API_KEY."
        store.record_push_failure(conn, table, row_id, status="pending", reason=reason, attempt=False)
    telemetry.alert(
        "odoo_auth_failed",
        "Odoo refused the app's credentials: pushes are paused until the key works again",
        operation="odoo_push",
        success=False,
        detail=failure.code,
    )


def _exhausted(work: Work, message: OdooPushMessage, note: str) -> Result:
    """Retries used up: the row shows the error, the message waits in the poison queue for a replay (unless
    another worker got Odoo to hold the row's version meanwhile: then nothing is left to do)."""
    table = TABLES[message.kind]
    row = _sync_state(work, table, message.id)
    if row is None or _held(row):
        return Result(Outcome.duplicate, "Odoo already holds this version")
    with work.transaction() as conn:
        reason = f"Odoo no aceptó el envío tras varios intentos ({note}); reenvíe desde la API o la cola -poison."
        store.record_push_failure(conn, TABLES[message.kind], message.id, status="error", reason=reason)
    work.queues.send(ODOO_PUSH + POISON_SUFFIX, message.model_dump(mode="json", exclude_none=True))
    telemetry.alert(
        "odoo_sync_failed",
        f"a MiaSalud {message.kind} could not be pushed to Odoo and went to {ODOO_PUSH}{POISON_SUFFIX}",
        operation="odoo_push",
        success=False,
        detail=note,
    )
    return Result(Outcome.failed, note)


def sweep(work: Work) -> int:
    """The timer: resume paused pushes once Odoo takes the key again, and queue every row still waiting for Odoo
    that no push is on (a push message lost, Odoo configured after the rows came). Returns how many it queued."""
    settings = work.settings
    if not settings.odoo_url:
        return 0
    with work.transaction() as conn:
        paused = store.odoo_paused(conn)
    if paused:
        try:
            work.odoo.version()
            work.odoo.search_count(PARTNER, [("id", "=", 0)])  # an authenticated call: the key works again
        except OdooError:
            return 0
        with work.transaction() as conn:
            store.set_odoo_state(conn, now=work.now(), auth_error=None)
        log.info("Odoo accepts the credentials again: pushes resume", extra={"operation": "odoo_sweep"})
    now = work.now()
    queued = 0
    for kind, table in TABLES.items():
        if not pushed(settings.odoo_sync, kind):  # type: ignore[arg-type]
            continue
        with work.transaction() as conn:
            due = store.due_pushes(
                conn, table, now=now, quiet_since=now - timedelta(seconds=SWEEP_QUIET_S), limit=SWEEP_BATCH
            )
        for row_id in due:
            enqueue(work, kind, row_id)  # type: ignore[arg-type]
            queued += 1
    return queued


def _subject(message: OdooPushMessage) -> dict[str, Any]:
    return {"event_id": f"{message.kind}:{message.id}"}


JOB = Job(queue=ODOO_PUSH, model=OdooPushMessage, handle=_push, exhausted=_exhausted, subject=_subject)
