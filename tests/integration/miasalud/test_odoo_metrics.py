"""The metrics count Odoo's calls the way they count GHL's: per model and method, outcome and latency, every attempt
the client made, and apart from GHL's."""

from __future__ import annotations

from typing import Any

from blueprints import metrics as api
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT, Leads
from tools.odoo_sandbox import SandboxServer


def _metrics(leads: Leads, function: Any) -> Any:
    answer = leads.app.call(function, "GET", "ghl/metrics", params={"hours": "24"})
    assert answer.status == 200, answer.body
    return answer.body


def test_after_pushes_the_metrics_show_odoo_calls_per_model_and_method(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.inject("validation_error", models=["crm.lead"], methods=["create"], count=1)
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    body = _metrics(leads, api.metrics_odoo)
    operations = body["odoo_operations"]
    assert operations["odoo.res.partner.create"]["success_count"] == 1
    refused = operations["odoo.crm.lead.create"]
    assert (refused["success_count"], refused["failed_count"]) == (0, 1)  # Odoo refused the lead: counted, not lost
    assert operations["odoo.res.partner.search_read"]["total_count"] >= 1
    assert all(stats["avg_duration_ms"] > 0 for stats in operations.values())
    assert body["totals"]["total_count"] == sum(stats["total_count"] for stats in operations.values())
    failed = {code: n for code, n in body["responses"].items() if code != "200"}
    assert failed in ({"rejected": 1}, {"422": 1})  # JSON-RPC refuses in a 200 envelope, JSON-2 with a 422
    assert body["responses"]["200"] == body["totals"]["success_count"]
    assert 0 < body["odoo_health_percentage"] < 100

    assert not any(op.startswith("odoo.") for op in _metrics(leads, api.metrics_ghl)["ghl_operations"])
    system = _metrics(leads, api.metrics_system)
    assert system["odoo_operations"] == operations
