"""miasalud leads: ManyChat's contacts, channels, advisors, campaigns, campaign contacts and events

Revision ID: 0007_miasalud_leads
Revises: 0006_unicode_text
Create Date: 2026-12-02

The second integration's records (`shared.store.miasalud_schema`), every text column Unicode (NVARCHAR on Azure
SQL), with the `odoo_sync_*` columns the push to Odoo fills in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.schema

revision: str = "0007_miasalud_leads"
down_revision: str | None = "0006_unicode_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "miasalud_advisors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("external_id", sa.Unicode(length=64), nullable=True),
        sa.Column("name", sa.Unicode(length=200), nullable=True),
        sa.Column("email", sa.Unicode(length=254), nullable=True),
        sa.Column("phone", sa.Unicode(length=40), nullable=True),
        sa.Column("from_event", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_advisors")),
    )
    op.create_index(
        "uq_miasalud_advisors_external_id",
        "miasalud_advisors",
        ["external_id"],
        unique=True,
        mssql_where=sa.text("external_id IS NOT NULL"),
        postgresql_where=sa.text("external_id IS NOT NULL"),
        sqlite_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "miasalud_channels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.Unicode(length=200), nullable=False),
        sa.Column("name_key", sa.Unicode(length=200), nullable=False),
        sa.Column("description", sa.UnicodeText(), nullable=True),
        sa.Column("from_event", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_channels")),
        sa.UniqueConstraint("name_key", name=op.f("uq_miasalud_channels_name_key")),
    )
    op.create_table(
        "miasalud_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.Unicode(length=48), nullable=False),
        sa.Column("kind", sa.Unicode(length=16), nullable=False),
        sa.Column("manychat_id", sa.Unicode(length=64), nullable=True),
        sa.Column("occurred_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("received_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("status", sa.Unicode(length=16), nullable=False),
        sa.Column("detail", sa.UnicodeText(), nullable=True),
        sa.Column("body", sa.UnicodeText(), nullable=True),
        sa.Column("processed_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_miasalud_events_event_key")),
    )
    op.create_index("ix_miasalud_events_manychat_id", "miasalud_events", ["manychat_id"], unique=False)
    op.create_index("ix_miasalud_events_received_at", "miasalud_events", ["received_at"], unique=False)
    op.create_index("ix_miasalud_events_status_received", "miasalud_events", ["status", "received_at"], unique=False)
    op.create_table(
        "miasalud_campaigns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("manychat_campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.Unicode(length=200), nullable=True),
        sa.Column("date_start", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("date_end", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("budget", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("status", sa.Unicode(length=32), nullable=True),
        sa.Column("channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("from_event", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["miasalud_channels.id"], name=op.f("fk_miasalud_campaigns_channel_id_miasalud_channels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_campaigns")),
    )
    op.create_index(
        "uq_miasalud_campaigns_manychat_campaign_id",
        "miasalud_campaigns",
        ["manychat_campaign_id"],
        unique=True,
        mssql_where=sa.text("manychat_campaign_id IS NOT NULL"),
        postgresql_where=sa.text("manychat_campaign_id IS NOT NULL"),
        sqlite_where=sa.text("manychat_campaign_id IS NOT NULL"),
    )
    op.create_table(
        "miasalud_contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("manychat_id", sa.Unicode(length=64), nullable=False),
        sa.Column("first_name", sa.Unicode(length=200), nullable=True),
        sa.Column("last_name", sa.Unicode(length=200), nullable=True),
        sa.Column("phone", sa.Unicode(length=40), nullable=True),
        sa.Column("phone_valid", sa.Boolean(), nullable=True),
        sa.Column("email", sa.Unicode(length=254), nullable=True),
        sa.Column("channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("subscribed_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("last_state", sa.Unicode(length=100), nullable=True),
        sa.Column("initial_state", sa.Unicode(length=100), nullable=True),
        sa.Column("event_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("field_clocks", sa.UnicodeText(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("odoo_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("odoo_sync_status", sa.Unicode(length=16), server_default="pending", nullable=False),
        sa.Column("odoo_sync_error", sa.UnicodeText(), nullable=True),
        sa.Column("odoo_sync_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("odoo_synced_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["miasalud_channels.id"], name=op.f("fk_miasalud_contacts_channel_id_miasalud_channels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_contacts")),
        sa.UniqueConstraint("manychat_id", name=op.f("uq_miasalud_contacts_manychat_id")),
    )
    op.create_index("ix_miasalud_contacts_created_at", "miasalud_contacts", ["created_at"], unique=False)
    op.create_index("ix_miasalud_contacts_odoo_sync_status", "miasalud_contacts", ["odoo_sync_status"], unique=False)
    op.create_table(
        "miasalud_campaign_contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("commercial_advisor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("medical_advisor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("assignment_type", sa.Unicode(length=100), nullable=True),
        sa.Column("last_state", sa.Unicode(length=100), nullable=True),
        sa.Column("summary", sa.UnicodeText(), nullable=True),
        sa.Column("medical_assignment_date", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("event_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("field_clocks", sa.UnicodeText(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("odoo_lead_id", sa.BigInteger(), nullable=True),
        sa.Column("odoo_sync_status", sa.Unicode(length=16), server_default="pending", nullable=False),
        sa.Column("odoo_sync_error", sa.UnicodeText(), nullable=True),
        sa.Column("odoo_sync_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("odoo_synced_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["miasalud_campaigns.id"], name="fk_miasalud_campaign_contacts_campaign"
        ),
        sa.ForeignKeyConstraint(
            ["commercial_advisor_id"], ["miasalud_advisors.id"], name="fk_miasalud_campaign_contacts_commercial"
        ),
        sa.ForeignKeyConstraint(["contact_id"], ["miasalud_contacts.id"], name="fk_miasalud_campaign_contacts_contact"),
        sa.ForeignKeyConstraint(
            ["medical_advisor_id"], ["miasalud_advisors.id"], name="fk_miasalud_campaign_contacts_medical"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_campaign_contacts")),
        sa.UniqueConstraint("contact_id", "campaign_id", name="uq_miasalud_campaign_contacts_contact_campaign"),
    )
    op.create_index(
        "ix_miasalud_campaign_contacts_campaign_id", "miasalud_campaign_contacts", ["campaign_id"], unique=False
    )
    op.create_index(
        "ix_miasalud_campaign_contacts_odoo_sync_status",
        "miasalud_campaign_contacts",
        ["odoo_sync_status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("miasalud_campaign_contacts")
    op.drop_table("miasalud_contacts")
    op.drop_table("miasalud_campaigns")
    op.drop_table("miasalud_events")
    op.drop_table("miasalud_channels")
    op.drop_table("miasalud_advisors")
