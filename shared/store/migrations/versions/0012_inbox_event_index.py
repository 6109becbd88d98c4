"""webhook inbox: index by GHL event, for an appointment's history

Revision ID: 0012_inbox_event_index
Revises: 0011_rv3_status_map
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_inbox_event_index"
down_revision: str | None = "0011_rv3_status_map"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_webhook_inbox_event", "webhook_inbox", ["location_id", "ghl_event_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_inbox_event", table_name="webhook_inbox")
