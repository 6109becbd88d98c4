"""Against a real Odoo (never the sandbox): the setup check passes, and a contact and its lead pushed through the
app's push path land once, are found by their x_manychat_id, are not created again, and are removed afterwards.

Runs only with ODOO_URL, ODOO_DB, ODOO_USERNAME and ODOO_API_KEY set: `pytest -m real_odoo tests/real`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from shared import runtime
from shared.odoo import rate_limits
from shared.odoo.__main__ import READY, run_check
from shared.odoo.client import OdooClient
from shared.queues import MANYCHAT_CAMPAIGN, MANYCHAT_CONTACT, ODOO_PUSH
from shared.rate_budget import MemoryRateBudget
from shared.services.miasalud import odoo_push
from shared.settings import load_settings
from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts
from shared.work import Work
from tests.fixtures.app import App
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT, Leads
from tools.odoo_sandbox import DEMO_API_KEY

CREDENTIALS = ("ODOO_URL", "ODOO_DB", "ODOO_USERNAME", "ODOO_API_KEY")
PARTNER, LEAD = "res.partner", "crm.lead"


def _not_real_odoo() -> str | None:
    """Why this run has no real Odoo to talk to, or None when it has one."""
    missing = [name for name in CREDENTIALS if not os.environ.get(name)]
    if missing:
        return f"real Odoo tests need {', '.join(missing)} in the environment (see README, 'A real Odoo')"
    if os.environ["ODOO_API_KEY"] == DEMO_API_KEY:
        return "ODOO_API_KEY is the Odoo sandbox's demo key: these tests run only against a real Odoo"
    with contextlib.suppress(httpx.HTTPError):
        if httpx.get(f"{os.environ['ODOO_URL'].rstrip('/')}/_sandbox/state", timeout=5).status_code == 200:
            return "ODOO_URL answers as the Odoo sandbox (/_sandbox/): these tests run only against a real Odoo"
    return None


pytestmark = [pytest.mark.real_odoo, pytest.mark.azurite]
if (reason := _not_real_odoo()) is not None:
    pytestmark.append(pytest.mark.skip(reason=reason))


@pytest.fixture
def odoo() -> Iterator[OdooClient]:
    """The test's own client (as `python -m shared.odoo check` makes it: its pacing in memory, not in storage)."""
    settings = load_settings()
    with OdooClient.from_settings(
        settings, rate_budget=MemoryRateBudget(rate_limits(settings.odoo_rate_per_s))
    ) as client:
        yield client


@pytest.fixture
def wing(app: App) -> Leads:
    """The MiaSalud wing on the test database and Azurite, its queues emptied, pushing to the real Odoo."""
    runtime.reset()
    leads = Leads(app)
    for queue in (MANYCHAT_CONTACT, MANYCHAT_CAMPAIGN, ODOO_PUSH):
        leads.queued(queue)
    return leads


def test_the_setup_check_passes(odoo: OdooClient) -> None:
    verdict = run_check(odoo, load_settings(), stages=[])
    assert verdict.code == READY, "\n".join(verdict.lines)


def test_a_pushed_contact_and_lead_land_once_and_a_second_push_creates_nothing(odoo: OdooClient, wing: Leads) -> None:
    manychat_id = f"RV3TEST{uuid.uuid4().hex[:10].upper()}"
    domain = [("x_manychat_id", "=", manychat_id)]
    try:
        wing.post_contact({**SEED_CONTACT, "manychat_id": manychat_id, "nombre_lead": "Prueba", "apellido_lead": "RV3"})
        wing.post_campaign({**SEED_CAMPAIGN, "manychat_id": manychat_id})
        while wing.drain():
            pass
        sync = load_settings().odoo_sync
        partners = odoo.search_read(PARTNER, domain, ["name"])
        leads = odoo.search_read(LEAD, domain, ["type", "partner_id", "x_campaign_id"])
        assert len(partners) == int(sync != "leads") and len(leads) == int(sync != "contacts")
        if partners:
            assert partners[0]["name"] == "Prueba RV3"
        if leads:
            assert (leads[0]["type"], leads[0]["x_campaign_id"]) == (load_settings().odoo_lead_type, 85)

        [contact] = wing.rows(miasalud_contacts)
        [link] = wing.rows(miasalud_campaign_contacts)
        odoo_push.enqueue(Work.current(), "contact", contact.id)  # the same pushes once more
        odoo_push.enqueue(Work.current(), "campaign_contact", link.id)
        while wing.drain():
            pass
        assert odoo.search_count(PARTNER, domain) == len(partners)
        assert odoo.search_count(LEAD, domain) == len(leads)
    finally:
        odoo.unlink(LEAD, [r["id"] for r in odoo.search_read(LEAD, [*domain, ("active", "in", [True, False])], [])])
        odoo.unlink(PARTNER, [r["id"] for r in odoo.search_read(PARTNER, domain, [])])
