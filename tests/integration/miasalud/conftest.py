"""The MiaSalud wing in-process: its routes called like the host calls them, its queues drained by its workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from blueprints import manychat as api
from shared import runtime
from shared.queues import MANYCHAT_CAMPAIGN, MANYCHAT_CONTACT, ODOO_PUSH, grouped_messages
from shared.services.miasalud import odoo_push, records
from shared.store.miasalud_schema import miasalud_stage_map
from shared.work import Work
from sync_core.miasalud.events import EXAMPLE_CAMPAIGN, EXAMPLE_CONTACT
from sync_core.miasalud.odoo import DEFAULT_STAGES
from sync_core.text import fold
from tests.fixtures.app import MANYCHAT_HEADERS, App, Response
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, SandboxServer

SEED_CONTACT = EXAMPLE_CONTACT  # the seed's body, verbatim
SEED_CAMPAIGN = EXAMPLE_CAMPAIGN  # the seed's body, verbatim
WORKERS = {
    MANYCHAT_CONTACT: records.process_contact,
    MANYCHAT_CAMPAIGN: records.process_campaign,
    ODOO_PUSH: odoo_push.process,
}


@dataclass
class Leads:
    app: App

    def post_contact(self, body: Any, headers: dict[str, str] | None = None) -> Response:
        return self._post(api.manychat_contact, "v1/manychat/webhook/contact", body, headers)

    def post_campaign(self, body: Any, headers: dict[str, str] | None = None) -> Response:
        return self._post(api.manychat_campaign_assignment, "v1/manychat/webhook/campaign-assignment", body, headers)

    def staff(
        self,
        function: Any,
        method: str = "GET",
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        id: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Call one of the staff API's functions (`blueprints.miasalud_api`) with the key, `id` as its route's."""
        return self.app.call(
            function,
            method,
            "v1/staff",
            body=body,
            params=params,
            route={"id": str(id)} if id is not None else None,
            headers=MANYCHAT_HEADERS if headers is None else headers,
        )

    def _post(self, function: Any, path: str, body: Any, headers: dict[str, str] | None) -> Response:
        raw = body if isinstance(body, bytes) else None
        sent = MANYCHAT_HEADERS if headers is None else headers
        return self.app.call(function, "POST", path, body=None if raw else body, raw=raw, headers=sent)

    def queued(self, queue: str) -> list[dict[str, Any]]:
        """Take every message waiting in `queue` (groups opened), leaving it empty."""
        client = runtime.queues().client(queue)
        taken: list[dict[str, Any]] = []
        while batch := list(client.receive_messages(max_messages=32, visibility_timeout=60)):
            for message in batch:
                data = json.loads(message.content)
                taken.extend(grouped_messages(data) or [data])
                client.delete_message(message)
        return taken

    def drain(self) -> int:
        """Apply what both queues hold, as the workers would; returns how many messages were handled."""
        handled = 0
        for queue, process in WORKERS.items():
            for message in self.queued(queue):
                process(message)
                handled += 1
        return handled

    def change(self, table: sa.Table, row_id: int, **values: Any) -> None:
        """Set columns of a row directly (what the API never lets a caller set: created_at, odoo_sync_status)."""
        with self.app.db.transaction() as conn:
            conn.execute(table.update().where(table.c.id == row_id).values(**values))

    def rows(self, table: sa.Table, *where: Any) -> list[sa.Row[Any]]:
        with self.app.db.transaction() as conn:
            return list(conn.execute(sa.select(table).where(*where).order_by(table.c.id)))


@pytest.fixture
def leads(app: App) -> Iterator[Leads]:
    wing = Leads(app)
    wing.queued(MANYCHAT_CONTACT)
    wing.queued(MANYCHAT_CAMPAIGN)
    wing.queued(ODOO_PUSH)
    yield wing


PROTOCOLS = ["jsonrpc", "json2"]


@pytest.fixture(scope="module")
def odoo_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(params=PROTOCOLS)
def odoo(
    request: pytest.FixtureRequest, odoo_server: SandboxServer, leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SandboxServer]:
    """The Odoo sandbox (demo database, reset) with the app pointed at it, ODOO_SYNC=both, the stage map seeded."""
    odoo_server.admin.reset()
    settings = {
        "ODOO_URL": odoo_server.url,
        "ODOO_DB": DEMO_DB,
        "ODOO_USERNAME": DEMO_API_LOGIN,
        "ODOO_API_KEY": DEMO_API_KEY,
        "ODOO_PROTOCOL": request.param,
        "ODOO_RATE_PER_S": "1000",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    now = Work.current().now()
    with leads.app.db.transaction() as conn:
        conn.execute(miasalud_stage_map.delete())  # the migration's defaults, whatever an earlier test left
        conn.execute(
            miasalud_stage_map.insert(),
            [
                {"state": state, "state_key": fold(state), "stage_name": stage, "created_at": now, "updated_at": now}
                for state, stage in DEFAULT_STAGES.items()
            ],
        )
    yield odoo_server
    runtime.reset()
