"""The MiaSalud wing's tables: ManyChat's leads as Azure SQL keeps them, ready for the push to Odoo.

Declared on the one `metadata` (`shared.store.tables` gathers both wings'), so the same migrations and checks
cover them. Ids are this API's own; ManyChat's ids (`manychat_id`, the campaign number, the advisors'
`comercial_id` / `medico_id`) are unique columns beside them. `field_clocks` holds, per field, the stamp of the
event that set it (`sync_core.miasalud.merge`); `version` guards concurrent writers of one row.
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.store.columns import Id, UtcDateTime, metadata, pk, stamps, unique_when_set

# odoo_sync_status: what part 2 (the push to Odoo) does with a row; every change sets it back to pending.
ODOO_SYNC_PENDING = "pending"


def _odoo_sync(record: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"odoo_{record}_id", sa.BigInteger()),
        sa.Column("odoo_sync_status", sa.Unicode(16), nullable=False, server_default=ODOO_SYNC_PENDING),
        sa.Column("odoo_sync_error", sa.UnicodeText()),
        sa.Column("odoo_sync_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("odoo_synced_at", UtcDateTime()),
        sa.Column("odoo_pushed_version", sa.Integer()),  # the row's version Odoo last took
        sa.Column("odoo_lease_until", UtcDateTime()),  # one worker at a time pushes a row; expires if it dies
    ]


def _ordering() -> list[sa.Column[object]]:
    return [
        sa.Column("event_at", UtcDateTime()),  # when the newest event that set a field happened
        sa.Column("field_clocks", sa.UnicodeText()),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


miasalud_channels = sa.Table(
    "miasalud_channels",
    metadata,
    pk(),
    sa.Column("name", sa.Unicode(200), nullable=False),
    sa.Column("name_key", sa.Unicode(200), nullable=False, unique=True),  # folded: "Facebook" = " facebook "
    sa.Column("description", sa.UnicodeText()),
    sa.Column("from_event", sa.Boolean(), nullable=False, server_default=sa.false()),
    *stamps(),
)

miasalud_advisors = sa.Table(
    "miasalud_advisors",
    metadata,
    pk(),
    sa.Column("external_id", sa.Unicode(64)),  # comercial_id / medico_id in ManyChat's events
    sa.Column("name", sa.Unicode(200)),
    sa.Column("email", sa.Unicode(254)),
    sa.Column("phone", sa.Unicode(40)),
    sa.Column("odoo_user_id", sa.BigInteger()),  # the Odoo salesperson a lead assigned to this advisor gets
    sa.Column("from_event", sa.Boolean(), nullable=False, server_default=sa.false()),
    *stamps(),
)
unique_when_set("uq_miasalud_advisors_external_id", miasalud_advisors.c.external_id)

miasalud_campaigns = sa.Table(
    "miasalud_campaigns",
    metadata,
    pk(),
    sa.Column("manychat_campaign_id", sa.BigInteger()),  # campaign_id in ManyChat's events
    sa.Column("name", sa.Unicode(200)),
    sa.Column("date_start", UtcDateTime()),
    sa.Column("date_end", UtcDateTime()),
    sa.Column("budget", sa.Numeric(14, 2)),
    sa.Column("status", sa.Unicode(32)),
    sa.Column("channel_id", Id, sa.ForeignKey("miasalud_channels.id")),
    sa.Column("from_event", sa.Boolean(), nullable=False, server_default=sa.false()),
    *stamps(),
)
unique_when_set("uq_miasalud_campaigns_manychat_campaign_id", miasalud_campaigns.c.manychat_campaign_id)

miasalud_contacts = sa.Table(
    "miasalud_contacts",
    metadata,
    pk(),
    sa.Column("manychat_id", sa.Unicode(64), nullable=False, unique=True),
    sa.Column("first_name", sa.Unicode(200)),
    sa.Column("last_name", sa.Unicode(200)),
    sa.Column("phone", sa.Unicode(40)),  # E.164 when valid; otherwise as typed, with phone_valid false
    sa.Column("phone_valid", sa.Boolean()),
    sa.Column("email", sa.Unicode(254)),
    sa.Column("channel_id", Id, sa.ForeignKey("miasalud_channels.id")),
    sa.Column("subscribed_at", UtcDateTime()),
    sa.Column("last_state", sa.Unicode(100)),
    sa.Column("initial_state", sa.Unicode(100)),
    *_ordering(),
    *_odoo_sync("partner"),
    *stamps(),
    sa.Index("ix_miasalud_contacts_created_at", "created_at"),
    sa.Index("ix_miasalud_contacts_odoo_sync_status", "odoo_sync_status"),
)

miasalud_campaign_contacts = sa.Table(
    "miasalud_campaign_contacts",
    metadata,
    pk(),
    sa.Column(
        "contact_id",
        Id,
        sa.ForeignKey("miasalud_contacts.id", name="fk_miasalud_campaign_contacts_contact"),
        nullable=False,
    ),
    sa.Column(
        "campaign_id",
        Id,
        sa.ForeignKey("miasalud_campaigns.id", name="fk_miasalud_campaign_contacts_campaign"),
        nullable=False,
    ),
    sa.Column(
        "commercial_advisor_id",
        Id,
        sa.ForeignKey("miasalud_advisors.id", name="fk_miasalud_campaign_contacts_commercial"),
    ),
    sa.Column(
        "medical_advisor_id", Id, sa.ForeignKey("miasalud_advisors.id", name="fk_miasalud_campaign_contacts_medical")
    ),
    sa.Column("assignment_type", sa.Unicode(100)),
    sa.Column("last_state", sa.Unicode(100)),
    sa.Column("summary", sa.UnicodeText()),
    sa.Column("medical_assignment_date", UtcDateTime()),
    *_ordering(),
    *_odoo_sync("lead"),
    *stamps(),
    # Names of their own: the conventional ones pass PostgreSQL's 63 characters.
    sa.UniqueConstraint("contact_id", "campaign_id", name="uq_miasalud_campaign_contacts_contact_campaign"),
    sa.Index("ix_miasalud_campaign_contacts_campaign_id", "campaign_id"),
    sa.Index("ix_miasalud_campaign_contacts_odoo_sync_status", "odoo_sync_status"),
)

# Every event ManyChat sent that this app took or refused, once (`event_key`: the body's hash). The body is kept
# only while staff may need it: a refused one (to review) and one storage could not queue (held, then queued
# again by the sweep).
miasalud_events = sa.Table(
    "miasalud_events",
    metadata,
    pk(),
    sa.Column("event_key", sa.Unicode(48), nullable=False, unique=True),
    sa.Column("kind", sa.Unicode(16), nullable=False),  # contact | campaign
    sa.Column("manychat_id", sa.Unicode(64)),
    sa.Column("occurred_at", UtcDateTime()),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.Unicode(16), nullable=False),
    sa.Column("detail", sa.UnicodeText()),  # what changed, or why it was refused (JSON)
    sa.Column("body", sa.UnicodeText()),
    sa.Column("processed_at", UtcDateTime()),
    sa.Index("ix_miasalud_events_status_received", "status", "received_at"),
    sa.Index("ix_miasalud_events_received_at", "received_at"),
    sa.Index("ix_miasalud_events_manychat_id", "manychat_id"),
)

# ultimo_estado → the name of an Odoo crm.stage (seeded with `sync_core.miasalud.odoo.DEFAULT_STAGES`).
miasalud_stage_map = sa.Table(
    "miasalud_stage_map",
    metadata,
    pk(),
    sa.Column("state", sa.Unicode(100), nullable=False),
    sa.Column("state_key", sa.Unicode(100), nullable=False, unique=True),  # folded
    sa.Column("stage_name", sa.Unicode(100), nullable=False),
    *stamps(),
)

# Odoo as the push last found it: one row. An authentication failure pauses every push until the key is fixed.
miasalud_odoo_state = sa.Table(
    "miasalud_odoo_state",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("auth_failed_at", UtcDateTime()),
    sa.Column("auth_error", sa.UnicodeText()),
    sa.Column("last_success_at", UtcDateTime()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Each SQL ⇄ Odoo reconciliation: when, what it found (`sync_core.miasalud.reconcile.Difference`s, bounded) and
# what it healed through the normal push path.
miasalud_odoo_reports = sa.Table(
    "miasalud_odoo_reports",
    metadata,
    pk(),
    sa.Column("trigger", sa.Unicode(16), nullable=False),  # timer | api
    sa.Column("status", sa.Unicode(16), nullable=False),  # running | completed | failed
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("heal", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("counts", sa.UnicodeText()),  # JSON: checked and differences per model and problem
    sa.Column("differences", sa.UnicodeText()),  # JSON list, the first MAX_REPORTED
    sa.Column("healed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.UnicodeText()),
    sa.Index("ix_miasalud_odoo_reports_started_at", "started_at"),
)
