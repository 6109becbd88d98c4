"""The `manychat-contact` and `manychat-campaign` queue workers: each event merged into the records, once.

One transaction per event: the event is claimed by its key (a repeated delivery is a `duplicate`), the channels,
advisors and campaigns it names are found or created, and the contact or campaign contact takes the fields this
event is the newest word on (`sync_core.miasalud.merge`). Events of one contact may be applied by several workers
at once: the records' version guard makes the later writer read again, so the result is the same in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import telemetry
from shared.queues import MANYCHAT_CAMPAIGN, MANYCHAT_CONTACT
from shared.services.miasalud import odoo_push
from shared.services.miasalud.intake import CampaignMessage, ContactMessage
from shared.store import miasalud as store
from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts
from shared.work import Work
from shared.worker import Job, Later, Outcome, Result, run
from sync_core.miasalud.events import CampaignEvent, ContactEvent
from sync_core.miasalud.odoo import RecordKind, leads_follow
from sync_core.retry import ErrorKind

log = telemetry.get_logger("miasalud")

CONTENTION_DELAY_S = 1.0


def process_contact(raw: dict[str, Any], work: Work | None = None) -> Result:
    """Handle one `manychat-contact` message (see `shared.worker.run`)."""
    return run(CONTACT_JOB, raw, work or Work.current())


def process_campaign(raw: dict[str, Any], work: Work | None = None) -> Result:
    """Handle one `manychat-campaign` message."""
    return run(CAMPAIGN_JOB, raw, work or Work.current())


def _apply_contact(work: Work, message: ContactMessage) -> Result:
    event = message.event

    def apply(conn: Connection) -> _Applied:
        now = work.now()
        fields = event.fields()
        if event.channel is not None:
            fields["channel_id"] = store.channel_id(conn, event.channel, now)
        contact_id, changed = _contact(conn, event, fields, now)
        pushes: list[tuple[RecordKind, int]] = [("contact", contact_id)] if changed else []
        if leads_follow("contact", changed):  # its leads copy the name, phone and email
            links = store.touch_leads(conn, miasalud_campaign_contacts.c.contact_id == contact_id, now)
            pushes += [("campaign_contact", link_id) for link_id in links]
        return _Applied(changed, pushes)

    return _once(work, message.received_at, event, apply)


def _apply_campaign(work: Work, message: CampaignMessage) -> Result:
    event = message.event

    def apply(conn: Connection) -> _Applied:
        now = work.now()
        contact_id, _ = _contact(conn, event, {}, now)
        campaign_id = store.campaign_id(conn, event.campaign, now)
        fields = event.fields()
        if event.commercial_advisor is not None:
            fields["commercial_advisor_id"] = store.advisor_id(conn, event.commercial_advisor, now)
        if event.medical_advisor is not None:
            fields["medical_advisor_id"] = store.advisor_id(conn, event.medical_advisor, now)
        table = miasalud_campaign_contacts
        link_id, changed = store.merge_record(
            conn,
            table,
            sa.and_(table.c.contact_id == contact_id, table.c.campaign_id == campaign_id),
            identity={"contact_id": contact_id, "campaign_id": campaign_id},
            fields=fields,
            stamp=event.stamp,
            now=now,
        )
        return _Applied(changed, [("campaign_contact", link_id)] if changed else [])

    return _once(work, message.received_at, event, apply)


@dataclass(frozen=True)
class _Applied:
    changed: dict[str, Any]  # the fields the event set
    pushes: list[tuple[RecordKind, int]]  # the rows Odoo must be told about


def _contact(
    conn: Connection, event: ContactEvent | CampaignEvent, fields: dict[str, Any], now: Any
) -> tuple[int, dict[str, Any]]:
    """The event's contact with `fields` merged in; a campaign event for a contact not seen yet creates it bare
    (its contact event may still be on its way: ManyChat's events are not ordered across queues)."""
    return store.merge_record(
        conn,
        miasalud_contacts,
        miasalud_contacts.c.manychat_id == event.manychat_id,
        identity={"manychat_id": event.manychat_id},
        fields=fields,
        stamp=event.stamp,
        now=now,
    )


def _once(
    work: Work, received_at: Any, event: ContactEvent | CampaignEvent, apply: Callable[[Connection], _Applied]
) -> Result:
    """Claim the event, apply it and record the outcome in one transaction; then queue the Odoo pushes."""
    try:
        with work.transaction() as conn:
            claimed = store.claim_event(
                conn,
                event_key=event.event_key,
                kind=event.kind,
                manychat_id=event.manychat_id,
                occurred_at=event.occurred_at,
                received_at=received_at,
            )
            if not claimed:
                return Result(Outcome.duplicate, "already applied")
            applied = apply(conn)
            changed = applied.changed
            status = store.APPLIED if changed else store.UNCHANGED
            store.finish_event(conn, event.event_key, status=status, detail=sorted(changed), processed_at=work.now())
    except (sa.exc.IntegrityError, store.Contention):
        raise Later(ErrorKind.rate_limited, "concurrent change", retry_after=CONTENTION_DELAY_S) from None
    odoo_push.enqueue_all(work, applied.pushes)
    if not changed:
        return Result(Outcome.skipped, "older than what the record holds")
    return Result(Outcome.applied, ",".join(sorted(changed)))


def _subject(message: ContactMessage | CampaignMessage) -> dict[str, Any]:
    return {"event_id": message.event.event_key, "event_type": f"manychat.{message.event.kind}"}


CONTACT_JOB = Job(queue=MANYCHAT_CONTACT, model=ContactMessage, handle=_apply_contact, subject=_subject)
CAMPAIGN_JOB = Job(queue=MANYCHAT_CAMPAIGN, model=CampaignMessage, handle=_apply_campaign, subject=_subject)
